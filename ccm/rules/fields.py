"""The fields a rule can name: marketer-friendly names for customer columns, the latest
statement, and the computed fields of ``ccm segments refresh``.

Each field has a type and one SQL expression; a customer's values for the Python side
are loaded with the same expressions (``ccm.rules.load``), so both sides see the same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select

from ccm.rules.types import BOOL, NUMBER, TEXT, TIME


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    help: str
    expression: Callable[[], Any]  # -> SQLAlchemy column expression (raw stored value)
    money: bool = False  # stored as scaled integers (ccm.column_types.Money): SQL divides by SCALE


def _customer(column: str) -> Callable[[], Any]:
    def expression() -> Any:
        from ccm.models import Customer

        return getattr(Customer, column)

    return expression


def _latest_statement(column: str) -> Callable[[], Any]:
    def expression() -> Any:
        from ccm.models import Customer, FeedRecord

        return (
            select(getattr(FeedRecord, column))
            .where(FeedRecord.customer_id == Customer.id)
            .order_by(FeedRecord.period.desc())
            .limit(1)
            .scalar_subquery()
        )

    return expression


def _metric(column: str) -> Callable[[], Any]:
    def expression() -> Any:
        from ccm.models import Customer
        from ccm.models.segments import CustomerMetrics

        return select(getattr(CustomerMetrics, column)).where(CustomerMetrics.customer_id == Customer.id).scalar_subquery()

    return expression


_TEXT_COLUMNS = {
    "external_id": "the customer's id in the source system",
    "name": "full name",
    "email": "e-mail address",
    "phone": "mobile number (E.164, +14155550101)",
    "city": "city of the postal address",
    "region": "region or state",
    "postal_code": "postal code",
    "country": "country code (US, CN)",
    "locale": "language and region (en_US, zh_CN)",
    "timezone": "time zone (America/Chicago)",
    "household_key": "household of the postal address",
    "preferred_channel": "channel the customer asked for (email, sms, print)",
}

FIELDS: dict[str, FieldSpec] = {name: FieldSpec(name, TEXT, text, _customer(name)) for name, text in _TEXT_COLUMNS.items()}
FIELDS.update(
    {
        "paperless": FieldSpec("paperless", BOOL, "the customer chose paperless statements", _customer("paperless")),
        "tier": FieldSpec("tier", TEXT, "value tier by spend: vip, key, ordinary, small", _customer("value_tier")),
        "lifecycle": FieldSpec("lifecycle", TEXT, "acquisition, growth, maturity, decline, exit", _customer("lifecycle_stage")),
        "abc": FieldSpec("abc", TEXT, "A best customers, B high potential, C the rest", _customer("abc_code")),
        "rfm": FieldSpec("rfm", TEXT, "recency, frequency, monetary quintiles as three digits, 555 best", _customer("rfm")),
        "engagement": FieldSpec("engagement", NUMBER, "engagement score 0 to 100", _customer("engagement_score")),
        "last_response_at": FieldSpec("last_response_at", TIME, "when the customer last opened, clicked, replied, converted or paid", _customer("last_response_at")),
        "last_open_at": FieldSpec("last_open_at", TIME, "when the customer last opened a message", _customer("last_open_at")),
        "last_click_at": FieldSpec("last_click_at", TIME, "when the customer last clicked a link in a message", _customer("last_click_at")),
        "opens": FieldSpec("opens", NUMBER, "messages the customer opened (bots left out)", _customer("open_count")),
        "clicks": FieldSpec("clicks", NUMBER, "tracked links the customer clicked (bots left out)", _customer("click_count")),
        "responses": FieldSpec("responses", NUMBER, "clicks, replies, conversions and payments recorded", _customer("response_count")),
        "created_at": FieldSpec("created_at", TIME, "when the customer was first imported", _customer("created_at")),
        "balance_due": FieldSpec("balance_due", NUMBER, "amount due on the latest statement", _latest_statement("amount_due"), money=True),
        "closing_balance": FieldSpec("closing_balance", NUMBER, "closing balance of the latest statement", _latest_statement("closing_balance"), money=True),
        "last_period": FieldSpec("last_period", TEXT, "period of the latest statement, YYYY-MM", _latest_statement("period")),
        "spend": FieldSpec("spend", NUMBER, "charges in the tier period (as of the last refresh)", _metric("spend"), money=True),
        "tenure_months": FieldSpec("tenure_months", NUMBER, "months since the first statement or import", _metric("tenure_months")),
        "recency_score": FieldSpec("recency_score", NUMBER, "RFM recency quintile, 5 = most recent", _metric("r_score")),
        "frequency_score": FieldSpec("frequency_score", NUMBER, "RFM frequency quintile, 5 = most frequent", _metric("f_score")),
        "monetary_score": FieldSpec("monetary_score", NUMBER, "RFM monetary quintile, 5 = highest spend", _metric("m_score")),
    }
)

"""What a template may use, per document kind, and sample data of that shape.

The shape follows what the run composer passes (``ccm.runs.compose``:
``customer_context``, ``statement_context``, company, channel, attachment, links,
slots). A schema is a dict of field -> schema, ``LEAF`` (a value: text, number, date),
``ANY`` (free-form, e.g. custom attributes) or ``ListOf(item)``. Validation walks
templates against it; preview renders with the sample.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ccm.links import qr_data_uri
from decimal import Decimal
from typing import Any


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


LEAF = _Marker("LEAF")
ANY = _Marker("ANY")


@dataclass(frozen=True)
class ListOf:
    item: Any


ADDRESS = {key: LEAF for key in ("line1", "line2", "city", "region", "postal_code", "country")}
CUSTOMER = {
    **{key: LEAF for key in ("external_id", "name", "email", "phone", "locale", "timezone", "paperless")},
    "address": ADDRESS,
    "attributes": ANY,
}
STATEMENT_LINE = {"date": LEAF, "description": LEAF, "amount": LEAF}
STATEMENT = {
    **{key: LEAF for key in ("account", "period", "period_start", "period_end", "issue_date", "opening_balance",
                             "closing_balance", "amount_due", "due_date", "currency", "total_debits", "total_credits")},
    "lines": ListOf(STATEMENT_LINE),
}
COMPANY = {"name": LEAF, "address_lines": ListOf(LEAF), "phone": LEAF, "email": LEAF, "website": LEAF}
COMMON = {
    "customer": CUSTOMER,
    "company": COMPANY,
    "channel": LEAF,
    "attachment": LEAF,
    "locale": LEAF,
    "direction": LEAF,  # "rtl" for Arabic and Hebrew renders, else "ltr" (documents.bidi)
    "links": {"statement": LEAF, "unsubscribe": LEAF, "preferences": LEAF, "pay": LEAF, "pay_qr": LEAF},
    "slots": ANY,
    "event": ANY,  # a triggered message's event (its id, type, amount, currency and data)
    "reminder": {"date": LEAF, "days": LEAF},  # a reminder's date and the days left
}
# Functions every template may call (documents.formatting), Jinja's harmless range(), and
# the composer's short_link(url) and qr(url) (a short tracked link and its QR code, for paper).
FUNCTIONS = ("_", "slot", "range", "short_link", "qr")
SAMPLE_EVENT = {"id": "SAMPLE-EVENT-1", "type": "payment.received", "occurred_at": "2026-12-01T10:00:00Z", "amount": "125.95",
                "currency": "USD", "reference": "statement 2026-11", "data": {}}
# Links the composer fills per message (signed, see ccm.links.tokens); made-up ones in previews.
SAMPLE_LINKS = {
    "statement": None,
    "unsubscribe": "https://example.invalid/u/SAMPLE",
    "preferences": "https://example.invalid/p/SAMPLE",
    "pay": "https://example.invalid/s/1-0-SAMPLEcode",
    "pay_qr": qr_data_uri("https://example.invalid/s/1-0-SAMPLEcode"),
}
# What short_link(url) and qr(url) give in previews and checks: made-up links, never tracked.
SAMPLE_HELPERS = {
    "short_link": lambda url: "https://example.invalid/s/1-0-SAMPLElink",
    "qr": lambda url: qr_data_uri("https://example.invalid/s/1-0-SAMPLElink"),
}
# Kinds that render with a customer's billing data; the others (letters, campaigns) without.
WITH_STATEMENT = ("statement", "bill", "insert", "legal", "offer", "email_subject", "email_html", "email_text",
                  "sms", "partial", "asset")


def context_schema(kind: str) -> dict[str, Any]:
    """The names a template of ``kind`` may use, with their shape."""
    schema = dict(COMMON)
    if kind in WITH_STATEMENT:
        schema["statement"] = STATEMENT
    return schema


def sample_customer(locale: str = "en_US") -> dict[str, Any]:
    chinese = locale.startswith("zh")
    return {
        "external_id": "SAMPLE-1",
        "name": "王小明" if chinese else "Alex Sample",
        "email": "alex.sample@example.com",
        "phone": "+14155550100",
        "locale": locale,
        "timezone": "Asia/Shanghai" if chinese else "America/Chicago",
        "paperless": False,
        "address": {"line1": "人民路100号" if chinese else "1 Sample Street", "line2": "", "city": "上海市" if chinese else "Springfield",
                    "region": "上海" if chinese else "IL", "postal_code": "200000" if chinese else "62701", "country": "CN" if chinese else "US"},
        "attributes": {},
    }


def sample_statement(issue_date: dt.date | None = None) -> dict[str, Any]:
    lines = [
        {"date": dt.date(2026, 11, 3), "description": "Electricity, October usage", "amount": Decimal("84.20")},
        {"date": dt.date(2026, 11, 12), "description": "Payment — thank you", "amount": Decimal("-100.00")},
        {"date": dt.date(2026, 11, 20), "description": "Gas, October usage", "amount": Decimal("41.75")},
    ]
    return {
        "account": "SAMPLE-ACC-1", "period": "2026-11", "period_start": dt.date(2026, 11, 1),
        "period_end": dt.date(2026, 11, 30), "issue_date": issue_date or dt.date(2026, 12, 1),
        "opening_balance": Decimal("100.00"), "closing_balance": Decimal("125.95"), "amount_due": Decimal("125.95"),
        "due_date": dt.date(2026, 12, 15), "currency": "USD", "lines": lines,
        "total_debits": Decimal("125.95"), "total_credits": Decimal("100.00"),
    }


def sample_context(company: dict[str, Any], *, locale: str = "en_US", channel: str = "print") -> dict[str, Any]:
    """A complete render context with made-up data (no real customer)."""
    return {
        "customer": sample_customer(locale),
        "statement": sample_statement(),
        "company": dict(company),
        "channel": channel,
        "attachment": channel == "email",
        "links": dict(SAMPLE_LINKS),
        "slots": {},
        "event": dict(SAMPLE_EVENT),
        "reminder": {"date": dt.date(2026, 12, 31), "days": 30},
        **SAMPLE_HELPERS,
    }

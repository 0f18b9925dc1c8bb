"""Fixtures for the shipped template library: environment, renderer, sample customers."""

from __future__ import annotations

from ccm.links import qr_data_uri

import tomllib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from documents import TemplateEnvironment, WeasyPrintRenderer, file_loader, load_po

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def library() -> list[dict[str, Any]]:
    """The entries of templates/library.toml."""
    with open(TEMPLATES / "library.toml", "rb") as handle:
        return tomllib.load(handle)["template"]


@pytest.fixture(scope="session")
def env() -> TemplateEnvironment:
    translations = {path.stem: load_po(path) for path in sorted((TEMPLATES / "i18n").glob("*.po"))}
    return TemplateEnvironment(file_loader(TEMPLATES), translations=translations)


@pytest.fixture(scope="module")
def renderer() -> WeasyPrintRenderer:
    return WeasyPrintRenderer([TEMPLATES])


def make_context(*, chinese: bool = False, lines: int = 8, insert: str | None = None) -> dict[str, Any]:
    """A render context exactly as the engine builds it (plain dicts)."""
    start = date(2026, 11, 1)
    statement_lines = [
        {"date": start + timedelta(days=index % 30),
         "description": f"Card purchase #{index:03d} at Corner Grocery",
         "amount": Decimal("-42.17") if index % 3 else Decimal("1250.00")}
        for index in range(lines)
    ]
    customer = {
        "external_id": "C-000123", "name": "张伟" if chinese else "Alice Walker",
        "email": "alice@example.com", "phone": "+14155550100",
        "locale": "zh_CN" if chinese else "en_US",
        "timezone": "Asia/Shanghai" if chinese else "America/New_York", "paperless": False,
        "address": {"line1": "人民路 100 号" if chinese else "12 Elm Street", "line2": None,
                    "city": "上海" if chinese else "Springfield", "region": "SH" if chinese else "IL",
                    "postal_code": "200001" if chinese else "62701", "country": "CN" if chinese else "US"},
        "attributes": {"tier": "gold"},
    }
    return {
        "customer": customer,
        "statement": {
            "account": "ACC-0042-7788", "period": "2026-11",
            "period_start": start, "period_end": date(2026, 11, 30), "issue_date": date(2026, 12, 1),
            "opening_balance": Decimal("1520.40"), "closing_balance": Decimal("980.15"),
            "amount_due": Decimal("980.15"), "due_date": date(2026, 12, 21), "currency": "USD",
            "lines": statement_lines,
            "total_debits": Decimal("540.25"), "total_credits": Decimal("0.00"),
        },
        "company": {"name": "Acme Energy", "address_lines": ["1 Power Plaza", "Springfield, IL 62701"],
                    "phone": "+1 800 555 0100", "email": "billing@acme.example",
                    "website": "acme.example"},
        "channel": "print",
        "attachment": False,
        "links": {"statement": "https://acme.example/s/abc", "unsubscribe": "https://acme.example/u/abc", "preferences": "https://acme.example/p/abc",
                  "pay": "https://acme.example/s/2a-0-Xy12AbCd34", "pay_qr": qr_data_uri("https://acme.example/s/2a-0-Xy12AbCd34")},
        "slots": {"statement.insert": insert if insert is not None else
                  '<aside class="insert"><h2>Special offer</h2><p>Insert text here.</p></aside>',
                  "email.offer": '<p>An offer</p>'},
        "event": {"id": "E-1", "type": "payment.received", "amount": "49.90", "currency": "USD", "reference": "statement 2026-11"},
        "reminder": {"date": date(2026, 12, 31), "days": 30},
    }


def render_for(env: TemplateEnvironment, name: str, context: dict[str, Any]) -> str:
    customer = context["customer"]
    return env.render(name, context, locale=customer["locale"], timezone=customer["timezone"])

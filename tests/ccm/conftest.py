"""Fixtures of the engine tests: small, hand-made customer and billing files in which
every customer exercises one rule of the channel choice."""
from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

CYCLE = "2026-11"

CUSTOMER_COLUMNS = [
    "external_id", "name", "email", "phone", "address_line1", "address_line2", "city", "region",
    "postal_code", "country", "locale", "timezone", "preferred_channel", "paperless",
    "consent_email", "consent_sms",
]

# external_id, name, email, phone, paperless, email consent, sms consent, address?, locale
CUSTOMERS = [
    ("C-EMAIL", "Alice <script>alert(1)</script> Smith", "alice@example.com", "+14155550101", "yes", "yes", "no", True, "en_US"),
    ("C-PRINT", "Bob O'Brien", "bob@example.com", "+14155550102", "no", "yes", "yes", True, "en_US"),
    ("C-ZH", "王小明", "wang@example.cn", "+8613800138000", "no", "no", "yes", True, "zh_CN"),
    ("C-NOCONSENT", "Carol 😀 Jones", "carol@example.com", "", "yes", "no", "no", True, "en_GB"),
    ("C-NOWHERE", "Dan Nowhere", "", "", "yes", "no", "no", False, "en_US"),
    ("C-SMSONLY", "Eve\r\nBcc: evil@example.net\r\n Zero", "eve@example.com", "+14155550105", "yes", "yes", "yes", True, "en_US"),
]


def write_customers(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CUSTOMER_COLUMNS)
        for ext, name, email, phone, paperless, c_email, c_sms, has_address, locale in CUSTOMERS:
            address = ["1 Main St", "Apt 2", "Springfield", "IL", "62701", "US"] if has_address else ["", "", "", "", "", ""]
            if ext == "C-ZH":
                address = ["人民路100号", "", "上海市", "上海", "200000", "CN"]
            tz = "Asia/Shanghai" if locale == "zh_CN" else "America/Chicago"
            writer.writerow([ext, name, email, phone, *address, locale, tz, "", paperless, c_email, c_sms])
    return path


def statement(ext: str, account: str, lines: int, *, opening: str = "100.00", zero_due: bool = False, extra: tuple = ()) -> dict:
    items = [
        {"date": f"{CYCLE}-{(i % 28) + 1:02d}", "description": f"Usage period {i + 1}", "amount": "12.34"}
        for i in range(lines)
    ]
    items.extend({"date": f"{CYCLE}-15", "description": text, "amount": amount} for text, amount in extra)
    if zero_due:
        items.append({"date": f"{CYCLE}-28", "description": "Payment — thank you", "amount": str(-(Decimal(opening) + Decimal("12.34") * lines))})
    closing = Decimal(opening) + sum(Decimal(item["amount"]) for item in items)
    return {
        "account": account,
        "customer_id": ext,
        "period": CYCLE,
        "opening_balance": opening,
        "closing_balance": str(closing),
        "amount_due": str(max(closing, Decimal("0"))),
        "due_date": "2026-12-15",
        "currency": "USD",
        "lines": items,
    }


def write_feed(path: Path, *, long_statement_lines: int = 4) -> Path:
    records = [
        statement("C-EMAIL", "ACC-1", 3),
        statement("C-PRINT", "ACC-2", long_statement_lines),
        statement("C-ZH", "ACC-3", 5),
        statement("C-NOCONSENT", "ACC-4", 2, extra=(
            ("Turbine <b>installation</b> 🌬️ " + "x" * 300, "9999999999.99"),
            ("Refund\r\nof deposit", "-12345678.90"),
        )),
        statement("C-NOWHERE", "ACC-5", 2),
        statement("C-SMSONLY", "ACC-6", 2, zero_due=True),
    ]
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def bulk_files(folder: Path, count: int, *, lines: int = 40) -> tuple[Path, Path]:
    """``count`` customers who get a paper statement and an SMS reminder each."""
    customers, feed = folder / "bulk-customers.csv", folder / "bulk-feed.jsonl"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CUSTOMER_COLUMNS)
        for i in range(count):
            writer.writerow([f"B-{i:04d}", f"Customer {i}", f"b{i}@example.com", f"+1415555{i:04d}", f"{i} Oak Ave", "",
                             "Springfield", "IL", "62701", "US", "en_US", "America/Chicago", "", "no", "yes", "yes"])
    with feed.open("w", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(json.dumps(statement(f"B-{i:04d}", f"BULK-{i:04d}", lines)) + "\n")
    return customers, feed


@pytest.fixture
def customers_file(tmp_path: Path) -> Path:
    return write_customers(tmp_path / "customers.csv")


@pytest.fixture
def feed_file(tmp_path: Path) -> Path:
    return write_feed(tmp_path / "feed.jsonl")


@pytest.fixture
def loaded(engine, customers_file: Path, feed_file: Path):
    """The engine with the six customers and their statements imported."""
    from ccm.imports import import_customers, import_feed

    rejects = engine.var_dir / "rejects"
    assert import_customers(engine.db, customers_file, rejects_dir=rejects, progress=False).rejected == 0
    assert import_feed(engine.db, feed_file, rejects_dir=rejects, progress=False).rejected == 0
    return engine


@pytest.fixture
def statement_data():
    """``statement_data(customer_id, account, lines)``: one statement of the billing feed."""
    return statement


@pytest.fixture
def write_bulk():
    """``write_bulk(folder, count)``: files of ``count`` paper customers with SMS reminders."""
    return bulk_files


def write_config(path: Path, settings: dict) -> Path:
    """The settings as a TOML file, for ``ccm`` processes started with CCM_CONFIG."""
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path: Path):
    """``config_file(settings)``: write them to a TOML file for CCM_CONFIG; returns its path."""
    return lambda settings: write_config(tmp_path / "ccm.toml", settings)


@pytest.fixture
def campaign_engine(make_settings, tmp_path):
    """An engine with the shared population (``shared_population``: customers E000..E059,
    S000..S007, BOTH and NONE), quiet hours off."""
    from ccm.imports import import_customers
    from ccm.wiring import Engine
    from shared_population import feedback_settings, people, write_people

    engine = Engine.from_settings(feedback_settings(make_settings, tmp_path))
    engine.db.upgrade()
    import_customers(engine.db, write_people(tmp_path / "people.csv", people()), rejects_dir=tmp_path, progress=False)
    yield engine
    engine.close()

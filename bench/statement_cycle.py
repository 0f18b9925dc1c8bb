"""The statement cycle against a hand-written baseline.

Engine: `ccm`'s whole cycle on SQLite in one worker process: plan into the outbox,
render every statement PDF through the sandbox and WeasyPrint, compose e-mails and SMS,
deliver to the embedded default's maildir, print folder and SMS file, record every
outcome.

Baseline: the same number of statement PDFs from the same template files with the same
libraries (plain Jinja2, Babel, one WeasyPrint FontConfiguration and stylesheet), written
to a folder: no database, no outbox, no sandbox, no e-mail. The ratio is what the engine's
bookkeeping and safety cost on top of the unavoidable rendering.
"""
from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from bench.common import TEMPLATES, timed_cycle


def engine_run(folder: Path, customers_file: Path, feed_file: Path, workers: int = 1) -> tuple[float, int]:
    return timed_cycle(folder / f"engine-{workers}", customers_file, feed_file, ccm={"workers": workers})


def statement_html(feed_file: Path, customers_file: Path) -> Iterator[str]:
    """The statements' HTML from the library's templates with plain Jinja2 and Babel (the
    hand-written baseline's way: no sandbox, no template store)."""
    import csv

    import jinja2
    from babel import dates, numbers
    from markupsafe import Markup

    names = {}
    with customers_file.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            names[row["external_id"]] = row
    records = [json.loads(line) for line in feed_file.read_text(encoding="utf-8").splitlines()]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda amount, currency: numbers.format_currency(Decimal(amount), currency, locale="en_US")
    env.filters["date"] = lambda value, format="medium": dates.format_date(value, format=format, locale="en_US")
    env.globals["_"] = lambda msgid, **params: msgid % params if params else msgid
    insert = Markup(env.get_template("inserts/go_paperless.html").render())
    env.globals["slot"] = lambda name: insert
    template = env.get_template("statement/statement.html")
    for record in records:
        if record["customer_id"] not in names:
            continue
        row = names[record["customer_id"]]
        lines = [
            {"date": dt.date.fromisoformat(line["date"]), "description": line["description"], "amount": Decimal(line["amount"])}
            for line in record["lines"]
        ]
        yield template.render({
            "customer": {"name": row["name"], "external_id": row["external_id"], "locale": "en_US", "attributes": {},
                         "address": {k: row.get(f"address_{k}") or row.get(k) or "" for k in ("line1", "line2", "city", "region", "postal_code", "country")}},
            "statement": {**record, "lines": lines, "period_start": dt.date(2026, 11, 1), "period_end": dt.date(2026, 11, 30),
                          "issue_date": dt.date(2026, 12, 1), "due_date": dt.date.fromisoformat(record["due_date"]),
                          "total_debits": sum((l["amount"] for l in lines if l["amount"] > 0), Decimal(0)),
                          "total_credits": sum((-l["amount"] for l in lines if l["amount"] < 0), Decimal(0))},
            "company": {"name": "Northwind Energy", "address_lines": ["100 Harbour Street"], "phone": "+1 555 0100",
                        "email": "billing@northwind.example", "website": "https://northwind.example"},
            "channel": "print", "attachment": False, "links": {"statement": None}, "slots": {},
        })


def baseline_run(folder: Path, feed_file: Path, customers_file: Path) -> tuple[float, int]:
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    out = folder / "baseline"
    out.mkdir()
    start = time.perf_counter()
    fonts = FontConfiguration()
    stylesheet = CSS(filename=str(TEMPLATES / "assets" / "statement.css"), font_config=fonts)
    count = 0
    for count, html in enumerate(statement_html(feed_file, customers_file), start=1):
        pdf = HTML(string=html, base_url=str(TEMPLATES)).write_pdf(stylesheets=[stylesheet], font_config=fonts)
        (out / f"{count:06d}.pdf").write_bytes(pdf)
    return time.perf_counter() - start, count


def main(customers: int) -> None:
    from ccm.demo import write_demo_data

    with tempfile.TemporaryDirectory(prefix="ccm-bench-") as tmp:
        folder = Path(tmp)
        customers_file, feed_file = write_demo_data(folder / "data", customers=customers)
        base_seconds, base_count = baseline_run(folder, feed_file, customers_file)
        engine_seconds, engine_count = engine_run(folder, customers_file, feed_file)
        pool_seconds, _ = engine_run(folder, customers_file, feed_file, workers=2)
    per_base, per_engine = base_seconds / base_count, engine_seconds / engine_count
    print(f"statement cycle, {engine_count} statements (baseline {base_count} PDFs):")
    print(f"  baseline           {base_seconds:7.2f} s  {per_base * 1000:7.1f} ms/statement")
    print(f"  engine, 1 worker   {engine_seconds:7.2f} s  {per_engine * 1000:7.1f} ms/statement")
    print(f"  engine, 2 workers  {pool_seconds:7.2f} s  {pool_seconds / engine_count * 1000:7.1f} ms/statement")
    print(f"  engine speed / baseline speed: {per_base / per_engine:.2f}x (1 worker); 2 workers / 1 worker: {engine_seconds / pool_seconds:.2f}x")

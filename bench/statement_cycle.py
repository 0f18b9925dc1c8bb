"""The statement cycle against a hand-written baseline, and headless Chromium on the same HTML.

Data: the demo generator with every statement two pages of its own (12 to 34 lines; the
first page holds about ten), no deliberately bad rows. Every document is those two pages
plus the terms and conditions page: three pages, each way.

Engine: `ccm`'s whole cycle on SQLite, one worker process and then a pool of two: plan
into the outbox, decide the insert, render every statement through the sandbox and
WeasyPrint as PDF/A-3b with the terms page (laid out once per locale) appended, archive it
(fsynced, hashed, indexed), compose e-mails with the PDF attached and SMS reminders,
deliver to the embedded default's maildir, print folder and SMS file, record every outcome,
write the print production streams.

Baseline: the same statements from the same template files with the same libraries and no
engine: plain Jinja2, Babel and the translation catalogue, one WeasyPrint
FontConfiguration and parsed stylesheet, the terms page laid out once per locale and
appended with WeasyPrint's own ``Document.copy``; plain PDF (not PDF/A), written to a
folder. No database, no outbox, no sandbox, no e-mail. The ratio is what the engine's
bookkeeping and safety cost on top of the unavoidable rendering.

Both sides' page counts are compared document by document (same account, same pages).
"""
from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from io import BytesIO
from typing import Iterator

from ccm.links import qr_data_uri
from bench.common import ROOT, TEMPLATES, CycleResult, cpu_seconds, cycle_run

TYPST_STATEMENT = "statement/statement.typ"
HTML_STATEMENT = "statement/statement.html"  # the engine on WeasyPrint: the HTML statement, no longer the default
STATEMENT_LINES = (12, 34)  # two pages of their own in English and Chinese, with any insert
CHROMIUM_STATEMENTS = 300  # the PDF-engine comparison renders this many (both engines, same HTML)


def write_data(folder: Path, customers: int) -> tuple[Path, Path]:
    from ccm.demo import write_demo_data

    return write_demo_data(folder, customers=customers, lines=STATEMENT_LINES, bad_rows=False)


@dataclass
class Statement:
    account: str
    locale: str  # the template's locale tag (zh_Hans_CN, as the engine negotiates it)
    html: str


class _PlainTemplates:
    """The library's templates with plain Jinja2 and Babel: what a hand-written script does."""

    def __init__(self) -> None:
        import jinja2
        from babel.messages.pofile import read_po

        with open(TEMPLATES / "i18n" / "zh_Hans.po", "rb") as fh:
            zh = {message.id: message.string for message in read_po(fh) if message.id and message.string}
        self.catalogs = {"zh_Hans_CN": zh}
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self.locale = "en_US"
        self.env.filters["money"] = self._money
        self.env.filters["date"] = self._date
        self.env.filters["isolate"] = lambda value: value  # left-to-right documents only: nothing to isolate
        self.env.globals["_"] = self._gettext
        self.env.globals["slot"] = lambda name: self.insert
        self.insert = ""
        with open(ROOT / "config" / "defaults.toml", "rb") as fh:
            self.company = tomllib.load(fh)["company"]

    def _money(self, amount: Decimal, currency: str) -> str:
        from babel import numbers

        return numbers.format_currency(Decimal(amount), currency, locale=self.locale)

    def _date(self, value: dt.date, format: str = "medium") -> str:
        from babel import dates

        return dates.format_date(value, format=format, locale=self.locale)

    def _gettext(self, msgid: str, **params: object) -> str:
        text = self.catalogs.get(self.locale, {}).get(msgid, msgid)
        return text % params if params else text

    def render(self, name: str, context: dict, locale: str, insert: str | None = None) -> str:
        from markupsafe import Markup

        self.locale = locale
        if insert is not None:
            self.insert = Markup(self.env.get_template(insert).render({**context, "locale": locale}))
        return self.env.get_template(name).render({**context, "locale": locale, "company": self.company})


@dataclass
class StatementData:
    account: str
    locale: str  # the template's locale tag (zh_Hans_CN, as the engine negotiates it)
    context: dict
    insert: str  # the insert's template, HTML form (its Typst form: the same name with .typ)


def statement_contexts(feed_file: Path, customers_file: Path) -> Iterator[StatementData]:
    """Each statement's render context, the baseline's way. The insert follows the shipped
    decision as it falls out on this data (no history: no tier or lifecycle yet): go
    paperless for customers on paper, the premium upgrade otherwise."""
    import csv

    customers = {}
    with customers_file.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            customers[row["external_id"]] = row
    issue_date = dt.datetime.now(dt.timezone.utc).date()  # the engine issues on the run's date
    with feed_file.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            row = customers.get(record["customer_id"])
            if row is None:
                continue
            locale = "zh_Hans_CN" if row["locale"].startswith("zh") else row["locale"]
            lines = [{"date": dt.date.fromisoformat(item["date"]), "description": item["description"], "amount": Decimal(item["amount"])}
                     for item in record["lines"]]
            customer = {"name": row["name"], "external_id": row["external_id"], "locale": row["locale"], "attributes": {},
                        "address": {key: row[f"address_{key}"] if key in ("line1", "line2") else row[key]
                                    for key in ("line1", "line2", "city", "region", "postal_code", "country")}}
            statement = {
                **record, "lines": lines, "period_start": dt.date(2026, 11, 1), "period_end": dt.date(2026, 11, 30),
                "issue_date": issue_date, "due_date": dt.date.fromisoformat(record["due_date"]), "amount_due": Decimal(record["amount_due"]),
                "total_debits": sum((item["amount"] for item in lines if item["amount"] > 0), Decimal(0)),
                "total_credits": sum((-item["amount"] for item in lines if item["amount"] < 0), Decimal(0)),
            }
            # The same short payment link and QR code the engine prints (a code of the same length).
            pay = f"http://127.0.0.1:8000/s/{len(record['account']):x}-0-0123456789"
            context = {"customer": customer, "statement": statement, "channel": "print", "attachment": False,
                       "links": {"statement": None, "pay": pay, "pay_qr": qr_data_uri(pay)}, "slots": {}}
            insert = "inserts/premium_upgrade.html" if row["paperless"] == "yes" else "inserts/go_paperless.html"
            yield StatementData(record["account"], locale, context, insert)


def statement_html(feed_file: Path, customers_file: Path) -> Iterator[Statement]:
    """Each statement's HTML from the library's templates, the baseline's way."""
    templates = _PlainTemplates()
    for item in statement_contexts(feed_file, customers_file):
        yield Statement(item.account, item.locale, templates.render("statement/statement.html", item.context, item.locale, item.insert))


def terms_html(locale: str) -> str:
    return _PlainTemplates().render("statement/terms.html", {"channel": "print", "slots": {}}, locale)


def baseline_run(folder: Path, feed_file: Path, customers_file: Path) -> CycleResult:
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    out = folder / "baseline"
    out.mkdir()
    cpu = cpu_seconds()
    start = time.perf_counter()
    fonts = FontConfiguration()
    stylesheet = CSS(filename=str(TEMPLATES / "assets" / "statement.css"), font_config=fonts)
    terms = {}  # the terms page laid out once per locale, appended to every statement
    pages = {}
    for count, statement in enumerate(statement_html(feed_file, customers_file), start=1):
        if statement.locale not in terms:
            terms[statement.locale] = HTML(string=terms_html(statement.locale), base_url=str(TEMPLATES)).render(
                stylesheets=[stylesheet], font_config=fonts)
        document = HTML(string=statement.html, base_url=str(TEMPLATES)).render(stylesheets=[stylesheet], font_config=fonts)
        document = document.copy([*document.pages, *terms[statement.locale].pages])
        (out / f"{count:06d}.pdf").write_bytes(document.write_pdf())
        pages[statement.account] = len(document.pages)
    return CycleResult(time.perf_counter() - start, len(pages), pages, pdf_a=False, cpu_seconds=cpu_seconds() - cpu)


def typst_baseline_run(folder: Path, feed_file: Path, customers_file: Path) -> CycleResult:
    """The same statements from the same Typst templates with no engine: a hand-written
    loop that formats the data with Babel, hands it to one kept ``typst.Compiler`` as JSON
    and writes plain PDFs (the terms page is included by the template, as in the engine)."""
    import typst
    from babel import Locale
    from babel.dates import format_date
    from babel.messages.pofile import read_po
    from babel.numbers import format_currency
    from pypdf import PdfReader

    catalogs = {}
    for path in (TEMPLATES / "i18n").glob("*.po"):
        with path.open("rb") as fh:
            catalogs[path.stem] = {m.id: m.string for m in read_po(fh) if m.id and m.string and isinstance(m.id, str)}
    source = (TEMPLATES / "statement" / "statement.typ").read_bytes()
    compiler = typst.Compiler(root=str(TEMPLATES))
    out = folder / "typst-baseline"
    out.mkdir()
    company = tomllib.loads((ROOT / "config" / "defaults.toml").read_text())["company"]

    def plain(value, locale, currency=None):  # type: ignore[no-untyped-def]
        if isinstance(value, Decimal):
            text = format_currency(value, currency, locale=locale) if currency else str(value)
            return {"value": str(value), "text": text, "negative": value < 0}
        if isinstance(value, dt.date):
            return {"iso": value.isoformat(), **{f: format_date(value, f, locale=locale) for f in ("short", "medium", "long")}}
        if isinstance(value, dict):
            inner = value.get("currency", currency)
            return {k: plain(v, locale, inner) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v, locale, currency) for v in value]
        if isinstance(value, str) and value.startswith("data:image/svg+xml"):
            import base64
            import urllib.parse

            header, _, payload = value.partition(",")
            return base64.b64decode(payload).decode() if header.endswith(";base64") else urllib.parse.unquote(payload)
        return value

    cpu = cpu_seconds()
    start = time.perf_counter()
    pages = {}
    for count, item in enumerate(statement_contexts(feed_file, customers_file), start=1):
        locale = Locale.parse(item.locale)
        statement = {**item.context["statement"], **{key: Decimal(item.context["statement"][key])
                                                      for key in ("opening_balance", "closing_balance")}}
        data = plain({**item.context, "statement": statement, "company": company}, locale)
        data.update(lang=locale.language, region=locale.territory or "", dir="ltr",
                    t=catalogs.get("zh_Hans" if locale.language == "zh" else str(locale), {}),
                    slots={"statement.insert": item.insert.rsplit(".", 1)[0] + ".typ"}, locale=str(locale))
        pdf = compiler.compile(input=source, format="pdf", sys_inputs={"data": json.dumps(data, default=str)})
        (out / f"{count:06d}.pdf").write_bytes(pdf)
        pages[item.account] = len(PdfReader(BytesIO(pdf)).pages)
    return CycleResult(time.perf_counter() - start, len(pages), pages, pdf_a=False, cpu_seconds=cpu_seconds() - cpu)


def engine_run(folder: Path, customers_file: Path, feed_file: Path, workers: int = 1, *, document: str | None = None) -> CycleResult:
    label = "typst" if document and document.endswith(".typ") else "weasyprint"
    return cycle_run(folder / f"engine-{label}-{workers}", customers_file, feed_file, ccm={"workers": workers}, document=document)


def _same_pages(a: CycleResult, b: CycleResult) -> int:
    return sum(1 for account, pages in a.pages_by_account.items() if b.pages_by_account.get(account) == pages)


def main(customers: int, *, pool: int = 2, chromium: int | None = CHROMIUM_STATEMENTS, as_json: bool = False,
         weasyprint: bool = True) -> dict:
    """Time the hand-written baselines (WeasyPrint, Typst) and the engine on each document
    engine, Typst with one worker and with ``pool`` workers; then, when ``chromium`` is not
    0 or None, plain WeasyPrint and Chromium on that many of the same statements. Prints a
    table, or with ``as_json`` one JSON object; returns the figures."""
    from bench import chromium as chromium_bench

    with tempfile.TemporaryDirectory(prefix="ccm-bench-") as tmp:
        folder = Path(tmp)
        customers_file, feed_file = write_data(folder / "data", customers)
        typst_base = typst_baseline_run(folder, feed_file, customers_file)
        typst_one = engine_run(folder, customers_file, feed_file, document=TYPST_STATEMENT)
        typst_many = engine_run(folder, customers_file, feed_file, workers=pool, document=TYPST_STATEMENT) if pool > 1 else None
        base = baseline_run(folder, feed_file, customers_file) if weasyprint else None
        one = engine_run(folder, customers_file, feed_file, document=HTML_STATEMENT) if weasyprint else None
        sample = [s.html for _, s in zip(range(chromium or 0), statement_html(feed_file, customers_file))]
    compared = chromium_bench.compare(sample, quiet=as_json) if sample else None

    def ms(result: CycleResult | None) -> float | None:
        return round(result.seconds / result.pages * 1000, 2) if result else None

    figures = {
        "statements": typst_one.records, "pages_typst": typst_one.pages,
        "engine_typst_ms_per_page": ms(typst_one), "typst_baseline_ms_per_page": ms(typst_base),
        "engine_typst_workers": pool if typst_many else 1,
        "engine_typst_pool_ms_per_page": ms(typst_many),
        "engine_weasyprint_ms_per_page": ms(one), "weasyprint_baseline_ms_per_page": ms(base),
        "chromium_ms_per_page": round(compared["chromium_ms_per_page"], 2) if compared else None,
        "engine_typst_cpu_ms_per_page": round(typst_one.cpu_seconds / typst_one.pages * 1000, 2),
        "engine_typst_pdf_a": typst_one.pdf_a,
        # a million statements of this cycle's pages each, on one core, at the engine's Typst speed
        "core_hours_per_million": round(typst_one.cpu_seconds / typst_one.records * 1_000_000 / 3600, 1),
        "typst_same_pages": _same_pages(typst_base, typst_one),
    }
    if typst_many:
        figures["typst_pool_speedup"] = round(typst_one.seconds / typst_many.seconds, 2)
    figures["typst_engine_vs_baseline"] = round(typst_base.seconds / typst_base.pages / (typst_one.seconds / typst_one.pages), 2)
    if compared:
        figures["typst_vs_chromium"] = round(compared["chromium_ms_per_page"] / figures["engine_typst_ms_per_page"], 2)
    if as_json:
        print(json.dumps(figures))
        return figures
    print(f"statement cycle, {typst_one.records} statements, {typst_one.pages} pages with Typst (terms page included):")
    rows = [("Typst baseline, hand-written loop, plain PDF", typst_base),
            (f"engine on Typst, 1 worker, {'PDF/A-3b + UA-1' if typst_one.pdf_a else 'plain PDF'}", typst_one)]
    if typst_many is not None:
        rows.append((f"engine on Typst, {pool} workers", typst_many))
    if base and one:
        rows += [("WeasyPrint baseline, plain PDF", base), (f"engine on WeasyPrint, 1 worker, {'PDF/A-3b' if one.pdf_a else 'plain PDF'}", one)]
    for label, result in rows:
        print(f"  {label:46s} {result.seconds:8.2f} s  {result.seconds / result.pages * 1000:6.1f} ms/page  "
              f"{result.seconds / result.records * 1000:6.1f} ms/statement   (CPU {result.cpu_seconds / result.pages * 1000:6.1f} ms/page)")
    line = f"  engine on Typst / Typst baseline speed: {figures['typst_engine_vs_baseline']:.2f}x (goal 0.8x)"
    if typst_many:
        line += f"; {pool} workers / 1 worker: {figures['typst_pool_speedup']:.2f}x (goal 1.8x)"
    print(line)
    if compared:
        print(f"  engine on Typst is {figures['typst_vs_chromium']:.1f}x faster per page than Chromium (goal 3x)")
    print(f"  {figures['core_hours_per_million']} core-hours per million statements like these on the engine with Typst")
    print(f"  same documents: {figures['typst_same_pages']} of {typst_base.records} with the same page count (Typst baseline and engine)")
    return figures


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.statement_cycle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=500, help="statements in the cycle (2000 for the issue's scale)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the pool run (1: no pool run)")
    parser.add_argument("--chromium", type=int, default=CHROMIUM_STATEMENTS, metavar="N",
                        help="statements rendered by WeasyPrint and Chromium in the PDF-engine comparison (0: skip it)")
    parser.add_argument("--no-weasyprint", action="store_true", help="skip the WeasyPrint baseline and engine run")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    args = parser.parse_args()
    main(args.customers, pool=args.workers, chromium=min(args.chromium, args.customers), as_json=args.json,
         weasyprint=not args.no_weasyprint)

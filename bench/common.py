"""What the benchmarks share: an engine in a scratch folder, loaded, and one timed cycle."""
from __future__ import annotations

import csv
import json
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


@dataclass
class CycleResult:
    """One timed statement cycle: wall-clock seconds of the cycle alone (plan, render,
    deliver, record, print production), its records, and the PDFs it archived."""

    seconds: float
    records: int
    pages_by_account: dict[str, int] = field(default_factory=dict)  # archived PDFs (PDF/A by default)
    pdf_a: bool = False
    cpu_seconds: float = 0.0  # this process and its finished children (worker pools)

    @property
    def pages(self) -> int:
        return sum(self.pages_by_account.values())


def engine_settings(var: Path, **sections: dict) -> dict:
    """The settings of a scratch engine in ``var``: SQLite, one worker, e-mail to a maildir,
    SMS to a file, print to a folder, no quiet hours (a benchmark's run must not depend on
    the time of day in its customers' time zones); ``sections`` add to or override them, key by key."""
    settings: dict = {
        "ccm": {"database_url": f"sqlite:///{var}/ccm.db", "var_dir": str(var), "templates_dir": str(TEMPLATES), "workers": 1},
        "channels": {"email": f"maildir://{var}/maildir", "sms": f"file://{var}/sms.jsonl", "print": f"print://{var}/print"},
        "delivery": {"quiet_hours": ""},
    }
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    return settings


def write_email_customers(path: Path, external_ids: Iterable[str]) -> Path:
    """A customers file of e-mail customers who consented to e-mail, in UTC."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "consent_email", "timezone"])
        for external_id in external_ids:
            writer.writerow([external_id, f"Customer {external_id}", f"{external_id.lower()}@example.com", "yes", "UTC"])
    return path


def write_statement_feed(path: Path, accounts: Iterable[tuple[str, str]]) -> Path:
    """A billing feed of one small November statement per (account, customer external id)."""
    with path.open("w", encoding="utf-8") as fh:
        for account, customer in accounts:
            fh.write(json.dumps({"account": account, "customer_id": customer, "period": "2026-11", "opening_balance": "10.00",
                                 "closing_balance": "22.34", "amount_due": "22.34", "due_date": "2026-12-15", "currency": "USD",
                                 "lines": [{"date": "2026-11-05", "description": "Energy usage", "amount": "12.34"}]}) + "\n")
    return path


def cycle_run(var: Path, customers: Path, feed: Path, *, ccm: dict | None = None, document: str | None = None,
              **sections: dict) -> CycleResult:
    """Import the files into a fresh SQLite engine in ``var`` and time the statement cycle
    alone; the import and the first seeding of the template library (checking every
    template once, as setting up an engine does, not each month) are not timed.
    ``document``: the statement's template instead of the shipped one
    (``statement/statement.typ``: Typst, its terms page included)."""
    from sqlalchemy import select

    from ccm.authoring import sync_library

    from ccm.wiring import Engine
    from ccm.imports import import_customers, import_feed
    from ccm.models import ArchivedDocument
    from ccm.runs import service

    engine = Engine.from_settings(engine_settings(var, ccm={**(ccm or {})}, **sections))
    engine.db.upgrade()
    import_customers(engine.db, customers, rejects_dir=var, progress=False)
    import_feed(engine.db, feed, rejects_dir=var, progress=False)
    with engine.db.session() as session:  # the library as an installed engine has it (seeded once, checked)
        sync_library(session, engine.templates_dir)
    if document is not None:
        _use_document(engine, document)
    cpu = cpu_seconds()
    start = time.perf_counter()
    outcome = service.run_cycle(engine, "statement", "2026-11", progress=False)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    with engine.db.reader() as session:
        archived = session.execute(select(ArchivedDocument.account, ArchivedDocument.pages, ArchivedDocument.pdf_a)).all()
    engine.close()
    if not outcome.report.complete:
        raise RuntimeError(f"the benchmark's run did not complete: {outcome.report.reconciliation()}")
    return CycleResult(elapsed, outcome.report.records_in, {account: pages for account, pages, _ in archived},
                       pdf_a=bool(archived) and all(pdf_a for _, _, pdf_a in archived), cpu_seconds=cpu)


HTML_TERMS = "statement/terms.html"


def _use_document(engine, document: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from ccm.communications import MONTHLY_STATEMENT, ensure_built_in
    from ccm.models import Communication

    with engine.db.session() as session:
        ensure_built_in(session)
        statement = session.scalar(select(Communication).where(Communication.name == MONTHLY_STATEMENT))
        typst = document.endswith(".typ")  # a Typst statement lays its terms page out itself; the HTML one appends it
        statement.config = {**statement.config, "document": document, "static_pages": [] if typst else [HTML_TERMS]}


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended: a second figure
    that other jobs on the machine disturb much less than wall-clock time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_cycle(var: Path, customers: Path, feed: Path, *, ccm: dict | None = None, **sections: dict) -> tuple[float, int]:
    """:func:`cycle_run` as (seconds, statements)."""
    result = cycle_run(var, customers, feed, ccm=ccm, **sections)
    return result.seconds, result.records

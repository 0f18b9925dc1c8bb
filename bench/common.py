"""What the benchmarks share: an engine in a scratch folder, loaded, and one timed cycle."""
from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def timed_cycle(var: Path, customers: Path, feed: Path, *, ccm: dict | None = None, **sections: dict) -> tuple[float, int]:
    """Import the files into a fresh SQLite engine in ``var`` and time the statement cycle
    alone (plan, render, deliver, record); returns (seconds, statements)."""
    from ccm.engine import Engine
    from ccm.imports import import_customers, import_feed
    from ccm.runs import service

    settings = {
        "ccm": {"database_url": f"sqlite:///{var}/ccm.db", "var_dir": str(var), "templates_dir": str(TEMPLATES), "workers": 1, **(ccm or {})},
        "channels": {"email": f"maildir://{var}/maildir", "sms": f"file://{var}/sms.jsonl", "print": f"print://{var}/print"},
    }
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    engine = Engine.from_settings(settings)
    engine.db.upgrade()
    import_customers(engine.db, customers, rejects_dir=var, progress=False)
    import_feed(engine.db, feed, rejects_dir=var, progress=False)
    start = time.perf_counter()
    outcome = service.run_cycle(engine, "statement", "2026-11", progress=False)
    elapsed = time.perf_counter() - start
    engine.close()
    if not outcome.report.complete:
        raise RuntimeError(f"the benchmark's run did not complete: {outcome.report.reconciliation()}")
    return elapsed, outcome.report.records_in

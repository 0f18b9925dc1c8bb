"""Peak memory of a run against its size: a 100,000-message run should need no more than
1.2x the memory of a 10,000-message run (issue "Production batch runs").

What runs, at each size N: the statement cycle on SQLite in one worker process for N/2
paperless customers, each sent a "statement ready" e-mail (no attachment, archive off)
over SMTP (4 sessions) to an aiosmtpd sink in its own process, and an SMS payment
reminder to the SMS file channel: N messages through the whole engine path (plan in
batches, decide, compose in the sandbox, deliver, record, reconcile, report).

What it leaves out: statement PDFs, the archive and print production. A PDF costs a
good part of a second, so 100,000 of them would take hours here; they are rendered one
document at a time and print streams are merged in bounded batches. ``--memory-print``
adds a smaller check of exactly that: paper statements (PDF/A, archived, print batches,
print production with streams of 25 documents) at two sizes.

Each size runs in a fresh process with the same settings. The data is generated and
imported by another process first, so the figure is the run's own: the peak resident
set size (``ru_maxrss``) of the process that planned and delivered the run, imports of
the engine's libraries included (the same at every size).
"""
from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import engine_settings, write_statement_feed

GOAL = 1.2
STREAM_DOCUMENTS = 25  # print production streams in the print check: several per run at both sizes


def _write_data(folder: Path, customers: int, *, paper: bool) -> tuple[Path, Path]:
    """``customers`` customers with a statement each: paperless with an e-mail address and
    SMS consent (an e-mail and an SMS reminder each), or on paper (a printed statement)."""
    people, feed = folder / "customers.csv", folder / "feed.jsonl"
    with people.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "phone", "address_line1", "city", "postal_code", "country",
                         "paperless", "consent_email", "consent_sms", "timezone"])
        for i in range(customers):
            writer.writerow([f"M{i:07d}", f"Customer {i}", f"m{i}@example.com", f"+14152{i:06d}", f"{i} Oak Ave", "Springfield",
                             f"{62000 + i % 900}", "US", "no" if paper else "yes", "yes", "no" if paper else "yes", "America/Chicago"])
    write_statement_feed(feed, ((f"MA{i:07d}", f"M{i:07d}") for i in range(customers)))
    return people, feed


def _settings(var: Path, port: int | None, *, paper: bool) -> dict:
    settings = engine_settings(var, channels={"sms": f"file://{var}/sms/outbox.jsonl"})
    if paper:
        settings["production"] = {"stream_documents": STREAM_DOCUMENTS}
    else:
        settings["channels"]["email"] = f"smtp://127.0.0.1:{port}?starttls=off&sessions=4"
        settings["email"] = {"attach_pdf": False}
        settings["archive"] = {"enabled": False}
    return settings


def _child(*args: str) -> dict:
    """Run ``python -m bench.memory ARGS`` in a fresh process; its last line is JSON."""
    done = subprocess.run([sys.executable, "-m", "bench.memory", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(messages: int, folder: Path, port: int | None, *, paper: bool = False) -> dict:
    """Set up and run one size; returns the run process's figures."""
    customers = messages if paper else messages // 2
    var = folder / f"{'print' if paper else 'mail'}-{messages}"
    var.mkdir(parents=True)
    people, feed = _write_data(var, customers, paper=paper)
    settings = var / "settings.json"
    settings.write_text(json.dumps(_settings(var / "var", port, paper=paper)), encoding="utf-8")
    _child("load", str(settings), str(people), str(feed))
    result = _child("run", str(settings))
    if not result["complete"] or result["sent"] != messages:
        raise RuntimeError(f"the {messages}-message run did not deliver everything: {result}")
    return result


def _load(settings_file: str, people: str, feed: str) -> dict:
    from ccm.authoring import sync_library
    from ccm.wiring import Engine
    from ccm.imports import import_customers, import_feed

    engine = Engine.from_settings(json.loads(Path(settings_file).read_text(encoding="utf-8")))
    engine.db.upgrade()
    with engine.db.session() as session:  # the library as an installed engine has it: seeded (every template checked) once
        sync_library(session, engine.templates_dir)
    rejected = import_customers(engine.db, people, rejects_dir=engine.var_dir, progress=False).rejected
    rejected += import_feed(engine.db, feed, rejects_dir=engine.var_dir, progress=False).rejected
    engine.close()
    if rejected:
        raise RuntimeError(f"{rejected} rows of the generated data were rejected")
    return {"loaded": True}


def _run(settings_file: str) -> dict:
    from ccm.wiring import Engine
    from ccm.runs import service

    engine = Engine.from_settings(json.loads(Path(settings_file).read_text(encoding="utf-8")))
    before = _resident_kib()
    start = time.perf_counter()
    outcome = service.run_cycle(engine, "statement", "2026-11", progress=False)
    seconds = time.perf_counter() - start
    report = outcome.report
    sent = sum(counts.get("sent", 0) for counts in report.by_channel.values())
    engine.close()
    return {"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "start_kib": before, "seconds": seconds,
            "complete": report.complete, "sent": sent, "by_channel": report.by_channel}


def _resident_kib() -> int:
    """Resident set size now (Linux), in KiB; 0 where /proc is not there."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _table(title: str, sizes: tuple[int, ...], results: list[dict]) -> None:
    print(title)
    for size, result in zip(sizes, results):
        channels = ", ".join(f"{kind} {counts.get('sent', 0)}" for kind, counts in sorted(result["by_channel"].items()))
        print(f"  {size:>8,} messages  peak RSS {result['peak_kib'] / 1024:7.1f} MiB  (at the start of the run "
              f"{result['start_kib'] / 1024:6.1f} MiB)  {result['seconds']:7.1f} s  sent: {channels}")
    ratio = results[-1]["peak_kib"] / results[0]["peak_kib"]
    verdict = "within" if ratio <= GOAL else "over"
    print(f"  peak RSS {sizes[-1]:,} / {sizes[0]:,} messages: {ratio:.2f}x ({verdict} the goal of {GOAL}x)")


def main(sizes: tuple[int, ...] = (10_000, 100_000), print_sizes: tuple[int, ...] = (50, 500)) -> None:
    from bench.email_delivery import SinkProcess

    with tempfile.TemporaryDirectory(prefix="ccm-bench-memory-") as tmp:
        sink = SinkProcess()
        try:
            results = [measure(size, Path(tmp), sink.port) for size in sizes]
        finally:
            sink.stop()
        _table("memory, one worker process: e-mail (SMTP sink, no attachment, archive off) and SMS reminders, "
               "plan + decide + compose + deliver + record:", sizes, results)
        if print_sizes:
            printed = [measure(size, Path(tmp), None, paper=True) for size in print_sizes]
            _table(f"memory, paper statements (PDF/A, archive, print batches, production streams of {STREAM_DOCUMENTS}):",
                   print_sizes, printed)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1][:1].isdigit():  # python -m bench.memory [10000,100000 [50,500]]
        sizes = [tuple(int(n) for n in arg.split(",") if int(n)) for arg in sys.argv[1:3]]
        main(*sizes)
        raise SystemExit(0)
    command, *arguments = sys.argv[1:]
    if command == "load":
        figures = _load(*arguments)
    elif command == "run":
        figures = _run(*arguments)
    else:
        raise SystemExit(f"usage: python -m bench.memory load SETTINGS PEOPLE FEED | run SETTINGS (not {command!r})")
    print(json.dumps(figures))

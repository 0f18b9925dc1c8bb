"""E-mail statements ("your statement is ready", no attachment) to a local SMTP sink.

Engine: the statement cycle for N paperless customers on SQLite, one worker process: plan
into the outbox, decide, render subject, HTML and text in the sandbox, inline CSS, build
MIME, check suppression/consent/limits, send over the SMTP adapter (4 sessions, sends
overlapping the composing of the next messages), record every outcome (one transaction
per few messages). Archive off, no PDF. Click and open tracking off, so that it does the
baseline's work; a second engine run with them on (the default) shows what they cost.

Baseline: the same N e-mails from the same template files with the same libraries (plain
Jinja2, css-inline, the stdlib's EmailMessage) over 4 persistent smtplib connections used
in turn from one thread: no database, no outbox, no sandbox.

Both send to the same aiosmtpd sink on 127.0.0.1, which runs in its own process (as a
mail server would), so its work does not compete with the sender for the GIL. Beside the
wall-clock time, the CPU time of the sending process (all its threads) is a second figure
that other jobs on the machine disturb less; with ``rounds`` the two alternate that many
times and the fastest run of each counts.
"""
from __future__ import annotations

import csv
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from bench.common import TEMPLATES, cpu_seconds, cycle_run, write_statement_feed


SINK = """
import sys
from aiosmtpd.controller import Controller

class Sink:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Sink.count += 1
        return "250 OK"

controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for line in sys.stdin:  # each line asks for the count; end of input stops the sink
    print(Sink.count, flush=True)
controller.stop()
"""


class SinkProcess:
    """An aiosmtpd server that accepts everything, in a process of its own."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen([sys.executable, "-c", SINK, str(self.port)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise RuntimeError("the SMTP sink did not start")

    def received(self) -> int:
        self.process.stdin.write("count\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return int(self.process.stdout.readline())  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(timeout=30)


def _data(folder: Path, count: int) -> tuple[Path, Path]:
    customers, feed = folder / "customers.csv", folder / "feed.jsonl"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "paperless", "consent_email", "locale", "timezone"])
        for i in range(count):
            writer.writerow([f"E{i:06d}", f"Customer {i}", f"c{i}@example.com", "yes", "yes", "en_US", "America/Chicago"])
    write_statement_feed(feed, ((f"A{i:06d}", f"E{i:06d}") for i in range(count)))
    return customers, feed


def engine_run(folder: Path, port: int, customers: Path, feed: Path, *, tracking: bool = False) -> tuple[float, float]:
    """The engine's cycle into a fresh database in ``folder``: (seconds, CPU seconds)."""
    channels = {"email": f"smtp://127.0.0.1:{port}?starttls=off&sessions=4"}
    result = cycle_run(folder, customers, feed, ccm={"chunk_size": 100}, channels=channels, email={"attach_pdf": False},
                       archive={"enabled": False}, feedback={"open_tracking": tracking, "click_tracking": tracking})
    return result.seconds, result.cpu_seconds


def baseline_run(port: int, count: int) -> tuple[float, float]:
    """The hand-written sender: (seconds, CPU seconds)."""
    import css_inline
    import jinja2
    from babel import dates, numbers

    cpu = cpu_seconds()
    start = time.perf_counter()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda amount, currency: numbers.format_currency(Decimal(amount), currency, locale="en_US")
    env.filters["date"] = lambda value, format="medium": dates.format_date(value, format=format, locale="en_US")
    env.filters["isolate"] = lambda value: value  # left-to-right e-mails only: nothing to isolate
    env.globals["_"] = lambda msgid, **params: msgid % params if params else msgid
    subject_t, html_t, text_t = (env.get_template(f"email/statement_ready.{part}") for part in ("subject.txt", "html", "txt"))
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    connections = [smtplib.SMTP("127.0.0.1", port) for _ in range(4)]
    import datetime as dt

    for i in range(count):
        context = {
            "customer": {"name": f"Customer {i}", "external_id": f"E{i:06d}", "email": f"c{i}@example.com", "attributes": {}},
            "statement": {"account": f"A{i:06d}", "period": "2026-11", "amount_due": Decimal("22.34"), "currency": "USD",
                          "due_date": dt.date(2026, 12, 15), "closing_balance": Decimal("22.34")},
            "company": {"name": "Northwind Energy", "address_lines": ["100 Harbour Street"], "phone": "+1 555 0100",
                        "email": "billing@northwind.example", "website": "https://northwind.example"},
            "channel": "email", "attachment": False, "links": {"statement": None}, "slots": {},
        }
        message = EmailMessage()
        message["Subject"] = " ".join(subject_t.render(context).split())
        message["From"] = "statements@northwind.example"
        message["To"] = f"c{i}@example.com"
        message["Message-ID"] = f"<bench-{i}@northwind.example>"
        message.set_content(text_t.render(context))
        message.add_alternative(inliner.inline(html_t.render(context)), subtype="html")
        connections[i % 4].send_message(message)
    for connection in connections:
        connection.quit()
    return time.perf_counter() - start, cpu_seconds() - cpu


def main(count: int, *, rounds: int = 1, tracking: bool = True) -> None:
    runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "engine": [], "tracked": []}
    sink = SinkProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="ccm-bench-mail-") as tmp:
            customers, feed = _data(Path(tmp), count)
            for round_ in range(rounds):
                runs["baseline"].append(baseline_run(sink.port, count))
                runs["engine"].append(engine_run(Path(tmp) / f"engine-{round_}", sink.port, customers, feed))
            if tracking:
                runs["tracked"].append(engine_run(Path(tmp) / "tracked", sink.port, customers, feed, tracking=True))
            received = sink.received()
    finally:
        sink.stop()
    expected = count * sum(len(figures) for figures in runs.values())
    if received != expected:
        raise RuntimeError(f"the sink received {received} of {expected} e-mails")
    (base, base_cpu), (engine, engine_cpu) = (min(runs[name]) for name in ("baseline", "engine"))
    best = f", fastest of {rounds} alternating runs each" if rounds > 1 else ""
    print(f"e-mail, {count} messages to a local SMTP sink (aiosmtpd in its own process), one sending process{best}:")
    print(f"  baseline         {base:7.2f} s  {count / base:7.1f} msg/s  CPU {base_cpu:7.2f} s  (4 persistent connections in turn, no bookkeeping)")
    print(f"  engine           {engine:7.2f} s  {count / engine:7.1f} msg/s  CPU {engine_cpu:7.2f} s  "
          "(plan, decide, sandbox, outbox; 4 SMTP sessions; tracking off like the baseline)")
    if runs["tracked"]:
        tracked, tracked_cpu = runs["tracked"][0]
        print(f"  engine, tracked  {tracked:7.2f} s  {count / tracked:7.1f} msg/s  CPU {tracked_cpu:7.2f} s  "
              "(the same with click and open tracking on, the default)")
    print(f"  throughput engine/baseline: {base / engine:.2f}x wall-clock, {base_cpu / engine_cpu:.2f}x by CPU time (goal: at least 0.8x)"
          + (f"; with tracking {base / tracked:.2f}x" if runs["tracked"] else ""))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, rounds=int(sys.argv[2]) if len(sys.argv) > 2 else 1)

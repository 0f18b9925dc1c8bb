"""E-mail statements ("your statement is ready", no attachment) to a local SMTP sink.

Engine: the statement cycle for N paperless customers on SQLite, one worker process: plan
into the outbox, render subject, HTML and text in the sandbox, inline CSS, build MIME,
check suppression/consent/limits, send over the SMTP adapter, record every outcome.

Baseline: the same N e-mails from the same template files with the same libraries (plain
Jinja2, css-inline, the stdlib's EmailMessage) over 4 persistent smtplib connections: no
database, no outbox, no sandbox. Both send to the same aiosmtpd sink on 127.0.0.1.
"""
from __future__ import annotations

import csv
import json
import smtplib
import tempfile
import time
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from bench.common import TEMPLATES, timed_cycle


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.count += 1
        return "250 OK"


def _data(folder: Path, count: int) -> tuple[Path, Path]:
    customers, feed = folder / "customers.csv", folder / "feed.jsonl"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "paperless", "consent_email", "locale", "timezone"])
        for i in range(count):
            writer.writerow([f"E{i:06d}", f"Customer {i}", f"c{i}@example.com", "yes", "yes", "en_US", "America/Chicago"])
    with feed.open("w", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(json.dumps({"account": f"A{i:06d}", "customer_id": f"E{i:06d}", "period": "2026-11", "opening_balance": "10.00",
                                 "closing_balance": "22.34", "amount_due": "22.34", "due_date": "2026-12-15", "currency": "USD",
                                 "lines": [{"date": "2026-11-05", "description": "Energy usage", "amount": "12.34"}]}) + "\n")
    return customers, feed


def engine_run(folder: Path, port: int, customers: Path, feed: Path) -> float:
    channels = {"email": f"smtp://127.0.0.1:{port}?starttls=off"}
    seconds, _ = timed_cycle(folder / "engine", customers, feed, ccm={"chunk_size": 100}, channels=channels,
                             email={"attach_pdf": False}, archive={"enabled": False})
    return seconds


def baseline_run(port: int, count: int) -> float:
    import css_inline
    import jinja2
    from babel import dates, numbers

    start = time.perf_counter()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda amount, currency: numbers.format_currency(Decimal(amount), currency, locale="en_US")
    env.filters["date"] = lambda value, format="medium": dates.format_date(value, format=format, locale="en_US")
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
    return time.perf_counter() - start


def main(count: int) -> None:
    from aiosmtpd.controller import Controller

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ccm-bench-mail-") as tmp:
            customers, feed = _data(Path(tmp), count)
            base = baseline_run(port, count)
            engine = engine_run(Path(tmp), port, customers, feed)
    finally:
        controller.stop()
    print(f"e-mail, {count} messages to a local SMTP sink, one process:")
    print(f"  baseline  {base:7.2f} s  {count / base:8.1f} msg/s  (4 persistent connections, no bookkeeping)")
    print(f"  engine    {engine:7.2f} s  {count / engine:8.1f} msg/s")
    print(f"  throughput engine/baseline: {base / engine:.2f}x")

"""Event to message: how long a triggered communication takes from the API call to the message
handed to the channel.

Engine: `ccm serve` (waitress) receives ``POST /api/v1/events`` (``payment.received``) at a
steady rate (20 a second by default; one web process delivers about 50 a second) from one
client; the engine checks the token and the body, writes the message
into the day's run, hands it to its delivery thread, which renders the "payment received"
e-mail in the sandbox and delivers it to the maildir. Measured per event: from just before
the request is sent to the message's ``sent_at`` (the outcome recorded after the channel
took it), on loopback; reported as p50, p95 and max.

Baseline: the same e-mail for the same customers rendered with plain Jinja2, css-inline and
the stdlib's EmailMessage, and written to a maildir, in this process: the least work that
turns the event into a delivered message, timed the same way per event.
"""
from __future__ import annotations

import json
import mailbox
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from bench.common import TEMPLATES, engine_settings, write_email_customers
from bench.track_load import _config, _port, _wait

CCM = str(Path(sys.executable).with_name("ccm"))


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[max(0, int(len(ordered) * 0.95) - 1)], "max": ordered[-1]}


def _engine(folder: Path, events: int, rate: float) -> tuple[dict[str, float], float]:
    from ccm.wiring import Engine
    from ccm.feedback.reported_events import create_token
    from ccm.imports import import_customers
    from ccm.models import Message
    from sqlalchemy import select

    folder.mkdir(parents=True)
    people = write_email_customers(folder / "people.csv", (f"T{i:05d}" for i in range(events)))
    settings = engine_settings(folder, web={"secret_key": "bench-secret-key-0123456789abcdefghij", "rate_limit": "100000000/minute"})
    engine = Engine.from_settings(settings)
    engine.db.upgrade()
    import_customers(engine.db, people, rejects_dir=folder, progress=False)
    token = create_token(engine, "bench")
    port = _port()
    env = dict(os.environ, CCM_CONFIG=str(_config(settings, folder / "ccm.toml", port)), CCM_LOG_LEVEL="WARNING")
    server = subprocess.Popen([CCM, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: dict[int, float] = {}
    offset = time.time() - time.monotonic()
    try:
        _wait(f"http://127.0.0.1:{port}/api/v1/openapi.json")
        warm = json.dumps({"id": "warm-up", "type": "payment.received", "customer": "T00000", "amount": "1.00", "currency": "USD"})
        _post(port, token, warm)
        time.sleep(2)  # templates and the delivery thread set up once
        for i in range(1, events):
            body = json.dumps({"id": f"pay-{i}", "type": "payment.received", "customer": f"T{i:05d}", "amount": "49.90", "currency": "USD"})
            before = time.monotonic()
            answer = _post(port, token, body)
            started[answer["messages"][0]["message_id"]] = before + offset
            time.sleep(max(0.0, before + 1 / rate - time.monotonic()))  # events arrive at a steady rate
        deadline = time.monotonic() + 120
        while True:
            with engine.db.session() as session:
                rows = list(session.scalars(select(Message).where(Message.id.in_(started), Message.state == "sent")))
                done = {m.id: m.sent_at for m in rows}
                written = {m.id: m.created_at for m in rows}
            if len(done) == len(started) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.close()
    epoch = __import__("datetime").datetime(1970, 1, 1)
    latencies = [((done[i] - epoch).total_seconds() - started[i]) * 1000 for i in done]
    queued = [((done[i] - written[i]).total_seconds()) * 1000 for i in done]
    return {**_percentiles(latencies), "delivery_p50": _percentiles(queued)["p50"]}, len(done) / len(started)


def _post(port: int, token: str, body: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/events", data=body.encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def _baseline(folder: Path, events: int) -> dict[str, float]:
    import css_inline
    import jinja2
    from babel import numbers

    box = mailbox.Maildir(folder / "baseline", create=True)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["money"] = lambda amount, currency: numbers.format_currency(Decimal(amount), currency, locale="en_US")
    env.filters["isolate"] = lambda value: value  # left-to-right e-mails only: nothing to isolate
    env.globals["_"] = lambda msgid, **params: msgid % params if params else msgid
    html, text, subject = (env.get_template(f"email/payment_received.{part}") for part in ("html", "txt", "subject.txt"))
    company = {"name": "Northwind Energy", "address_lines": ["100 Harbour Street"], "phone": "+1 555 0100", "website": "https://northwind.example"}
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    latencies = []
    for i in range(1, events):
        before = time.perf_counter()
        context = {"customer": {"name": f"Payer {i}"}, "company": company, "locale": "en_US",
                   "event": {"amount": "49.90", "currency": "USD", "reference": None}}
        message = EmailMessage()
        message["Subject"] = " ".join(subject.render(context).split())
        message["From"], message["To"] = "statements@northwind.example", f"payer{i}@example.com"
        message.set_content(text.render(context))
        message.add_alternative(inliner.inline(html.render(context)), subtype="html")
        box.add(message)
        latencies.append((time.perf_counter() - before) * 1000)
    return _percentiles(latencies)


def main(events: int = 200, rate: float = 20.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="ccm-bench-trigger-") as tmp:
        engine, delivered = _engine(Path(tmp) / "engine", events, rate)
        baseline = _baseline(Path(tmp), events)
    print(f"triggered sends: {events - 1} payment.received events at {rate:g} a second from one client, to the maildir "
          f"({delivered:.0%} delivered)")
    print(f"  baseline (render + MIME + maildir, no HTTP, no database): p50 {baseline['p50']:.1f} ms, p95 {baseline['p95']:.1f} ms")
    print(f"  engine (API call to message handed to the channel):       p50 {engine['p50']:.1f} ms, p95 {engine['p95']:.1f} ms, "
          f"max {engine['max']:.1f} ms · p95 {engine['p95'] / baseline['p95']:.1f}x the baseline's")
    print(f"  (of the engine's p50, {engine['delivery_p50']:.1f} ms from the message written to its outcome recorded)")
    return {"engine": engine, "baseline": baseline}


if __name__ == "__main__":
    main()

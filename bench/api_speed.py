"""Speed of the API's real-time parts: a decision, an on-demand e-mail and an on-demand
two-page PDF, each timed per request, against a hand-written baseline in the same run.

Engine: one `ccm serve` process (waitress) on loopback, called by one client over one
kept-alive connection, one request at a time, with a service account's key:

- ``GET /api/v1/customers/{id}/decisions/monthly-statement/statement.insert``: the key
  checked, the customer's rule values read, the statement insert's decision evaluated, the
  exposure recorded, the trace answered;
- ``POST /api/v1/on-demand`` sending ``payment-received`` (a confirmation) with an
  Idempotency-Key: the key claimed, the message written to the day's on-demand run, the
  channel policy applied, the e-mail rendered in the sandbox, delivered to the maildir and
  its outcome recorded;
- ``POST /api/v1/on-demand`` rendering the statement as PDF with its content: the insert
  decided and traced, the statement rendered (WeasyPrint, PDF/A-3b, the terms page
  appended), archived (fsynced, hashed, indexed) and answered in base64. The shortest
  statement the library makes is three pages with its terms (the page count is printed),
  so this is held to the goal of a two-page PDF with a page to spare.

Baselines, in this process after the server stopped, no HTTP: the same engine functions
called directly (``decide_now``, ``on_demand``): what the API layer (HTTP, waitress, the
key check, the Idempotency-Key, JSON and base64) adds; and for the decision a hand-written
one, an ``if`` over the three columns the shipped rules read (one SQLite query).

Goals (issue 17, p95 on this machine): decision < 10 ms, on-demand e-mail < 300 ms,
on-demand PDF of two pages < 600 ms (here three). ``python -m bench.api_speed [--requests N] [--json]``.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from bench.common import engine_settings, write_email_customers
from bench.track_load import _config, _port, _wait
from bench.trigger_latency import _percentiles

CCM = str(Path(sys.executable).with_name("ccm"))
GOALS_MS = {"decision": 10.0, "email": 300.0, "pdf": 600.0}
LABELS = {"decision": "real-time decision (GET)", "email": "on-demand e-mail (sent)", "pdf": "on-demand statement PDF"}
STATEMENT_LINES = (1, 2)  # the shortest statements: the fewest pages the shipped statement makes
WARM_UP = 5


def _prepare(folder: Path, requests: int) -> tuple[dict, str, list[str], list[str], Path, Path]:
    """An engine with ``requests`` statement customers and as many e-mail customers, and an
    admin service account's key."""
    from ccm.demo import write_demo_data
    from ccm.imports import import_customers, import_feed
    from ccm.staff import create_key, create_service_account
    from ccm.wiring import Engine

    var = folder / "var"
    customers_file, feed_file = write_demo_data(folder / "data", customers=requests + WARM_UP, lines=STATEMENT_LINES, bad_rows=False)
    people = write_email_customers(folder / "people.csv", (f"P{i:05d}" for i in range(requests + WARM_UP)))
    settings = engine_settings(var, web={"secret_key": "bench-secret-key-0123456789abcdefghij", "rate_limit": "100000000/minute",
                                         "api_rate_limit": "100000000/minute"})
    engine = Engine.from_settings(settings)
    try:
        engine.db.upgrade()
        import_customers(engine.db, customers_file, rejects_dir=folder, progress=False)
        import_customers(engine.db, people, rejects_dir=folder, progress=False)
        import_feed(engine.db, feed_file, rejects_dir=folder, progress=False)
        create_service_account(engine, "bench", ["admin"], actor="bench")
        key = create_key(engine, "bench", days=1, actor="bench").key
    finally:
        engine.close()
    with customers_file.open(encoding="utf-8") as fh:
        statement_ids = [line.split(",", 1)[0] for line in fh.read().splitlines()[1:]]
    return settings, key, statement_ids, [f"P{i:05d}" for i in range(requests + WARM_UP)], customers_file, feed_file


def _timed(calls: list[Callable[[], Any]]) -> list[float]:
    """Milliseconds of each call after the warm-up ones."""
    times = []
    for index, call in enumerate(calls):
        before = time.perf_counter()
        call()
        if index >= WARM_UP:
            times.append((time.perf_counter() - before) * 1000)
    return times


class _Client:
    """One kept-alive connection to the server, with the key."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None, **headers: str) -> dict:
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None, headers={**self.headers, **headers})
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)


def _engine(settings: dict, folder: Path, key: str, statement_ids: list[str], email_ids: list[str]) -> dict[str, dict]:
    port = _port()
    env = dict(os.environ, CCM_CONFIG=str(_config(settings, folder / "ccm.toml", port)), CCM_LOG_LEVEL="WARNING")
    server = subprocess.Popen([CCM, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/api/v1/openapi.json")
        client = _Client(port, key)
        pages: list[int] = []

        def decision(external_id: str) -> Callable[[], Any]:
            return lambda: client.call("GET", f"/api/v1/customers/{external_id}/decisions/monthly-statement/statement.insert")

        def email(external_id: str) -> Callable[[], Any]:
            body = {"communication": "payment-received", "customer": external_id, "send": True,
                    "data": {"amount": "49.90", "currency": "USD", "reference": None}}

            def call() -> None:
                answer = client.call("POST", "/api/v1/on-demand", body, **{"Idempotency-Key": uuid.uuid4().hex})
                if answer["state"] != "sent":
                    raise RuntimeError(f"on-demand e-mail to {external_id}: {answer['state']} ({answer['reason']})")
            return call

        def pdf(external_id: str) -> Callable[[], Any]:
            body = {"communication": "statement", "customer": external_id, "form": "pdf", "include_content": True}

            def call() -> None:
                answer = client.call("POST", "/api/v1/on-demand", body)
                if not base64.b64decode(answer["content"]["pdf"]).startswith(b"%PDF"):
                    raise RuntimeError(f"on-demand PDF of {external_id}: no PDF")
                pages.append(answer["content"]["pages"])
            return call

        results = {
            "decision": _percentiles(_timed([decision(i) for i in statement_ids])),
            "email": _percentiles(_timed([email(i) for i in email_ids])),
            "pdf": _percentiles(_timed([pdf(i) for i in statement_ids])),
        }
        results["pdf"]["pages"] = max(set(pages), key=pages.count)
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def _decision_baseline(database: Path, statement_ids: list[str]) -> dict[str, float]:
    """The shipped statement insert decision by hand: one query of the columns it reads, the
    rules as ``if``s, the answer as JSON."""
    db = sqlite3.connect(database)

    def decide(external_id: str) -> Callable[[], Any]:
        def call() -> str:
            tier, lifecycle, paperless = db.execute("SELECT value_tier, lifecycle_stage, paperless FROM customers WHERE external_id = ?",
                                                    (external_id,)).fetchone()
            if tier == "vip":
                rule, content = "vip", "inserts/premium_upgrade.html"
            elif lifecycle == "decline":
                rule, content = "winback", "inserts/winback_offer.html"
            elif not paperless:
                rule, content = "paper", "inserts/go_paperless.html"
            else:
                rule, content = "default", "inserts/premium_upgrade.html"
            return json.dumps({"external_id": external_id, "content": content, "rule": rule})
        return call

    try:
        return _percentiles(_timed([decide(i) for i in statement_ids]))
    finally:
        db.close()


def _in_process(settings: dict, statement_ids: list[str], email_ids: list[str]) -> dict[str, dict]:
    """The same work through the engine's functions in this process, without HTTP."""
    from ccm.decisions import decide_now
    from ccm.runs import on_demand
    from ccm.wiring import Engine

    engine = Engine.from_settings(settings)
    pages: list[int] = []

    def decision(external_id: str) -> Callable[[], Any]:
        def call() -> None:
            with engine.db.session() as session:
                decide_now(session, "monthly-statement", "statement.insert", external_id, via="bench")
        return call

    def email(external_id: str) -> Callable[[], Any]:
        def call() -> None:
            made = on_demand(engine, "payment-received", external_id, actor="bench", send=True, key=uuid.uuid4().hex,
                             data={"amount": "49.90", "currency": "USD", "reference": None})
            if made.state != "sent":
                raise RuntimeError(f"in-process e-mail to {external_id}: {made.state} ({made.reason})")
        return call

    def pdf(external_id: str) -> Callable[[], Any]:
        def call() -> None:
            made = on_demand(engine, "statement", external_id, actor="bench", form="pdf")
            pages.append(made.rendered.pages)
        return call

    try:
        results = {"decision": _percentiles(_timed([decision(i) for i in statement_ids])),
                   "email": _percentiles(_timed([email(i) for i in email_ids])),
                   "pdf": _percentiles(_timed([pdf(i) for i in statement_ids]))}
    finally:
        engine.close()
    results["pdf"]["pages"] = max(set(pages), key=pages.count)
    return results


def main(requests: int = 200, *, as_json: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="ccm-bench-api-") as tmp:
        folder = Path(tmp)
        settings, key, statement_ids, email_ids, _, _ = _prepare(folder, requests)
        engine = _engine(settings, folder, key, statement_ids, email_ids)
        direct = _in_process(settings, statement_ids, email_ids)
        by_hand = _decision_baseline(Path(settings["ccm"]["var_dir"]) / "ccm.db", statement_ids)
    results = {name: {"http": engine[name], "in_process": direct[name], "goal_p95_ms": GOALS_MS[name],
                      "met": engine[name]["p95"] < GOALS_MS[name]} for name in GOALS_MS}
    results["decision"]["hand_written"] = by_hand
    if as_json:
        print(json.dumps({"requests": requests, "results": results}, indent=2))
        return results
    print(f"API speed: {requests} requests of each kind, one at a time, to one `ccm serve` process on loopback "
          f"(after {WARM_UP} warm-up requests); milliseconds")
    print(f"  {'':28} {'in process p50':>14} {'p95':>7}   {'HTTP p50':>8} {'p95':>7} {'max':>7}   {'HTTP / in process':>17}   goal p95")
    for name, row in results.items():
        e, b = row["http"], row["in_process"]
        print(f"  {LABELS[name]:28} {b['p50']:14.1f} {b['p95']:7.1f}   {e['p50']:8.1f} {e['p95']:7.1f} {e['max']:7.1f}   "
              f"{e['p95'] / b['p95']:16.1f}x   < {row['goal_p95_ms']:g} {'met' if row['met'] else 'MISSED'}")
    print(f"  hand-written decision (one SQLite query and the rules as ifs): p50 {by_hand['p50']:.3f}, p95 {by_hand['p95']:.3f}; "
          f"HTTP p95 {engine['decision']['p95'] / by_hand['p95']:.0f}x that")
    print(f"  (statement PDF pages: HTTP {engine['pdf']['pages']}, in process {direct['pdf']['pages']}; PDF/A-3b, archived; "
          "the e-mail is payment-received, sent to the maildir)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.api_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind (default 200)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    arguments = parser.parse_args()
    main(arguments.requests, as_json=arguments.json)

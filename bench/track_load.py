"""Load test of the open pixel and the click redirect with wrk on loopback (bounded: a few
seconds per endpoint, a handful of connections).

Engine: `ccm serve` (waitress, Flask, rate limiter, CSRF, the signed-token check, the
message looked up, the bot check, the event recorded once with its effects on the
customer, in SQLite) for the messages of a real campaign run.

Baseline: a hand-written WSGI app on the same server (waitress, same threads) with the
same token library (itsdangerous) and database (SQLite in WAL mode): check the token,
INSERT OR IGNORE one row, answer the GIF or the redirect. No Flask, no ORM, no rules.

Both see the same request mix: every sent message's pixel, or its first link, in turn.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import engine_settings, write_email_customers

CCM = str(Path(sys.executable).with_name("ccm"))
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SECRET = "bench-secret-key-0123456789abcdefghij"
LUA = """
paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"})
end
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(folder: Path, customers: int) -> tuple[dict, dict[str, list[str]], list[tuple[int, str]]]:
    """A campaign sent to ``customers`` e-mail customers; the paths of their pixels and first links."""
    from ccm.wiring import Engine
    from ccm.links import Signer
    from ccm.imports import import_customers
    from ccm.models import Message
    from ccm.runs import service
    from sqlalchemy import select

    folder.mkdir(parents=True, exist_ok=True)
    people = write_email_customers(folder / "people.csv", (f"L{i:06d}" for i in range(customers)))
    settings = engine_settings(folder, web={"secret_key": SECRET, "rate_limit": "100000000/minute"}, feedback={"bot_seconds": 0})
    engine = Engine.from_settings(settings)
    engine.db.upgrade()
    import_customers(engine.db, people, rejects_dir=folder, progress=False)
    service.run_cycle(engine, "deals", "bench", progress=False)
    signer = Signer.from_settings(engine.settings)
    with engine.db.session() as session:
        sent = [(m.id, m.links[0]) for m in session.scalars(select(Message).where(Message.state == "sent", Message.channel == "email"))]
    engine.close()
    paths = {
        "open": [f"/t/o/{signer.dumps('open', [mid])}.gif" for mid, _ in sent],
        "click": [f"/t/c/{signer.dumps('click', [mid, 0])}" for mid, _ in sent],
    }
    return settings, paths, sent


def _config(settings: dict, path: Path, port: int) -> Path:
    lines = []
    for section, values in {**settings, "web": {**settings["web"], "port": port}}.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value!r}".replace("'", '"') for key, value in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def baseline_app(database: Path, links: dict[int, str]):  # type: ignore[no-untyped-def]
    """The hand-written baseline: same token check, one row per hit, the same answers."""
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    serializers = {p: URLSafeTimedSerializer(SECRET, salt=f"ccm.{p}") for p in ("open", "click")}
    local = threading.local()
    pattern = re.compile(r"^/t/(o|c)/([^/]+?)(\.gif)?$")

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(database, isolation_level=None, timeout=30)
            local.db.execute("PRAGMA journal_mode=WAL")
        return local.db

    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE IF NOT EXISTS hits (key TEXT PRIMARY KEY, at REAL)")

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        match = pattern.match(environ["PATH_INFO"])
        if not match:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        kind = "open" if match.group(1) == "o" else "click"
        try:
            payload = serializers[kind].loads(match.group(2), max_age=400 * 86400)
        except BadSignature:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"bad token"]
        connection().execute("INSERT OR IGNORE INTO hits VALUES (?, ?)", (f"{kind}:{payload}", time.time()))
        if kind == "open":
            start_response("200 OK", [("Content-Type", "image/gif"), ("Cache-Control", "no-store")])
            return [PIXEL]
        start_response("302 Found", [("Location", links[payload[0]]), ("Cache-Control", "no-store")])
        return [b""]

    return app


def _wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _wrk(base: str, paths_file: Path, seconds: int, connections: int) -> dict[str, float]:
    script = paths_file.with_suffix(".lua")
    script.write_text(LUA % paths_file, encoding="utf-8")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: _ms(re.search(rf"\s{p}%\s+([\d.]+\w+)", out).group(1)) for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "p50": latency["50"], "p99": latency["99"], "errors": float(errors.group(1)) if errors else 0.0}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main(customers: int = 2000, seconds: int = 8, connections: int = 8) -> dict:
    if shutil.which("wrk") is None:
        print("track load: skipped (wrk is not installed: Debian package wrk)")
        return {}
    with tempfile.TemporaryDirectory(prefix="ccm-bench-track-") as tmp:
        folder = Path(tmp)
        settings, paths, sent = _prepare(folder / "engine", customers)
        results: dict = {}
        port = _port()
        env = dict(os.environ, CCM_CONFIG=str(_config(settings, folder / "ccm.toml", port)), CCM_LOG_LEVEL="WARNING")
        server = subprocess.Popen([CCM, "serve", "--port", str(port), "--threads", "8"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(f"http://127.0.0.1:{port}/api/v1/openapi.json")
            for kind, kind_paths in paths.items():
                listed = folder / f"{kind}.txt"
                listed.write_text("\n".join(kind_paths) + "\n", encoding="utf-8")
                results[("engine", kind)] = _wrk(f"http://127.0.0.1:{port}", listed, seconds, connections)
        finally:
            server.terminate()
            server.wait(timeout=10)
        import logging

        import waitress.server

        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" under load is expected
        base_port = _port()
        baseline = waitress.server.create_server(baseline_app(folder / "baseline.db", dict(sent)), host="127.0.0.1",
                                                 port=base_port, threads=8)
        thread = threading.Thread(target=baseline.run, daemon=True)
        thread.start()
        try:
            for kind in paths:
                results[("baseline", kind)] = _wrk(f"http://127.0.0.1:{base_port}", folder / f"{kind}.txt", seconds, connections)
        finally:
            baseline.task_dispatcher.shutdown(timeout=10)  # its threads finish their requests before the server's trigger closes
            baseline.close()
    print(f"track load: wrk, {connections} connections, {seconds} s per endpoint, {len(sent)} messages' links on loopback")
    for kind in paths:
        engine, base = results[("engine", kind)], results[("baseline", kind)]
        print(f"  {kind:<5} baseline {base['rate']:7.0f} req/s (p50 {base['p50']:.1f} ms, p99 {base['p99']:.1f} ms) · "
              f"engine {engine['rate']:7.0f} req/s (p50 {engine['p50']:.1f} ms, p99 {engine['p99']:.1f} ms) · "
              f"{engine['rate'] / base['rate']:.2f}x · non-2xx/3xx: {int(engine['errors'])}")
    return results


if __name__ == "__main__":
    main()

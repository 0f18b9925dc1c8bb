"""Fixtures of the outbound webhooks' tests: an engine (SQLite and PostgreSQL) whose
[webhooks] allow loopback targets and retry at once, and ``receiver``: a real HTTP server
on 127.0.0.1 that answers each POST with the next status it is given (then 200) and keeps
what it got."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from ccm.wiring import Engine

FAST = {"allow_private": True, "retry_base_seconds": 0, "retry_cap_seconds": 1, "max_attempts": 3, "timeout_seconds": 5}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers), used in order
    received: list[Received] = field(default_factory=list)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request) -> str | None:
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture
def settings(make_settings, tmp_path: Path, database: str | None) -> dict:
    return make_settings(tmp_path, webhooks=dict(FAST), **({"ccm": {"database_url": database}} if database else {}))


@pytest.fixture
def engine(settings: dict) -> Iterator[Engine]:
    """The engine alone (no web app), its database upgraded."""
    made = Engine.from_settings(settings)
    made.db.upgrade()
    yield made
    made.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            found.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, headers = found.answers.pop(0) if found.answers else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join()

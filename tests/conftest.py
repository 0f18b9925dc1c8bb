"""Shared fixtures: a fresh SQLite database per test, the app, its CLI runner, the engine,
and real receivers on loopback (an aiosmtpd server, a self-signed TLS certificate).

Every test gets its own folder for the database, the outputs of the channels and the
rejects, so tests never see each other's files.
"""
from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app import create_app
from ccm.wiring import Engine

ROOT = Path(__file__).resolve().parent.parent


def test_settings(tmp_path: Path, **sections: dict) -> dict:
    var = tmp_path / "var"
    settings = {
        "ccm": {"database_url": f"sqlite:///{var}/ccm.db", "var_dir": str(var), "templates_dir": str(ROOT / "templates"), "workers": 1},
        "channels": {
            "email": f"maildir://{var}/maildir",
            "sms": f"file://{var}/sms/outbox.jsonl",
            "print": f"print://{var}/print",
            "inbox": f"inbox://{var}/inbox",
        },
        # Off, so that what a test sends does not depend on the hour it runs at (SMS reminders
        # wait out quiet hours); the tests of quiet hours set them and the clock themselves.
        # A run does not wait in its process for retries due soon ([delivery] wait_seconds): the
        # tests of retries set it themselves.
        "delivery": {"quiet_hours": "", "wait_seconds": 0},
        # Staff passwords hashed at a low cost: every console test makes seven users.
        "console": {"hash_memory_kib": 1024, "hash_time_cost": 1},
    }
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    return settings


@pytest.fixture
def make_settings():
    """``make_settings(folder, ccm={...}, email={...})``: settings for an engine in ``folder``."""
    return test_settings


@pytest.fixture
def settings(tmp_path: Path) -> dict:
    return test_settings(tmp_path)


@pytest.fixture
def app(settings: dict):
    app = create_app(settings)
    app.extensions["ccm"].db.upgrade()
    yield app
    app.extensions["ccm"].close()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def engine(app) -> Engine:
    return app.extensions["ccm"]


USER, PASSWORD = "mailer", "s3cret-Pa55"


class Handler:
    """Behaviour chosen by the recipient's local part.

    ok 250 · busy 451 at RCPT · reject 550 at RCPT (echoing the address, to check it
    is redacted) · drop closes the connection during DATA · slow answers DATA late ·
    queued answers with a Postfix-style queue id.
    """

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.peers: set[tuple[str, int]] = set()
        self.sessions: list[Any] = []
        self.mechanisms: list[str] = []
        self.busy_accepts = False  # set True to let "busy" recipients through (a retry later succeeds)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.peers.add(session.peer)
        self.last_server = server
        local = address.split("@")[0]
        if local == "busy" and not self.busy_accepts:
            return "451 4.3.0 try later"
        if local == "reject":
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        local = envelope.rcpt_tos[0].split("@")[0]
        if local == "drop":
            server.transport.close()
            return "451 never seen"
        if local == "slow":
            await asyncio.sleep(3)
        self.messages.append(envelope.original_content)
        if local == "queued":
            return "250 2.0.0 Ok: queued as 4QX7Yz1"
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.mechanisms.append(mechanism)
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    controller: Controller
    handler: Handler
    port: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    def url(self, scheme: str = "smtp", auth: str = "", query: str = "starttls=off") -> str:
        return f"{scheme}://{auth}127.0.0.1:{self.port}?{query}"

    def hang_up_idle(self) -> None:
        """Close the server side of the last connection, as an idle timeout would; returns
        once it is closed."""
        server = self.handler.last_server
        self.controller.loop.call_soon_threadsafe(server.transport.close)
        self.wait_until(lambda: server.transport is None or server.transport.is_closing(), "the connection did not close")

    def wait_until_idle(self, seconds: float = 10) -> None:
        """Until no client is connected (a killed sender's connection is closed and what it
        had sent is received)."""
        self.wait_until(lambda: getattr(self.controller.server, "_active_count", 0) == 0, "a client stayed connected", seconds)

    @staticmethod
    def wait_until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """``smtp_server(**Controller kwargs)`` starts a real aiosmtpd on 127.0.0.1."""
    started: list[Controller] = []

    def start(**kwargs: Any) -> SmtpServer:
        handler = Handler()
        if kwargs.pop("with_auth", False):
            kwargs["authenticator"] = handler.authenticate
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return SmtpServer(controller, handler, port, kwargs)

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts only the test certificate."""
    return ssl.create_default_context(cafile=str(tls_files[0]))


POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on 127.0.0.1:5432; skips where none runs."""
    import uuid

    import sqlalchemy as sa

    try:
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            name = f"ccm_test_{uuid.uuid4().hex[:12]}"
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not available on 127.0.0.1:5432 ({type(exc.orig).__name__})")
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()

"""Real receivers on loopback for the channel tests: an aiosmtpd server and a TLS cert."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.peers.add(session.peer)
        self.last_server = server
        local = address.split("@")[0]
        if local == "busy":
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
        """Close the server side of the last connection, as an idle timeout would."""
        server = self.handler.last_server
        self.controller.loop.call_soon_threadsafe(server.transport.close)


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


def make_email(to: str, subject: str = "Your statement", body: str = "Hello\n.\nBye\n") -> Any:
    from email.message import EmailMessage
    from email.utils import make_msgid

    message = EmailMessage()
    message["From"] = "billing@example.com"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ccm.example.com")
    message.set_content(body)
    return message


def make_pdf(pages: int) -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture
def email_factory() -> Callable[..., Any]:
    return make_email


@pytest.fixture
def pdf_factory() -> Callable[[int], bytes]:
    return make_pdf

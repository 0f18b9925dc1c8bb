"""Message factories for the channel tests (the SMTP server and TLS fixtures are in
``tests/conftest.py``, shared with the engine tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


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


class SmsGateway:
    """A real HTTP SMS gateway on 127.0.0.1 (``ThreadingHTTPServer``, kept-alive HTTP/1.1)
    that records every request and answers as told by :meth:`answer`:

    ``ok`` (201 with a Twilio ``sid`` or a JSON ``id``; ``ok_answer`` replaces that body),
    an HTTP status such as ``"429"`` (with ``Retry-After: retry_after`` unless None), ``"400"``
    (with an error code and a message that quotes the number) or ``"500"``, ``hang``
    (reads the request, never answers), ``drop`` (hangs up without answering) or ``cut``
    (hangs up in the middle of the answer). ``idle_timeout`` is how long it keeps an idle
    connection open; ``close_after_answer`` answers with ``Connection: close``.
    """

    def __init__(self) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.mode = "ok"
        self.ok_answer: dict[str, Any] | None = None
        self.retry_after: str | None = "7"
        self.idle_timeout = 5.0
        self.close_after_answer = False
        self.released = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _gateway_handler(self))
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> SmsGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def answer(self, mode: str) -> None:
        self.mode = mode

    def url(self, preset: str = "twilio", auth: str | None = None, path: str = "", query: str = "",
            scheme: str = "sms+http") -> str:
        if auth is None:
            auth = "AC0123456789:tw-T0ken-9@" if preset == "twilio" else ":js-T0ken-9@"
        extra = f"&{query}" if query else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}{path}?preset={preset}&from=%2B15550100{extra}"

    def record(self, entry: dict[str, Any]) -> int:
        with self._lock:
            self.requests.append(entry)
            return len(self.requests)

    def new_connection(self) -> None:
        with self._lock:
            self.connections += 1


def _gateway_handler(gateway: SmsGateway) -> type:
    import json
    from http.server import BaseHTTPRequestHandler
    from urllib.parse import parse_qs

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait between them

        def setup(self) -> None:
            self.timeout = gateway.idle_timeout  # an idle kept-alive connection is let go after this
            super().setup()
            gateway.new_connection()

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            number = gateway.record({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            mode = gateway.mode
            if mode == "hang":
                gateway.released.wait(5)
                self.close_connection = True
            elif mode == "drop":
                self.close_connection = True
            elif mode == "cut":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"sid": "SM')
                self.close_connection = True
            elif mode == "400":
                to = json.loads(body)["to"] if body.startswith(b"{") else parse_qs(body.decode("ascii"))["To"][0]
                self._json(400, {"code": 21211, "message": f"The 'To' number {to} is not valid", "status": 400})
            elif mode.isdigit():
                extra = {"Retry-After": gateway.retry_after} if gateway.retry_after is not None else {}
                if mode.startswith("3"):
                    extra["Location"] = "https://elsewhere.example/"
                self._json(int(mode), {"error": "try_later" if mode in ("429", "503") else "refused"}, extra)
            elif gateway.ok_answer is not None:
                self._json(201, gateway.ok_answer)
            elif self.path.endswith("/Messages.json"):
                self._json(201, {"sid": f"SM{number:032x}", "status": "queued", "num_segments": "1"})
            else:
                self._json(201, {"id": f"gw-{number}", "status": "accepted"})

        def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(data).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if gateway.close_after_answer:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    """A started :class:`SmsGateway`, stopped after the test."""
    gateway = SmsGateway().start()
    yield gateway
    gateway.stop()

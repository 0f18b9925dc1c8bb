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


class Smsc:
    """A real SMPP 3.4 SMSC on 127.0.0.1 (a threaded TCP server, PDUs from smpplib) that
    records what it is sent and answers as told.

    ``password``: binds with another one are refused (ESME_RINVPASWD). ``statuses``: the
    command_status of the next submit_sm, one per message part, in order (then ESME_ROK).
    ``delay``: seconds before each submit_sm_resp (answers come from timers, so several are
    outstanding at once; ``max_outstanding`` is the most seen). ``drop_after``: after that many
    more submit_sm the connection is closed without answering them. ``silent``: submit_sm
    are never answered. ``deliver(**fields)`` sends a deliver_sm on the newest connection;
    ``deliver_resps`` are the sequence numbers of the deliver_sm_resp received.
    """

    def __init__(self) -> None:
        import socketserver
        import threading

        self.password = "Pw-1234"
        self.statuses: list[int] = []
        self.delay = 0.0
        self.drop_after: int | None = None
        self.silent = False
        self.binds: list[dict[str, Any]] = []
        self.submits: list[Any] = []
        self.enquire_links = 0
        self.unbinds = 0
        self.deliver_resps: list[int] = []
        self.max_outstanding = 0
        self.outstanding = 0
        self.lock = threading.Lock()
        self.connections: list[Any] = []
        self.writers: list[Callable[[Any], None]] = []
        self.sequence = _SmscSequence()
        smsc = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                smsc.serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> Smsc:
        self._thread.start()
        return self

    def stop(self) -> None:
        import socket

        self.server.shutdown()
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.server_close()
        self._thread.join()

    def url(self, query: str = "", auth: str | None = None) -> str:
        auth = f"northwind:{self.password}@" if auth is None else auth
        if "timeout=" not in query:
            query = f"timeout=2&{query}" if query else "timeout=2"
        return f"smpp://{auth}127.0.0.1:{self.port}?source=Northwind&{query}"

    # ------------------------------------------------------------ the protocol

    def serve(self, conn: Any) -> None:
        import struct
        import threading

        from smpplib import smpp

        write_lock = threading.Lock()
        self.connections.append(conn)

        def write(pdu: Any) -> None:
            with write_lock:
                try:
                    conn.sendall(pdu.generate())
                except OSError:
                    pass

        def answer(command: str, sequence: int, status: int = 0, **fields: Any) -> None:
            pdu = smpp.make_pdu(command, client=self.sequence, status=status, **fields)
            pdu.sequence = sequence
            write(pdu)

        self.writers.append(write)
        try:
            while True:
                header = _recv_exact(conn, 4)
                if header is None:
                    return
                body = _recv_exact(conn, struct.unpack(">L", header)[0] - 4)
                if body is None:
                    return
                pdu = smpp.parse_pdu(header + body, client=self.sequence, allow_unknown_opt_params=True)
                if not self._handle(conn, pdu, answer):
                    return
        finally:
            conn.close()

    def _handle(self, conn: Any, pdu: Any, answer: Callable[..., None]) -> bool:
        import threading

        command = pdu.command
        if command.startswith("bind_"):
            password = pdu.password.decode()
            self.binds.append({"command": command, "system_id": pdu.system_id.decode(), "password": password})
            answer(f"{command}_resp", pdu.sequence, 0 if password == self.password else 0x0E, system_id="TestSMSC")
        elif command == "submit_sm":
            with self.lock:
                self.submits.append(pdu)
                self.outstanding += 1
                self.max_outstanding = max(self.max_outstanding, self.outstanding)
                number = len(self.submits)
                status = self.statuses.pop(0) if self.statuses else 0
                if self.drop_after is not None:
                    self.drop_after -= 1
                    if self.drop_after <= 0:
                        self.drop_after = None
                        self.outstanding = 0
                        return False
            if self.silent:
                return True

            def respond() -> None:
                with self.lock:
                    self.outstanding -= 1
                answer("submit_sm_resp", pdu.sequence, status, message_id=f"smsc-{number}" if status == 0 else None)

            if self.delay:
                threading.Timer(self.delay, respond).start()
            else:
                respond()
        elif command == "enquire_link":
            self.enquire_links += 1
            answer("enquire_link_resp", pdu.sequence)
        elif command == "unbind":
            self.unbinds += 1
            answer("unbind_resp", pdu.sequence)
            return False
        elif command == "deliver_sm_resp":
            self.deliver_resps.append(pdu.sequence)
        return True

    def deliver(self, sequence: int, **fields: Any) -> None:
        """Send a deliver_sm (a receipt or a mobile-originated message) on the newest connection."""
        from smpplib import smpp

        pdu = smpp.make_pdu("deliver_sm", client=self.sequence, **fields)
        pdu.sequence = sequence
        self.writers[-1](pdu)

    def received_text(self, index: int = -1) -> str:
        """The text of a message the SMSC received, its parts put together (the last
        message by default: the parts with the newest UDH reference)."""
        import gsm0338  # noqa: F401

        parts = _message_parts(self.submits, index)
        coding = parts[0].data_coding or 0
        data = b"".join(parts_data for parts_data in (_user_data(p) for p in parts))
        return data.decode("utf-16-be" if coding == 8 else "gsm03.38")


class _SmscSequence:
    """What smpplib needs to make PDUs: sequence numbers (the SMSC's own are set by hand)."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def _message_parts(submits: list[Any], index: int) -> list[Any]:
    """The submit_sm of one message: a single one, or all parts sharing a UDH reference."""
    messages: list[list[Any]] = []
    for pdu in submits:
        message = pdu.short_message or b""
        if (pdu.esm_class or 0) & 0x40 and message[5] != 1 and messages:
            messages[-1].append(pdu)
        else:
            messages.append([pdu])
    return sorted(messages[index], key=lambda p: p.short_message[5] if (p.esm_class or 0) & 0x40 else 0)


def _user_data(pdu: Any) -> bytes:
    message = pdu.short_message or b""
    return message[1 + message[0]:] if (pdu.esm_class or 0) & 0x40 else message


def _recv_exact(conn: Any, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        try:
            chunk = conn.recv(size - got)
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    """A started :class:`Smsc`, stopped after the test."""
    server = Smsc().start()
    yield server
    server.stop()

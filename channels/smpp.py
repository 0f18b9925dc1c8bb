"""SMS over SMPP 3.4, the operators' protocol, with smpplib's PDU classes.

``smpp://SYSTEM_ID:PASSWORD@smsc.example.net:2775?source=Northwind&bind=transceiver&window=10&enquire_link=30``

Options: ``source`` (the sender: ``+`` and digits, digits, or an alphanumeric sender id of
at most 11 characters; required), ``bind`` (``transmitter`` or ``transceiver``; default
``transmitter``), ``window`` (submit_sm sent and not yet answered, 1 to 100, default 10;
it is also ``sessions``, how many sends may run at once from different threads),
``enquire_link`` (seconds of idleness before a keep-alive, default 30), ``timeout`` (seconds
to connect, bind and wait for each answer, default 10) and ``system_type`` (up to 12
characters, default empty). The port defaults to 2775. The system id takes at most 15
characters and the password at most 8 (SMPP 3.4's limits; longer ones would be cut).
``smpps://`` is refused: smpplib 2.2 wraps its socket without a server name, so the
certificate could not be checked against the host; put a TLS tunnel (stunnel) in front.

One connection per channel, bound on the first send (or ``poll_inbound``) and kept: a
reader thread answers the SMSC's enquire_link, matches submit_sm_resp to the waiting sends,
sends an enquire_link after ``enquire_link`` idle seconds (and drops the connection when its
answer does not come within ``timeout``), and keeps the deliver_sm it receives for
``poll_inbound``. When ``window`` submit_sm are unanswered, a send waits for an answer
before it submits. A dropped connection fails the sends waiting on it (transient); the next
send connects and binds again. ``close()`` unbinds and closes.

Text: GSM-7 (data_coding 0, one septet per octet, the 03.38 basic set and its extension
table) when every character has one, else UCS-2 (data_coding 8, UTF-16 big-endian). Longer
than one SMS (160 septets / 70 UCS-2 units) it goes as concatenated parts of 153 septets /
67 units, each with a UDH (8-bit reference), never splitting an escape sequence or a
surrogate pair: the same cut as ``documents.sms`` (smpplib's own ``gsm.make_parts`` is
not used, as its 7-bit table maps ``§`` and `````` wrongly and it can cut both).
A receipt is asked for (registered_delivery 1) on the first part, whose message_id is the
provider id. ``detail`` of a sent message notes the part count, and the engine's
(``Outbound.meta["segments"]``) when it differs.

Answers (``command_status`` of submit_sm_resp or generic_nack):

========================================================  ===========
ESME_ROK                                                  sent
ESME_RTHROTTLED 0x58, ESME_RMSGQFUL 0x14, ESME_RSYSERR    transient
0x08, ESME_RX_T_APPN 0x64, ESME_RINVBNDSTS 0x04
no answer within ``timeout``, connection refused/dropped  transient
bind refused (ESME_RINVPASWD 0x0E, ESME_RINVSYSID 0x0F,   transient
ESME_RBINDFAIL 0x0D, any other)
ESME_RINVDSTADR 0x0B, ESME_RINVSRCADR 0x0A, all others    permanent
========================================================  ===========

A refused bind is transient like SMTP's failed authentication: the password is the
operator's to fix, and the messages should wait for that rather than take their fallback
channel; after a refusal, sends fail at once for ``bind_backoff`` seconds instead of binding
again (SMSCs lock accounts after repeated wrong passwords). When one part of a long message
is refused after others were accepted, the message takes the refusal's class and ``detail``
says how many parts went; a retry sends them all again. ``detail`` holds the status's name
and number, never the number, the text or the password. smpplib's ``Client`` is not used
(its debug log dumps whole PDUs, numbers and texts included, and its socket handling is
single-threaded): the connection and its reader thread are here, the PDUs are smpplib's.

Inbound: SMPP receipts and replies arrive on an SMPP connection bound to receive them, not
by HTTP: ``for_inbound()`` gives a channel of the same account that binds as a receiver
(``bind_receiver``; as a transceiver when the URL says ``bind=transceiver``), which is what
``ccm smpp listen`` reads with ``bind_now()``, ``link_down`` and ``poll_inbound``; senders
keep the default ``bind=transmitter``, so the SMSC has no sender's link to hand receipts to
(what a sender's transceiver link is given waits unanswered until that link closes, and the
SMSC then sends it again). ``poll_inbound(timeout, record)`` waits up to ``timeout`` seconds
for what the SMSC sent, hands the normalised events to ``record`` and answers each deliver_sm
with deliver_sm_resp only once ``record`` has returned (one that raises leaves them
unanswered, so the SMSC still holds them and sends them again); it returns the events: a receipt (esm_class 0x04, the ``id:... stat:DELIVRD
err:...`` text or the receipted_message_id and message_state TLVs) -> delivered (DELIVRD) or
failed (UNDELIV, REJECTD, EXPIRED, DELETED; ``permanent`` false, as SMSC error codes are the
operator's own) with the provider id as ``message``; other states are nothing to record. A
mobile-originated message -> reply with ``from`` and ``text`` (concatenated parts are put
together first). deliver_sm still unanswered when the connection drops are forgotten: the
SMSC sends them again. ``parse_inbound`` takes the engine's own ``{"events": [...]}`` form,
like the other adapters.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlencode

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec
from smpplib import consts, smpp

from .base import Channel, ChannelConfigError, DeliveryResult, Outbound
from .callback_events import parse_events
from .redact import os_error_detail, redact
from .sms_checks import sms_problem
from .urls import MASK, format_number, query_options, seconds_option, split_url

log = logging.getLogger(__name__)

BINDS = ("transmitter", "transceiver")
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
MAX_PDU = 64 * 1024
TRANSIENT = frozenset({0x58, 0x14, 0x08, 0x64, 0x04})
RECEIPT = 0x04  # esm_class message type: SMSC delivery receipt
UDHI = 0x40
FAILED_STATES = {"UNDELIV": "undelivered", "REJECTD": "rejected", "EXPIRED": "expired", "DELETED": "deleted"}
TLV_STATES = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
STATUS_NAMES = {value: name[5:] for name, value in vars(consts).items() if name.startswith("SMPP_ESME_")}
_SOURCE_ALPHA = re.compile(r"[A-Za-z0-9 ._\-&]{1,11}")
_ID = re.compile(r"[\x21-\x7e]{1,65}")
_RECEIPT_FIELD = re.compile(r"\b(id|stat|err):(\S*)", re.IGNORECASE)


class SmppChannel(Channel):
    name: ClassVar[str] = "smpp"
    kind: ClassVar[str] = "sms"
    schemes: ClassVar[tuple[str, ...]] = ("smpp", "smpps")
    max_body: ClassVar[int | None] = 1600
    default_port: ClassVar[int] = 2775
    bind_backoff: float = 5.0  # seconds sends fail at once after a refused bind

    def __init__(self, url: str) -> None:
        parts = split_url(url, self.schemes, self.name)
        if parts.scheme.lower() == "smpps":
            raise ChannelConfigError(
                "smpp URL: smpps:// is not supported (smpplib cannot check the SMSC's certificate "
                "against its host name); use smpp:// through a TLS tunnel")
        if not parts.hostname:
            raise ChannelConfigError("smpp URL needs a host, e.g. smpp://SYSTEM_ID:PASSWORD@smsc.example.net:2775")
        if parts.path not in ("", "/"):
            raise ChannelConfigError("smpp URL takes no path")
        self.host = parts.hostname
        self.port = parts.port or self.default_port
        self.system_id = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        _check_credential(self.system_id, "system id", 15, required=True)
        _check_credential(self.password, "password", 8, required=False)
        options = query_options(parts, ["source", "bind", "window", "enquire_link", "timeout", "system_type"], self.name)
        self.source = options.get("source", "")
        self.source_ton, self.source_npi, self.source_addr = _source_address(self.source)
        self.bind = options.get("bind", "transmitter")
        if self.bind not in BINDS:
            raise ChannelConfigError(f"smpp URL: bind must be one of {', '.join(BINDS)}")
        self.window = _whole(options.get("window", "10"), "window", 1, 100)
        self.enquire_link = seconds_option(options.get("enquire_link", "30"), "enquire_link", "smpp")
        self.timeout = seconds_option(options.get("timeout", "10"), "timeout", "smpp")
        self.system_type = options.get("system_type", "")
        _check_credential(self.system_type, "system_type", 12, required=False)
        self.sessions = self.window
        self._lock = threading.Lock()  # one thread connects and binds at a time
        self._link: _Link | None = None
        self._refused_until = 0.0
        self._refused_detail = ""
        self._inbound_parts: dict[tuple[str, int, int], dict[int, str]] = {}

    def url(self, privacy: bool = True) -> str:
        auth = quote(self.system_id, safe="")
        if self.password:
            auth += ":" + (MASK if privacy else quote(self.password, safe=""))
        options = {"source": self.source, "bind": self.bind, "window": str(self.window),
                   "enquire_link": format_number(self.enquire_link), "timeout": format_number(self.timeout)}
        if self.system_type:
            options["system_type"] = self.system_type
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smpp://{auth}@{host}:{self.port}?{urlencode(options)}"

    # ------------------------------------------------------------------ sending

    def send(self, out: Outbound) -> DeliveryResult:
        problem = sms_problem(out, self.max_body)
        if problem:
            return DeliveryResult("permanent", detail=problem)
        assert isinstance(out.content, str)
        data_coding, parts = encode(out.content)
        link = self._bound()
        if isinstance(link, DeliveryResult):
            result = link
        else:
            result = self._submit(link, out, data_coding, parts)
        if result.status == "sent":
            log.debug("smpp %s: sent %s as %s", self.url(), out.message_id, result.provider_id)
        else:
            log.warning("smpp %s: %s %s (message %s)", self.url(), result.status, result.detail, out.message_id)
        return result

    def _submit(self, link: _Link, out: Outbound, data_coding: int, parts: list[bytes]) -> DeliveryResult:
        pdus = [dict(source_addr_ton=self.source_ton,
                     source_addr_npi=self.source_npi, source_addr=self.source_addr, dest_addr_ton=1,
                     dest_addr_npi=1, destination_addr=out.to[1:], data_coding=data_coding,
                     esm_class=UDHI if len(parts) > 1 else 0, registered_delivery=1 if number == 0 else 0,
                     short_message=part)
                for number, part in enumerate(parts)]
        answers = link.submit(pdus, self.timeout)
        accepted = sum(1 for answer in answers if answer.status == 0)
        failed = next((answer for answer in answers if answer.status != 0), None)
        if failed is None:
            return self._sent(answers[0].message_id, out, len(parts))
        detail = failed.detail
        if len(parts) > 1:
            detail += f" ({accepted} of {len(parts)} parts accepted)"
        detail = redact(detail, out.to, out.to[1:], self.password)
        status = "transient" if failed.status is None or failed.status in TRANSIENT else "permanent"
        return DeliveryResult(status, detail=detail)

    def _sent(self, message_id: str, out: Outbound, count: int) -> DeliveryResult:
        noted = f"{count} segment{'s' if count != 1 else ''}"
        segments = out.meta.get("segments")
        if isinstance(segments, int) and segments != count:
            noted += f" (engine counted {segments})"
        if not _ID.fullmatch(message_id):
            return DeliveryResult("sent", provider_id=out.message_id, detail=f"{noted}, no message id in the answer")
        return DeliveryResult("sent", provider_id=message_id, detail=noted)

    def _bound(self) -> _Link | DeliveryResult:
        """The bound connection, connecting and binding if there is none alive."""
        with self._lock:
            link = self._link
            if link is not None and link.alive:
                return link
            if link is not None:
                link.close(unbind=False)
                self._link = None
            if time.monotonic() < self._refused_until:
                return DeliveryResult("transient", detail=self._refused_detail)
            try:
                self._link = _Link.open(self)
            except _BindRefused as exc:
                self._refused_until = time.monotonic() + self.bind_backoff
                self._refused_detail = f"bind refused: {_status_text(exc.status)}"
                return DeliveryResult("transient", detail=self._refused_detail)
            except TimeoutError:
                return DeliveryResult("transient", detail="timed out connecting or binding")
            except _LinkDown as exc:
                return DeliveryResult("transient", detail=str(exc))
            except OSError as exc:
                if exc.errno is not None and exc.errno < 0:
                    return DeliveryResult("transient", detail="cannot resolve the SMSC's host name")
                return DeliveryResult("transient", detail=os_error_detail(exc, "cannot reach SMSC"))
            return self._link

    def close(self) -> None:
        """Unbind and close the connection (if any); the channel binds again on the next send."""
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.close(unbind=True)

    # ------------------------------------------------------------------ inbound

    def for_inbound(self) -> SmppChannel:
        """A new channel of this account for ``poll_inbound``: bound as a receiver, or as a
        transceiver when this one is. (A receiver's ``url()`` shows ``bind=receiver``, which
        URLs do not take: a channel to send with never binds so.)"""
        channel = type(self)(self.url(privacy=False))
        channel.bind_backoff = self.bind_backoff
        if channel.bind == "transmitter":
            channel.bind = "receiver"
        return channel

    def bind_now(self) -> str:
        """Connect and bind unless bound: "" when bound, else why not (no personal data).
        After a refused bind it fails at once for ``bind_backoff`` seconds."""
        link = self._bound()
        return link.detail if isinstance(link, DeliveryResult) else ""

    @property
    def link_down(self) -> str:
        """Empty while the channel holds a bound connection; otherwise why not: "not bound"
        (none made yet, or closed) or why the last one ended. Connects nothing."""
        link = self._link
        if link is None:
            return "not bound"
        return "" if link.alive else link.reason or "connection lost"

    def poll_inbound(self, timeout: float,
                     record: Callable[[list[dict[str, Any]]], object] | None = None) -> list[dict[str, Any]]:
        """Receipts and replies the SMSC sent (waiting up to ``timeout`` seconds for the
        first); [] for a transmitter bind or when the SMSC cannot be reached (logged). With
        ``record``, the events are handed to it first and the deliver_sm answered only when
        it returns: an exception leaves them unanswered (the SMSC sends them again) and goes
        up. ``ccm smpp listen`` calls it on a ``for_inbound()`` channel."""
        if self.bind == "transmitter":
            return []
        link = self._bound()
        if isinstance(link, DeliveryResult):
            log.warning("smpp %s: cannot read receipts: %s", self.url(), link.detail)
            return []
        taken = link.take_inbound(timeout)
        events: list[dict[str, Any]] = []
        for pdu in taken:
            events.extend(self._events(pdu))
        parsed = parse_events({"events": events}, "sms")
        if record is not None and parsed:
            record(parsed)
        link.answer(taken)
        return parsed

    def _events(self, pdu: Any) -> list[dict[str, Any]]:
        if (pdu.esm_class or 0) & 0x3C == RECEIPT:
            return _receipt_events(pdu)
        text = _decode(pdu.data_coding or 0, pdu.short_message or b"", bool((pdu.esm_class or 0) & UDHI))
        sender = _address(pdu.source_addr, pdu.source_addr_ton)
        if text is None:
            return []
        if isinstance(text, tuple):  # one part of a concatenated message
            reference, total, number, piece = text
            key = (sender, reference, total)
            collected = self._inbound_parts.setdefault(key, {})
            collected[number] = piece
            if len(collected) < total:
                return []
            del self._inbound_parts[key]
            text = "".join(collected[n] for n in sorted(collected))
        return [{"id": f"smpp-mo-{uuid.uuid4().hex}", "type": "reply", "from": sender, "text": text}]

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The engine's ``{"events": [...]}`` form (SMPP's own arrive by ``poll_inbound``)."""
        return parse_events(payload, "sms")


# ---------------------------------------------------------------------- the connection


class _LinkDown(Exception):
    """The connection is gone; the message says why (no personal data)."""


class _BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Sequence:
    """smpplib's "client" for making PDUs: thread-safe sequence numbers."""

    def __init__(self) -> None:
        self.sequence = 0
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            self.sequence = self.sequence % 0x7FFFFFFF + 1
            return self.sequence


@dataclass
class _Answer:
    status: int | None = None  # None: no answer (timeout, dropped connection)
    message_id: str = ""
    detail: str = ""
    done: bool = False


class _Link:
    """One bound SMPP session and its reader thread."""

    def __init__(self, sock: socket.socket, channel: SmppChannel) -> None:
        self.sock = sock
        self.window = channel.window
        self.enquire_link = channel.enquire_link
        self.timeout = channel.timeout
        self.seq = _Sequence()
        self.alive = True
        self.reason = ""
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Answer] = {}
        self._inbound: list[Any] = []
        self._last_write = time.monotonic()
        self._enquiry_sent: float | None = None
        self._unbound = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="smpp-reader", daemon=True)

    @classmethod
    def open(cls, channel: SmppChannel) -> _Link:
        sock = socket.create_connection((channel.host, channel.port), timeout=channel.timeout)
        link = cls(sock, channel)
        try:
            link._bind(channel)
        except BaseException:
            sock.close()
            raise
        link._reader.start()
        return link

    def _bind(self, channel: SmppChannel) -> None:
        command = f"bind_{channel.bind}"
        self._write(smpp.make_pdu(command, client=self.seq, system_id=channel.system_id, password=channel.password,
                                  system_type=channel.system_type, interface_version=0x34, addr_ton=0, addr_npi=0,
                                  address_range=""))
        while True:
            pdu = self._read_pdu()
            if pdu.command == f"{command}_resp" or pdu.command == "generic_nack":
                break
        if pdu.status != 0:
            raise _BindRefused(pdu.status)

    # -------------------------------------------------------------- sending

    def submit(self, pdus: list[dict[str, Any]], timeout: float) -> list[_Answer]:
        """Submit each part (waiting for room in the window), then wait for all answers."""
        answers: list[_Answer] = []
        for fields in pdus:
            answer = _Answer()
            answers.append(answer)
            pdu = smpp.make_pdu("submit_sm", client=self.seq, **{k: v for k, v in fields.items() if v is not None})
            deadline = time.monotonic() + timeout
            with self._cond:
                while self.alive and len(self._pending) >= self.window:
                    if not self._cond.wait(deadline - time.monotonic()) and time.monotonic() >= deadline:
                        break
                if not self.alive:
                    answer.done, answer.detail = True, self.reason
                    break
                if len(self._pending) >= self.window:
                    answer.done, answer.detail = True, "timed out waiting for room in the window"
                    break
                self._pending[pdu.sequence] = answer
            try:
                self._write(pdu)
            except _LinkDown:
                break
        for answer in answers:
            self._wait(answer, timeout)
        return answers

    def _wait(self, answer: _Answer, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not answer.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    for seq, pending in list(self._pending.items()):
                        if pending is answer:
                            del self._pending[seq]  # (a late answer is ignored)
                    answer.done, answer.detail = True, "timed out waiting for submit_sm_resp"
                    self._cond.notify_all()
                    break
                self._cond.wait(left)

    def _write(self, pdu: Any) -> None:
        data = pdu.generate()
        with self._write_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._die(_drop_reason(exc))
                raise _LinkDown(self.reason) from None
            self._last_write = time.monotonic()

    # -------------------------------------------------------------- reading

    def _read_pdu(self) -> Any:
        header = self._recv(4)
        (length,) = struct.unpack(">L", header)
        if not 16 <= length <= MAX_PDU:
            raise _LinkDown("malformed PDU from SMSC")
        raw = header + self._recv(length - 4)
        try:
            pdu = smpp.parse_pdu(raw, client=self.seq, allow_unknown_opt_params=True)
        except Exception:  # smpplib raises several kinds for a PDU it cannot read
            raise _LinkDown("malformed PDU from SMSC") from None
        if pdu is None:
            raise _LinkDown("unknown command from SMSC")
        return pdu

    def _recv(self, size: int) -> bytes:
        chunks, got = [], 0
        while got < size:
            try:
                chunk = self.sock.recv(size - got)
            except TimeoutError:
                raise
            except OSError as exc:
                raise _LinkDown(_drop_reason(exc)) from None
            if not chunk:
                raise _LinkDown("SMSC closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_loop(self) -> None:
        try:
            while self.alive:
                if not self._readable():
                    continue
                self._dispatch(self._read_pdu())
        except TimeoutError:
            self._die("timed out reading from SMSC")
        except _LinkDown as exc:
            self._die(str(exc))
        except Exception as exc:  # never let the reader die silently with sends waiting
            self._die(f"connection failed ({type(exc).__name__})")

    def _readable(self) -> bool:
        """Wait for data, sending an enquire_link when idle and dropping the link when it
        goes unanswered."""
        now = time.monotonic()
        if self._enquiry_sent is not None and now - self._enquiry_sent > self.timeout:
            raise _LinkDown("SMSC did not answer enquire_link")
        if self._enquiry_sent is None and now - self._last_write >= self.enquire_link:
            self._enquiry_sent = now
            self._write(smpp.make_pdu("enquire_link", client=self.seq))
        wake = self.timeout if self._enquiry_sent is not None else self.enquire_link
        since = self._enquiry_sent if self._enquiry_sent is not None else self._last_write
        wait = max(0.0, since + wake - time.monotonic())
        readable, _, _ = select.select([self.sock], [], [], min(wait, 1.0) + 0.001)
        return bool(readable)

    def _dispatch(self, pdu: Any) -> None:
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack"):
            with self._cond:
                answer = self._pending.pop(pdu.sequence, None)
                if answer is not None:
                    answer.status = pdu.status
                    answer.message_id = _text_of(getattr(pdu, "message_id", b""))
                    answer.detail = _status_text(pdu.status) if pdu.status else ""
                    answer.done = True
                    self._cond.notify_all()
        elif command == "enquire_link_resp":
            self._enquiry_sent = None
        elif command == "enquire_link":
            self._respond("enquire_link_resp", pdu.sequence)
        elif command == "deliver_sm":
            with self._cond:
                self._inbound.append(pdu)
                self._cond.notify_all()
        elif command == "unbind":
            self._respond("unbind_resp", pdu.sequence)
            raise _LinkDown("SMSC unbound the session")
        elif command == "unbind_resp":
            self._unbound.set()
            raise _LinkDown("unbound")
        elif pdu.is_request() and command != "alert_notification":
            nack = smpp.make_pdu("generic_nack", client=self.seq, status=consts.SMPP_ESME_RINVCMDID)
            nack.sequence = pdu.sequence
            self._write(nack)

    def _respond(self, command: str, sequence: int) -> None:
        pdu = smpp.make_pdu(command, client=self.seq)
        pdu.sequence = sequence
        self._write(pdu)

    def take_inbound(self, timeout: float) -> list[Any]:
        """The deliver_sm received so far (waiting up to ``timeout`` for one), not answered
        yet: ``answer`` them once what they say is kept."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.alive and not self._inbound and self._cond.wait(max(0.0, deadline - time.monotonic())):
                pass
            taken, self._inbound = self._inbound, []
        return taken

    def answer(self, taken: list[Any]) -> None:
        """deliver_sm_resp for each; a link that drops meanwhile leaves the rest to the SMSC,
        which sends what was not answered again."""
        for pdu in taken:
            try:
                self._respond("deliver_sm_resp", pdu.sequence)
            except _LinkDown:
                break

    # -------------------------------------------------------------- ending

    def _die(self, reason: str) -> None:
        with self._cond:
            if not self.alive:
                return
            self.alive = False
            self.reason = reason
            for answer in self._pending.values():
                answer.done, answer.detail = True, reason
            self._pending.clear()
            self._inbound.clear()
            self._cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's select
        except OSError:
            pass

    def close(self, unbind: bool) -> None:
        if unbind and self.alive:
            try:
                self._write(smpp.make_pdu("unbind", client=self.seq))
                self._unbound.wait(min(self.timeout, 2.0))
            except _LinkDown:
                pass
        self._die("connection closed")
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(self.timeout)
        self.sock.close()


# ---------------------------------------------------------------------- encoding


def encode(text: str) -> tuple[int, list[bytes]]:
    """data_coding and the short_message of each part (with its UDH when there are several)."""
    try:
        units = [char.encode("gsm03.38") for char in text]
        data_coding, single, size = 0, GSM_SINGLE, GSM_PART
    except UnicodeEncodeError:  # octets of UTF-16: a surrogate pair stays one unit of 4
        units = [char.encode("utf-16-be") for char in text]
        data_coding, single, size = 8, UCS2_SINGLE * 2, UCS2_PART * 2
    if sum(map(len, units)) <= single:
        return data_coding, [b"".join(units)]
    chunks: list[bytes] = []
    current = b""
    for unit in units:
        if len(current) + len(unit) > size:
            chunks.append(current)
            current = b""
        current += unit
    chunks.append(current)
    reference = uuid.uuid4().int & 0xFF
    total = len(chunks)
    return data_coding, [bytes([5, 0, 3, reference, total, number]) + chunk for number, chunk in enumerate(chunks, 1)]


def _decode(data_coding: int, data: bytes, udhi: bool) -> str | tuple[int, int, int, str] | None:
    """The text of a deliver_sm; a part of a concatenated one as (reference, total, number, text)."""
    concat = None
    if udhi and data:
        length = data[0]
        header, data = data[1:1 + length], data[1 + length:]
        concat = _concat_info(header)
    if data_coding == 8:
        text = data.decode("utf-16-be", errors="replace")
    elif data_coding == 0:
        try:
            text = data.decode("gsm03.38")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data.decode("latin-1")
    if concat is not None:
        return (*concat, text)
    return text


def _concat_info(header: bytes) -> tuple[int, int, int] | None:
    position = 0
    while position + 2 <= len(header):
        ident, size = header[position], header[position + 1]
        value = header[position + 2:position + 2 + size]
        if ident == 0x00 and size == 3:
            return value[0], value[1], value[2]
        if ident == 0x08 and size == 4:
            return value[0] << 8 | value[1], value[2], value[3]
        position += 2 + size
    return None


def _receipt_events(pdu: Any) -> list[dict[str, Any]]:
    fields: dict[str, str] = {}
    for key, value in _RECEIPT_FIELD.findall(_text_of(pdu.short_message)):
        fields.setdefault(key.lower(), value)  # the first: the receipt's text: part may quote anything
    ident = _text_of(getattr(pdu, "receipted_message_id", None)) or fields.get("id", "")
    state = fields.get("stat", "").upper() or TLV_STATES.get(getattr(pdu, "message_state", None) or 0, "")
    if not ident or not _ID.fullmatch(ident):
        return []
    if state == "DELIVRD":
        return [{"id": f"{ident}:delivered", "type": "delivered", "message": ident, "status": "delivered"}]
    if state not in FAILED_STATES:
        return []  # ENROUTE, ACCEPTD, UNKNOWN: nothing to record
    event = {"id": f"{ident}:{FAILED_STATES[state]}", "type": "failed", "message": ident,
             "status": FAILED_STATES[state], "permanent": False}
    error = fields.get("err", "")
    if error and error.isalnum():
        event["reason"] = f"error {error[:10]}"
    return [event]


# ---------------------------------------------------------------------- helpers



def _status_text(status: int) -> str:
    name = STATUS_NAMES.get(status, "command_status")
    description = consts.DESCRIPTIONS.get(status)
    text = f"{name} (0x{status:02X})"
    return f"{text}: {description}" if description else text


def _drop_reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out writing to SMSC"
    return os_error_detail(exc, "connection to SMSC dropped")


def _text_of(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1").strip("\x00 ")
    return value.strip() if isinstance(value, str) else ""


def _address(value: Any, ton: int | None) -> str:
    digits = _text_of(value)
    return f"+{digits}" if ton == 1 and digits.isdigit() else digits


def _source_address(source: str) -> tuple[int, int, str]:
    """TON, NPI and address of the sender: international, national digits or alphanumeric."""
    if not source:
        raise ChannelConfigError("smpp URL needs source=, the sender (e.g. source=Northwind or source=%2B15550100)")
    if source.startswith("+") and source[1:].isdigit() and 1 <= len(source) - 1 <= 20:
        return 1, 1, source[1:]
    if source.isdigit() and len(source) <= 20:
        return 0, 1, source
    if _SOURCE_ALPHA.fullmatch(source):
        return 5, 0, source
    raise ChannelConfigError("smpp URL: source must be +digits, digits, or at most 11 letters, digits, spaces or ._-&")


def _check_credential(value: str, field: str, most: int, required: bool) -> None:
    if required and not value:
        raise ChannelConfigError(f"smpp URL needs the {field} before the host (smpp://SYSTEM_ID:PASSWORD@host)")
    if len(value) > most or not all(" " <= char <= "~" for char in value):
        raise ChannelConfigError(f"smpp URL: the {field} must be at most {most} printable ASCII characters")


def _whole(value: str, option: str, least: int, most: int) -> int:
    if not value.isdigit() or not least <= int(value) <= most:
        raise ChannelConfigError(f"smpp URL: {option} must be a whole number from {least} to {most}")
    return int(value)



"""The contract every registered channel adapter must pass, table-driven.

Each row names how to make the channel, an outbound message, how to read back what
the receiver got, and the failures injected for real (no mocks): a closed port, a
server that refuses or hangs up, an HTTP gateway or webhook receiver that answers 429,
500 or 400, never answers or hangs up mid-answer, an untrusted certificate, a folder under
a regular file, a full disk (``/dev/full``), a folder the kernel refuses to create (``/sys``).
"""

from __future__ import annotations

import json
import mailbox
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from standardwebhooks import Webhook

from channels import Channel, Delivered, Forgotten, Outbound, available, channel_from_url

PASSWORD = "s3cret-Pa55"
WEBHOOK_SECRET = "whsec_AP/+Y2NtLWNvbnRyYWN0LXNpZ25pbmcta2V5LTMy"  # (base64: no room for PASSWORD)


class Env:
    """What a row may need: a tmp folder, message factories, an SMTP server on demand."""

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.tmp = tmp_path
        self._request = request
        self._smtp: Any = None
        self.email = request.getfixturevalue("email_factory")
        self.pdf = request.getfixturevalue("pdf_factory")

    @property
    def smtp(self) -> Any:
        if self._smtp is None:
            self._smtp = self._request.getfixturevalue("smtp_server")()
        return self._smtp

    def fixture(self, name: str) -> Any:
        return self._request.getfixturevalue(name)

    def regular_file(self) -> Path:
        path = self.tmp / "not-a-folder"
        path.write_text("a regular file\n")
        return path


@dataclass
class Failure:
    id: str
    url: Callable[[Env], str]
    outbound: Callable[[Env], Outbound]
    status: str
    detail: str  # expected in DeliveryResult.detail
    setup: Callable[[Env], None] = lambda env: None
    prepare: Callable[[Env, Channel], None] = lambda env, channel: None  # after creation
    kwargs: Callable[[Env], dict[str, Any]] = lambda env: {}
    possible: Callable[[], bool] = lambda: True


@dataclass
class Case:
    id: str
    url: Callable[[Env], str]
    outbound: Callable[[Env], Outbound]
    received: Callable[[Env, Channel, Outbound], Any]
    expected: Callable[[Outbound], Any]
    secret_url: str  # a URL of this scheme, with a password where the scheme takes one
    failures: list[Failure] = field(default_factory=list)
    secret: str = PASSWORD  # the password as secret_url holds it


def email_to(to: str) -> Callable[[Env], Outbound]:
    return lambda env: Outbound("msg-0001", to, env.email(to))


def sms_to(to: str, text: str = "Your bill of EUR 42.00 is due on 1 May.") -> Callable[[Env], Outbound]:
    return lambda env: Outbound("sms-0001", to, text, {"encoding": "GSM-7", "segments": 1})


def letter(env: Env) -> Outbound:
    meta = {"customer": "C-1001", "pages": 2, "household_key": "HH-1", "postal_code": "1010"}
    return Outbound("doc-0001", "HH-1", env.pdf(2), meta)


def smtp_received(env: Env, channel: Channel, out: Outbound) -> bytes:
    return env.smtp.handler.messages[-1].replace(b"\r\n", b"\n")


def maildir_received(env: Env, channel: Channel, out: Outbound) -> bytes:
    box = mailbox.Maildir(str(env.tmp / "mail"), create=False)
    keys = box.keys()
    assert len(keys) == 1
    assert box[keys[0]]["Message-ID"] == out.content["Message-ID"]  # type: ignore[index]
    return box.get_bytes(keys[0])


def sms_received(env: Env, channel: Channel, out: Outbound) -> str:
    lines = (env.tmp / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])["text"]


def sms_http_received(env: Env, channel: Channel, out: Outbound) -> str:
    from urllib.parse import parse_qs

    form = parse_qs(env.fixture("sms_gateway").requests[-1]["body"].decode("ascii"))
    assert form["To"] == [out.to]
    return form["Body"][0]


def sms_gateway_url(query: str = "", answer: str = "ok") -> Callable[[Env], str]:
    """The test gateway's URL (preset twilio), told how to answer."""

    def url(env: Env) -> str:
        gateway = env.fixture("sms_gateway")
        gateway.answer(answer)
        return gateway.url("twilio", query=query)

    return url


def smpp_received(env: Env, channel: Channel, out: Outbound) -> str:
    smsc = env.fixture("smsc")
    assert smsc.submits[-1].destination_addr.decode() == out.to[1:]
    return smsc.received_text()


def smsc_url(query: str = "", statuses: tuple[int, ...] = (), auth: str | None = None,
             **tell: Any) -> Callable[[Env], str]:
    """The test SMSC's URL, told how to answer (``statuses`` of the next submit_sm, ``silent``,
    ``drop_after``)."""

    def url(env: Env) -> str:
        smsc = env.fixture("smsc")
        smsc.statuses = list(statuses)
        for name, value in tell.items():
            setattr(smsc, name, value)
        return smsc.url(query, auth=auth)

    return url


def rendered(to: str = "C-1001", text: str = "Your statement for November is ready.") -> Callable[[Env], Outbound]:
    content = {"subject": "Your statement", "text": text, "html": "<p>Grüße: your statement is ready.</p>"}
    meta = {"communication": "statement", "purpose": "statement", "document": False, "pages": None}
    return lambda env: Outbound("msg-0001", to, content, meta)


def webhook_url(query: str = "", answer: str = "ok") -> Callable[[Env], str]:
    """The test gateway's URL as a webhook receiver, told how to answer."""

    def url(env: Env) -> str:
        receiver = env.fixture("sms_gateway")
        receiver.answer(answer)
        return f"webhook+http://127.0.0.1:{receiver.port}/hooks?secret={quote(WEBHOOK_SECRET)}&{query}".rstrip("&")

    return url


def webhook_received(env: Env, channel: Channel, out: Outbound) -> Any:
    request = env.fixture("sms_gateway").requests[-1]
    payload = Webhook(WEBHOOK_SECRET).verify(request["body"], request["headers"])
    assert (payload["message_id"], payload["to"], request["headers"]["webhook-id"]) == (out.message_id, out.to, out.message_id)
    return payload["content"]


def inbox_received(env: Env, channel: Channel, out: Outbound) -> Any:
    from channels.inbox import message_path

    (stored,) = (env.tmp / "inbox").glob("*/*/*.json")
    assert out.to not in str(stored) and out.to.encode() not in stored.read_bytes()
    return channel.read(message_path(out.to, out.message_id))["content"]  # type: ignore[attr-defined]


def print_received(env: Env, channel: Channel, out: Outbound) -> bytes:
    (document,) = (env.tmp / "print" / "default" / "documents").iterdir()
    return document.read_bytes()


def dev_full_available() -> bool:
    return os.path.exists("/dev/full")


def sys_refuses_mkdir() -> bool:
    try:
        os.mkdir("/sys/ccm-contract-probe")
    except OSError:
        return True
    os.rmdir("/sys/ccm-contract-probe")
    return False


def new_is_a_file(env: Env) -> None:
    (env.tmp / "mail").mkdir()
    (env.tmp / "mail" / "new").write_text("not a folder")


def manifest_on_full_disk(env: Env, channel: Channel) -> None:
    """The batch is open, then its disk fills: the manifest row cannot be written."""
    channel.open_batch("b1")
    manifest = env.tmp / "print" / "b1" / "manifest.csv"
    manifest.unlink(missing_ok=True)
    manifest.symlink_to("/dev/full")


CASES = [
    Case(
        "smtp",
        url=lambda env: env.smtp.url(),
        outbound=email_to("ok@example.com"),
        received=smtp_received,
        expected=lambda out: out.content.as_bytes(),  # type: ignore[union-attr]
        secret_url=f"smtp://mailer:{PASSWORD}@mail.example.com:587?starttls=required&sessions=2",
        failures=[
            Failure("busy-451", lambda env: env.smtp.url(), email_to("busy@example.com"),
                    "transient", "451 4.3.0 try later"),
            Failure("reject-550", lambda env: env.smtp.url(), email_to("reject@example.com"),
                    "permanent", "550 5.1.1"),
            Failure("dropped", lambda env: env.smtp.url(), email_to("drop@example.com"),
                    "transient", "closed"),
            Failure("timeout", lambda env: env.smtp.url(query="starttls=off&timeout=0.5"),
                    email_to("slow@example.com"), "transient", "timed out"),
            Failure("refused", lambda env: f"smtp://127.0.0.1:{_closed_port()}?starttls=off",
                    email_to("ok@example.com"), "transient", "ECONNREFUSED"),
            Failure("starttls-missing", lambda env: env.smtp.url(query="starttls=required"),
                    email_to("ok@example.com"), "transient", "STARTTLS required"),
            Failure("untrusted-cert", lambda env: _tls_server(env).url(query="starttls=required"),
                    email_to("ok@example.com"), "transient", "certificate not trusted"),
            Failure("bad-password",
                    lambda env: _tls_server(env, with_auth=True).url(
                        auth="mailer:wrong-Pa55@", query="starttls=required"),
                    email_to("ok@example.com"), "transient", "authentication failed",
                    kwargs=lambda env: {"ssl_context": env.fixture("client_tls")}),
            Failure("not-an-email", lambda env: env.smtp.url(),
                    lambda env: Outbound("m", "ok@example.com", "plain text"),
                    "permanent", "not an EmailMessage"),
        ],
    ),
    Case(
        "maildir",
        url=lambda env: f"maildir://{env.tmp / 'mail'}",
        outbound=email_to("ok@example.com"),
        received=maildir_received,
        expected=lambda out: out.content.as_bytes(),  # type: ignore[union-attr]
        secret_url="maildir:///var/ccm/mail",
        failures=[
            Failure("under-a-file", lambda env: f"maildir://{env.regular_file() / 'mail'}",
                    email_to("ok@example.com"), "transient", "ENOTDIR"),
            Failure("new-is-a-file", lambda env: f"maildir://{env.tmp / 'mail'}",
                    email_to("ok@example.com"), "transient", "E", setup=new_is_a_file),
            Failure("kernel-refuses", lambda env: "maildir:///sys/ccm-mail",
                    email_to("ok@example.com"), "transient", "E", possible=sys_refuses_mkdir),
            Failure("not-an-email", lambda env: f"maildir://{env.tmp / 'mail'}",
                    lambda env: Outbound("m", "ok@example.com", "plain text"),
                    "permanent", "not an e-mail"),
        ],
    ),
    Case(
        "sms-file",
        url=lambda env: f"file://{env.tmp / 'sms.jsonl'}",
        outbound=sms_to("+447700900123"),
        received=sms_received,
        expected=lambda out: out.content,
        secret_url="file:///var/ccm/sms.jsonl",
        failures=[
            Failure("under-a-file", lambda env: f"file://{env.regular_file() / 'sms.jsonl'}",
                    sms_to("+447700900123"), "transient", "ENOTDIR"),
            Failure("disk-full", lambda env: "file:///dev/full", sms_to("+447700900123"),
                    "transient", "ENOSPC", possible=dev_full_available),
            Failure("not-e164", lambda env: f"file://{env.tmp / 'sms.jsonl'}",
                    sms_to("07700 900123"), "permanent", "E.164"),
            Failure("too-long", lambda env: f"file://{env.tmp / 'sms.jsonl'}",
                    sms_to("+447700900123", "x" * 1601), "permanent", "longer than 1600"),
        ],
    ),
    Case(
        "sms-http",
        url=sms_gateway_url(),
        outbound=sms_to("+447700900123", "Grüße: your bill of EUR 42.00 is due on 1 May. " * 4),
        received=sms_http_received,
        expected=lambda out: out.content,
        secret_url=f"sms+https://AC0123456789:{PASSWORD}@api.twilio.example:443?preset=twilio&from=%2B15550100&sessions=2",
        failures=[
            Failure("busy-429", sms_gateway_url(answer="429"), sms_to("+447700900123"),
                    "transient", "HTTP 429"),
            Failure("error-500", sms_gateway_url(answer="500"), sms_to("+447700900123"),
                    "transient", "HTTP 500"),
            Failure("reject-400", sms_gateway_url(answer="400"), sms_to("+447700900123"),
                    "permanent", "HTTP 400, error 21211"),
            Failure("timeout", sms_gateway_url("read_timeout=0.3", answer="hang"), sms_to("+447700900123"),
                    "transient", "timed out"),
            Failure("dropped", sms_gateway_url(answer="drop"), sms_to("+447700900123"),
                    "transient", "closed the connection"),
            Failure("cut-mid-answer", sms_gateway_url(answer="cut"), sms_to("+447700900123"),
                    "transient", "mid-answer"),
            Failure("refused", lambda env: f"sms+http://AC1:tok@127.0.0.1:{_closed_port()}?preset=twilio&from=ACME",
                    sms_to("+447700900123"), "transient", "ECONNREFUSED"),
            Failure("not-e164", sms_gateway_url(), sms_to("07700 900123"), "permanent", "E.164"),
            Failure("too-long", sms_gateway_url(), sms_to("+447700900123", "x" * 1601),
                    "permanent", "longer than 1600"),
        ],
    ),
    Case(
        "smpp",
        url=smsc_url(),
        outbound=sms_to("+447700900123", "Grüße: your bill of EUR 42.00 is due on 1 May. " * 4),
        received=smpp_received,
        expected=lambda out: out.content,
        # (SMPP 3.4 passwords have at most 8 characters: PASSWORD does not fit)
        secret_url="smpp://northwind:s3cretPw@smsc.example.net:2775?source=Northwind&bind=transceiver&window=4",
        failures=[
            Failure("throttled", smsc_url(statuses=(0x58,)), sms_to("+447700900123"),
                    "transient", "ESME_RTHROTTLED"),
            Failure("queue-full", smsc_url(statuses=(0x14,)), sms_to("+447700900123"),
                    "transient", "ESME_RMSGQFUL"),
            Failure("invalid-destination", smsc_url(statuses=(0x0B,)), sms_to("+447700900123"),
                    "permanent", "ESME_RINVDSTADR"),
            Failure("timeout", smsc_url("timeout=0.3", silent=True), sms_to("+447700900123"),
                    "transient", "timed out"),
            Failure("dropped", smsc_url(drop_after=1), sms_to("+447700900123"),
                    "transient", "closed the connection"),
            Failure("refused", lambda env: f"smpp://sys:pw@127.0.0.1:{_closed_port()}?source=ACME",
                    sms_to("+447700900123"), "transient", "ECONNREFUSED"),
            Failure("bad-password", smsc_url(auth="northwind:wrongPw@"), sms_to("+447700900123"),
                    "transient", "bind refused: ESME_RINVPASWD"),
            Failure("not-e164", smsc_url(), sms_to("07700 900123"), "permanent", "E.164"),
            Failure("too-long", smsc_url(), sms_to("+447700900123", "x" * 1601),
                    "permanent", "longer than 1600"),
        ],
    ),
    Case(
        "print",
        url=lambda env: f"print://{env.tmp / 'print'}",
        outbound=letter,
        received=print_received,
        expected=lambda out: out.content,
        secret_url="print:///var/ccm/print",
        failures=[
            Failure("under-a-file", lambda env: f"print://{env.regular_file() / 'print'}",
                    letter, "transient", "ENOTDIR"),
            Failure("disk-full", lambda env: f"print://{env.tmp / 'print'}", letter,
                    "transient", "ENOSPC", prepare=manifest_on_full_disk,
                    possible=dev_full_available),
            Failure("not-a-pdf", lambda env: f"print://{env.tmp / 'print'}",
                    lambda env: Outbound("d", "HH-1", b"<html>", {"pages": 1}),
                    "permanent", "not a PDF"),
        ],
    ),
    Case(
        "webhook",
        url=webhook_url(),
        outbound=rendered(),
        received=webhook_received,
        expected=lambda out: out.content,
        secret_url=f"webhook+https://crm.example.com:8443/hooks/ccm?secret={quote(WEBHOOK_SECRET, safe='')}&sessions=2",
        secret=quote(WEBHOOK_SECRET, safe=""),
        failures=[
            Failure("busy-429", webhook_url(answer="429"), rendered(), "transient", "HTTP 429"),
            Failure("error-500", webhook_url(answer="500"), rendered(), "transient", "HTTP 500"),
            Failure("reject-400", webhook_url(answer="400"), rendered(), "permanent", "HTTP 400, error 21211"),
            Failure("timeout", webhook_url("timeout=0.3", answer="hang"), rendered(), "transient", "timed out"),
            Failure("dropped", webhook_url(answer="drop"), rendered(), "transient", "closed the connection"),
            Failure("cut-mid-answer", webhook_url(answer="cut"), rendered(), "transient", "mid-answer"),
            Failure("refused", lambda env: f"webhook+http://127.0.0.1:{_closed_port()}/?secret={quote(WEBHOOK_SECRET)}",
                    rendered(), "transient", "ECONNREFUSED"),
            Failure("not-a-message", webhook_url(), lambda env: Outbound("m", "C-1001", "plain text"),
                    "permanent", "not a rendered message"),
            Failure("too-large", webhook_url(), rendered(text="x" * 256 * 1024), "permanent", "larger than 262144"),
        ],
    ),
    Case(
        "inbox",
        url=lambda env: f"inbox://{env.tmp / 'inbox'}",
        outbound=rendered(),
        received=inbox_received,
        expected=lambda out: out.content,
        secret_url="inbox:///var/ccm/inbox",
        failures=[
            Failure("under-a-file", lambda env: f"inbox://{env.regular_file() / 'inbox'}", rendered(),
                    "transient", "ENOTDIR"),
            Failure("dev-full", lambda env: "inbox:///dev/full", rendered(), "transient", "ENOTDIR",
                    possible=dev_full_available),
            Failure("kernel-refuses", lambda env: "inbox:///sys/ccm-inbox", rendered(), "transient", "E",
                    possible=sys_refuses_mkdir),
            Failure("not-a-message", lambda env: f"inbox://{env.tmp / 'inbox'}",
                    lambda env: Outbound("m", "C-1001", b"%PDF-1.7"), "permanent", "not a rendered message"),
            Failure("too-large", lambda env: f"inbox://{env.tmp / 'inbox'}", rendered(text="x" * 1024 * 1024),
                    "permanent", "larger than 1048576"),
        ],
    ),
]

FAILURES = [(case, failure) for case in CASES for failure in case.failures]


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tls_server(env: Env, **kwargs: Any) -> Any:
    return env.fixture("smtp_server")(
        tls_context=env.fixture("server_tls"), require_starttls=True, **kwargs
    )


@pytest.fixture
def env(tmp_path: Path, request: pytest.FixtureRequest) -> Env:
    return Env(tmp_path, request)


def test_every_registered_adapter_has_a_row() -> None:
    assert {case.id for case in CASES} == set(available())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_send_delivers_exactly_the_content(case: Case, env: Env) -> None:
    out = case.outbound(env)
    with channel_from_url(case.url(env)) as channel:
        result = channel.send(out)
        assert result.status == "sent", result
        assert result.provider_id
        assert case.received(env, channel, out) == case.expected(out)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_forget_takes_out_what_the_channel_kept_or_says_it_keeps_nothing(case: Case, env: Env) -> None:
    with channel_from_url(case.url(env)) as channel:
        channel.open_batch("b1")
        result = channel.send(case.outbound(env))
        channel.close_batch()
        delivered = [Delivered(result.provider_id or "", "b1")]
        forgotten = channel.forget(delivered)
        if forgotten is not None:  # a channel that writes files of its own (SMTP hands messages to a server)
            assert forgotten.messages == 1 and channel.forget(delivered) == Forgotten()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_url_round_trips_and_masks_secrets(case: Case) -> None:
    channel = channel_from_url(case.secret_url)
    full = channel.url(privacy=False)
    assert type(channel)(full).url(privacy=False) == full
    assert type(channel)(channel.url(privacy=True)).url(privacy=True) == channel.url()
    assert case.secret not in channel.url() and case.secret not in repr(channel)
    if case.secret in case.secret_url:
        assert case.secret in full and "****" in channel.url()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_close_is_idempotent(case: Case, env: Env) -> None:
    channel = channel_from_url(case.url(env))
    channel.close()
    assert channel.send(case.outbound(env)).status == "sent"
    channel.close()
    channel.close()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_an_adapter_with_several_sessions_takes_sends_from_that_many_threads(case: Case, env: Env) -> None:
    """``sessions`` is how many sends may run at once (the engine sends from that many
    threads); 1 means one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with channel_from_url(case.url(env)) as channel:
        assert isinstance(channel.sessions, int) and channel.sessions >= 1
        if channel.sessions == 1:
            pytest.skip(f"{case.id} sends one message at a time (sessions = 1)")
        outs = [case.outbound(env) for _ in range(3 * channel.sessions)]
        with ThreadPoolExecutor(channel.sessions) as pool:
            results = list(pool.map(channel.send, outs))
    assert [r.status for r in results] == ["sent"] * len(outs)


@pytest.mark.parametrize(
    ("case", "failure"), FAILURES, ids=[f"{c.id}-{f.id}" for c, f in FAILURES]
)
def test_injected_failure_is_classified_not_raised(
    case: Case, failure: Failure, env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    if not failure.possible():
        pytest.skip(f"{failure.id} cannot be injected on this machine")
    failure.setup(env)
    out = failure.outbound(env)
    url = failure.url(env)
    caplog.set_level("DEBUG")
    kwargs = failure.kwargs(env)
    with _with_kwargs(url, kwargs) if kwargs else channel_from_url(url) as channel:
        failure.prepare(env, channel)
        result = channel.send(out)
    assert result.status == failure.status, result
    assert failure.detail in result.detail
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("channels"))
    for secret in (out.to, "wrong-Pa55", "tw-T0ken-9", "wrongPw", WEBHOOK_SECRET, quote(WEBHOOK_SECRET)):
        assert secret not in result.detail and secret not in ours


def _with_kwargs(url: str, kwargs: dict[str, Any]) -> Channel:
    from channels.registry import scheme_table

    cls: Any = scheme_table()[url.split(":", 1)[0]]
    return cls(url, **kwargs)

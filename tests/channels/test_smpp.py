"""SmppChannel against a real SMPP 3.4 SMSC on 127.0.0.1 (``smsc`` in conftest): data
codings and concatenated parts, the window, the classification of answers and failures,
reconnecting, keep-alive, receipts and replies read by ``poll_inbound``, and URLs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from channels import ChannelConfigError, Outbound, SmppChannel, channel_from_url
from documents.sms import sms_info

NUMBER = "+447700900123"
TEXT = "Your bill of EUR 42.00 is due on 1 May."
SECRETS = (NUMBER, NUMBER[1:], TEXT, "Pw-1234", "wrongPw")


def sms(text: str = TEXT, message_id: str = "m000000123-0a1b2c3d4e5f", **meta: object) -> Outbound:
    return Outbound(message_id, NUMBER, text, meta)


def assert_nothing_personal(detail: str, caplog: pytest.LogCaptureFixture | None = None) -> None:
    logged = "\n".join(r.getMessage() for r in caplog.records) if caplog else ""
    for secret in SECRETS:
        assert secret not in detail and secret not in logged


# --------------------------------------------------------------------------- data codings


def test_a_short_gsm7_message_is_one_submit_sm(smsc) -> None:
    with channel_from_url(smsc.url()) as channel:
        assert isinstance(channel, SmppChannel)
        result = channel.send(sms("Grüße € [1]", segments=1))
    assert result.status == "sent" and result.provider_id == "smsc-1" and result.detail == "1 segment"
    (pdu,) = smsc.submits
    assert pdu.data_coding == 0 and not pdu.esm_class
    assert pdu.destination_addr == b"447700900123" and (pdu.dest_addr_ton, pdu.dest_addr_npi) == (1, 1)
    assert pdu.source_addr == b"Northwind" and pdu.source_addr_ton == 5
    assert pdu.registered_delivery == 1
    assert smsc.received_text() == "Grüße € [1]"
    assert smsc.binds == [{"command": "bind_transmitter", "system_id": "northwind", "password": "Pw-1234"}]


def test_a_chinese_message_goes_as_ucs2(smsc) -> None:
    with channel_from_url(smsc.url()) as channel:
        assert channel.send(sms("您好，您的账单已出。")).status == "sent"
    (pdu,) = smsc.submits
    assert pdu.data_coding == 8 and pdu.short_message == "您好，您的账单已出。".encode("utf-16-be")


@pytest.mark.parametrize("text", [
    "Statement ready. " * 20 + "{€}" * 30,  # GSM-7 with escapes that must not be cut
    "您好，" * 60 + "😀" * 20,  # UCS-2 with surrogate pairs that must not be cut
])
def test_a_long_message_goes_in_concatenated_parts_with_a_udh(smsc, text) -> None:
    info = sms_info(text)
    with channel_from_url(smsc.url()) as channel:
        result = channel.send(sms(text, segments=info.segments))
    assert result.status == "sent" and result.provider_id == "smsc-1"
    assert result.detail == f"{info.segments} segments"
    assert len(smsc.submits) == info.segments > 1
    references = set()
    for number, pdu in enumerate(smsc.submits, start=1):
        udh = pdu.short_message[:6]
        assert pdu.esm_class & 0x40 and udh[:3] == b"\x05\x00\x03"
        assert (udh[4], udh[5]) == (info.segments, number)
        assert len(pdu.short_message) <= (159 if pdu.data_coding == 0 else 140)
        references.add(udh[3])
        assert pdu.registered_delivery == (1 if number == 1 else 0)
    assert len(references) == 1
    assert smsc.received_text() == text


def test_a_segment_count_other_than_the_engines_is_noted(smsc) -> None:
    with channel_from_url(smsc.url()) as channel:
        assert channel.send(sms("x" * 200, segments=1)).detail == "2 segments (engine counted 1)"


# --------------------------------------------------------------------------- the window


def test_more_messages_than_the_window_are_all_acknowledged_within_it(smsc) -> None:
    smsc.delay = 0.05
    with channel_from_url(smsc.url("window=3")) as channel:
        assert channel.sessions == 3
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(channel.send, [sms(message_id=f"m{n}") for n in range(12)]))
    assert [r.status for r in results] == ["sent"] * 12
    assert sorted(r.provider_id for r in results) == sorted(f"smsc-{n}" for n in range(1, 13))
    assert 1 < smsc.max_outstanding <= 3
    assert len(smsc.binds) == 1


def test_one_long_message_waits_for_room_in_a_window_of_one(smsc) -> None:
    smsc.delay = 0.02
    with channel_from_url(smsc.url("window=1")) as channel:
        assert channel.send(sms("x" * 500)).status == "sent"
    assert len(smsc.submits) == 4 and smsc.max_outstanding == 1


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(("status", "expected", "detail"), [
    (0x58, "transient", "ESME_RTHROTTLED (0x58): Throttling error"),
    (0x14, "transient", "ESME_RMSGQFUL (0x14)"),
    (0x08, "transient", "ESME_RSYSERR (0x08)"),
    (0x0B, "permanent", "ESME_RINVDSTADR (0x0B): Invalid Destination Address"),
    (0x0A, "permanent", "ESME_RINVSRCADR (0x0A)"),
    (0x45, "permanent", "ESME_RSUBMITFAIL (0x45)"),
    (0xFE, "permanent", "ESME_RDELIVERYFAILURE (0xFE)"),
])
def test_answers_are_classified(smsc, caplog, status, expected, detail) -> None:
    smsc.statuses = [status]
    with channel_from_url(smsc.url()) as channel:
        result = channel.send(sms())
        assert result.status == expected and result.detail.startswith(detail) and result.provider_id is None
        assert channel.send(sms()).status == "sent"  # the session goes on
    assert_nothing_personal(result.detail, caplog)
    assert len(smsc.binds) == 1


def test_a_part_refused_after_others_were_accepted_says_so(smsc) -> None:
    smsc.statuses = [0, 0x58]
    with channel_from_url(smsc.url()) as channel:
        result = channel.send(sms("x" * 400))
    assert result.status == "transient" and result.detail.endswith("(2 of 3 parts accepted)")


def test_no_answer_times_out_quickly(smsc) -> None:
    smsc.silent = True
    with channel_from_url(smsc.url("timeout=0.3")) as channel:
        started = time.monotonic()
        result = channel.send(sms())
    assert result.status == "transient" and result.detail == "timed out waiting for submit_sm_resp"
    assert time.monotonic() - started < 1.5


def test_a_dropped_connection_fails_the_window_and_the_next_send_reconnects(smsc, caplog) -> None:
    smsc.delay = 0.2
    smsc.drop_after = 3  # the SMSC hangs up on the third submit_sm, answering none of them
    with channel_from_url(smsc.url("window=3")) as channel:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(channel.send, [sms(message_id=f"m{n}") for n in range(3)]))
        assert [r.status for r in results] == ["transient"] * 3
        assert all(r.detail == "SMSC closed the connection" for r in results)
        smsc.delay = 0
        assert channel.send(sms()).status == "sent"
    assert len(smsc.binds) == 2
    for result in results:
        assert_nothing_personal(result.detail, caplog)


def test_a_closed_port_is_transient() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with SmppChannel(f"smpp://sys:pw@127.0.0.1:{port}?source=ACME&timeout=0.5") as channel:
        result = channel.send(sms())
    assert result.status == "transient" and result.detail == "ECONNREFUSED: cannot reach SMSC"


def test_a_refused_bind_is_transient_and_not_retried_at_once(smsc, caplog) -> None:
    with channel_from_url(smsc.url(auth="northwind:wrongPw@")) as channel:
        first = channel.send(sms())
        second = channel.send(sms())
        assert first.status == second.status == "transient"
        assert first.detail == second.detail == "bind refused: ESME_RINVPASWD (0x0E): Invalid Password"
        assert len(smsc.binds) == 1  # within bind_backoff the SMSC is not asked again
        channel.bind_backoff = 0
        channel._refused_until = 0
        smsc.password = "wrongPw"
        assert channel.send(sms()).status == "sent"
    assert_nothing_personal(first.detail, caplog)


@pytest.mark.parametrize(("out", "detail"), [
    (Outbound("m", "07700 900123", TEXT), "recipient is not an E.164 number"),
    (Outbound("m", NUMBER, b"bytes"), "content is not SMS text"),
    (Outbound("m", NUMBER, "x" * 1601), "text longer than 1600 characters"),
])
def test_what_cannot_be_an_sms_is_permanent_and_never_submitted(smsc, out, detail) -> None:
    with channel_from_url(smsc.url()) as channel:
        assert channel.send(out).detail == detail
    assert smsc.submits == [] and smsc.binds == []


# --------------------------------------------------------------------------- session


def test_enquire_link_is_sent_while_idle(smsc) -> None:
    with channel_from_url(smsc.url("enquire_link=0.1")) as channel:
        assert channel.send(sms()).status == "sent"
        deadline = time.monotonic() + 2
        while smsc.enquire_links < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert smsc.enquire_links >= 2
        assert channel.send(sms()).status == "sent"
    assert len(smsc.binds) == 1


def test_close_unbinds_and_the_next_send_binds_again(smsc) -> None:
    channel = channel_from_url(smsc.url("bind=transceiver"))
    assert channel.send(sms()).status == "sent"
    channel.close()
    channel.close()
    assert smsc.unbinds == 1
    assert channel.send(sms()).status == "sent"
    channel.close()
    assert [b["command"] for b in smsc.binds] == ["bind_transceiver"] * 2 and smsc.unbinds == 2


# --------------------------------------------------------------------------- inbound


def receipt(message_id: str, stat: str, err: str = "000") -> bytes:
    return (f"id:{message_id} sub:001 dlvrd:001 submit date:2611301000 done date:2611301001 "
            f"stat:{stat} err:{err} text:Your bill of EUR").encode("ascii")


def test_poll_inbound_reads_receipts_and_replies_and_answers_them(smsc) -> None:
    with channel_from_url(smsc.url("bind=transceiver")) as channel:
        assert channel.poll_inbound(0.05) == []
        smsc.deliver(501, esm_class=0x04, short_message=receipt("smsc-7", "DELIVRD"))
        smsc.deliver(502, esm_class=0x04, short_message=receipt("smsc-8", "UNDELIV", "0A1"))
        smsc.deliver(503, esm_class=0x04, short_message=b"", receipted_message_id="smsc-9", message_state=8)
        smsc.deliver(504, esm_class=0x04, short_message=receipt("smsc-10", "ENROUTE"))
        smsc.deliver(505, source_addr_ton=1, source_addr="447700900123", esm_class=0, data_coding=0,
                     short_message=b"STOP")
        smsc.deliver(506, source_addr_ton=1, source_addr="447700900124", esm_class=0, data_coding=8,
                     short_message="退订".encode("utf-16-be"))
        time.sleep(0.1)
        events = channel.poll_inbound(0.5)
    by_id = {event["event_id"]: event for event in events}
    assert by_id["smsc-7:delivered"]["type"] == "delivered" and by_id["smsc-7:delivered"]["message"] == "smsc-7"
    failed = by_id["smsc-8:undelivered"]
    assert (failed["type"], failed["message"], failed["reason"], failed["permanent"]) == (
        "failed", "smsc-8", "error 0A1", False)
    assert by_id["smsc-9:rejected"]["type"] == "failed"
    replies = [event for event in events if event["type"] == "reply"]
    assert [(r["from"], r["text"]) for r in replies] == [("+447700900123", "STOP"), ("+447700900124", "退订")]
    assert len(events) == 5  # ENROUTE is nothing to record
    assert sorted(smsc.deliver_resps) == [501, 502, 503, 504, 505, 506]


def test_receipts_are_answered_only_once_recorded(smsc) -> None:
    """A recording that fails (the database away) leaves the deliver_sm unanswered: the SMSC
    still holds them and sends them again; one that succeeds answers them."""
    def fails(events):  # type: ignore[no-untyped-def]
        raise RuntimeError("database away")

    kept = []
    with channel_from_url(smsc.url("bind=transceiver")) as channel:
        channel.poll_inbound(0.01)
        smsc.deliver(701, esm_class=0x04, short_message=receipt("smsc-71", "DELIVRD"))
        time.sleep(0.1)
        with pytest.raises(RuntimeError, match="database away"):
            channel.poll_inbound(0.5, fails)
        time.sleep(0.1)
        assert 701 not in smsc.deliver_resps
        smsc.deliver(702, esm_class=0x04, short_message=receipt("smsc-71", "DELIVRD"))  # the SMSC sends it again
        time.sleep(0.1)
        events = channel.poll_inbound(0.5, kept.extend)
        time.sleep(0.1)
    assert [event["event_id"] for event in kept] == [event["event_id"] for event in events] == ["smsc-71:delivered"]
    assert 702 in smsc.deliver_resps and 701 not in smsc.deliver_resps


def test_a_concatenated_reply_is_put_together(smsc) -> None:
    with channel_from_url(smsc.url("bind=transceiver")) as channel:
        channel.poll_inbound(0.01)
        for number, piece in ((2, b" please"), (1, b"Call me")):
            smsc.deliver(600 + number, source_addr_ton=1, source_addr="447700900123", esm_class=0x40,
                         data_coding=0, short_message=bytes([5, 0, 3, 9, 2, number]) + piece)
        time.sleep(0.1)
        (event,) = channel.poll_inbound(0.5)
    assert (event["type"], event["text"]) == ("reply", "Call me please")


def test_a_transmitter_reads_nothing(smsc) -> None:
    with channel_from_url(smsc.url()) as channel:
        assert channel.poll_inbound(0.01) == []
    assert smsc.binds == []


def test_parse_inbound_takes_the_engines_format() -> None:
    channel = SmppChannel("smpp://sys:pw@smsc.example.net?source=ACME")
    (event,) = channel.parse_inbound({"events": [{"id": "e1", "type": "delivered", "message": "smsc-1"}]})
    assert event["message"] == "smsc-1"


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("url", "shown"), [
    ("smpp://northwind:Pw-1234@smsc.example.net?source=Northwind",
     "smpp://northwind:****@smsc.example.net:2775?source=Northwind&bind=transmitter&window=10&enquire_link=30&timeout=10"),
    ("smpp://sys:p%40ss%3A1@10.0.0.5:2776?source=%2B15550100&bind=transceiver&window=4&enquire_link=0.5&timeout=3&system_type=CCM",
     "smpp://sys:****@10.0.0.5:2776?source=%2B15550100&bind=transceiver&window=4&enquire_link=0.5&timeout=3&system_type=CCM"),
    ("smpp://sys@[::1]?source=12345", "smpp://sys@[::1]:2775?source=12345&bind=transmitter&window=10&enquire_link=30&timeout=10"),
])
def test_urls_round_trip_with_the_password_masked(url, shown) -> None:
    channel = SmppChannel(url)
    assert channel.url() == shown and repr(channel) == f"<SmppChannel {shown}>"
    full = channel.url(privacy=False)
    assert SmppChannel(full).url(privacy=False) == full
    assert SmppChannel(full).password == channel.password


def test_the_source_sets_ton_and_npi() -> None:
    assert SmppChannel("smpp://s@h?source=%2B15550100").source_addr == "15550100"
    assert (SmppChannel("smpp://s@h?source=%2B15550100").source_ton, SmppChannel("smpp://s@h?source=12345").source_ton,
            SmppChannel("smpp://s@h?source=ACME").source_ton) == (1, 0, 5)


@pytest.mark.parametrize(("url", "message"), [
    ("smpps://sys:pw@h?source=A", "smpps:// is not supported"),
    ("smpp://h?source=A", "needs the system id"),
    ("smpp://sys:pw@/?source=A", "needs a host"),
    ("smpp://sys:pw@h", "needs source="),
    ("smpp://sys:pw@h?source=A-very-long-sender", "source must be"),
    ("smpp://sys:pw@h?source=A&bind=receiver", "bind must be one of transmitter, transceiver"),
    ("smpp://sys:pw@h?source=A&window=0", "window must be a whole number from 1 to 100"),
    ("smpp://sys:pw@h?source=A&enquire_link=never", "enquire_link must be a number of seconds"),
    ("smpp://sys:pw@h?source=A&timeout=0", "timeout must be more than 0"),
    ("smpp://sys:pw@h?source=A&colour=red", "unknown option 'colour'"),
    ("smpp://sys:password9@h?source=A", "password must be at most 8"),
    ("smpp://a-much-too-long-system-id@h?source=A", "system id must be at most 15"),
    ("smpp://sys:pw@h/path?source=A", "takes no path"),
])
def test_bad_urls_are_refused_naming_the_problem(url, message) -> None:
    with pytest.raises(ChannelConfigError, match=message) as caught:
        SmppChannel(url)
    assert "password9" not in str(caught.value)

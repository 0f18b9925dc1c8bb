"""``ccm smpp listen`` against the SMSC on 127.0.0.1 (``smsc`` in this folder's conftest): the
weekly deals go out over SMPP, the SMSC hands receipts and replies to the listener's receiver
bind, and they are recorded as provider callbacks are (a receipt matched by its provider id,
STOP suppressing the number, HELP answered); a dropped link is bound again; SIGTERM stops
it after the batch in hand; a URL that is not smpp:// is an error naming the setting."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from ccm.feedback import listen_smpp, smpp_inbound_channel
from ccm.imports import import_customers
from ccm.models import Customer, Message, Suppression
from ccm.models.feedback import ResponseEvent
from ccm.runs import service

from shared_population import CAMPAIGN_CYCLE, feedback_settings, people, write_people

PHONE = "+1415555"  # every SMS customer's number starts so (shared_population.people)


def receipt(message_id: str, stat: str) -> bytes:
    return (f"id:{message_id} sub:001 dlvrd:001 submit date:2611301000 done date:2611301001 "
            f"stat:{stat} err:000 text:This week's deals").encode("ascii")


def mo(number: str, text: str) -> dict[str, Any]:
    """The fields of a mobile-originated deliver_sm from ``number``."""
    return {"source_addr_ton": 1, "source_addr": number[1:], "esm_class": 0, "data_coding": 0, "short_message": text.encode()}


def deliver_on_bind(smsc, command: str, deliveries: list[tuple[int, dict[str, Any]]]) -> None:
    """Have the SMSC send ``deliveries`` on the next connection bound with ``command``."""
    handle = smsc._handle

    def handle_then_deliver(conn, pdu, answer):  # type: ignore[no-untyped-def]
        going = handle(conn, pdu, answer)
        if pdu.command == command and deliveries:
            for sequence, fields in deliveries:
                smsc.deliver(sequence, **fields)
            deliveries.clear()
        return going

    smsc._handle = handle_then_deliver


def wait_until(condition, what: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def sent_over_smpp(smsc, make_settings, tmp_path):
    """The weekly deals sent, the SMS over SMPP: ``(app, engine, {external id: (message id, provider id)})``."""
    app = create_app(feedback_settings(make_settings, tmp_path, channels={"sms": smsc.url()}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    report = import_customers(engine.db, write_people(tmp_path / "people.csv", people(2)), rejects_dir=tmp_path, progress=False)
    assert report.rejected == 0
    service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    with engine.db.session() as session:
        rows = session.execute(select(Customer.external_id, Message.id, Message.provider_id).join(Customer)
                               .where(Message.channel == "sms", Message.state == "sent"))
        sms = {external_id: (message_id, provider_id) for external_id, message_id, provider_id in rows}
    assert len(sms) == 8 and all(provider_id.startswith("smsc-") for _, provider_id in sms.values())
    yield app, engine, sms
    engine.close()


def events_of(engine, message_id: int) -> list[tuple[str, str | None]]:
    with engine.db.session() as session:
        return [(e.type, e.detail) for e in session.scalars(
            select(ResponseEvent).where(ResponseEvent.message_id == message_id, ResponseEvent.source == "inbound"))]


def suppressed(engine) -> set[tuple[str, str, str]]:
    with engine.db.session() as session:
        return {(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))}


def test_listen_once_records_receipts_and_replies_and_stop_suppresses_the_number(smsc, sent_over_smpp, caplog):
    app, engine, sms = sent_over_smpp
    caplog.set_level(logging.INFO, logger="ccm")
    submitted = len(smsc.submits)
    deliveries = [
        (501, {"esm_class": 0x04, "short_message": receipt(sms["S000"][1], "DELIVRD")}),
        (502, {"esm_class": 0x04, "short_message": receipt(sms["S001"][1], "UNDELIV")}),
        (503, {"esm_class": 0x04, "short_message": receipt("smsc-999", "DELIVRD")}),  # not one of ours
        (504, mo("+14155550002", "Stop")),
        (505, mo("+14155550003", "HELP")),
        (506, mo("+14155550004", "Thanks, see you Saturday")),
    ]
    deliver_on_bind(smsc, "bind_receiver", deliveries)
    result = app.test_cli_runner().invoke(args=["smpp", "listen", "--once", "--idle", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)
    batches = totals.pop("batches")  # as they came: one deliver_sm or several at a time
    assert totals == {"binds": 1, "recorded": 5, "duplicates": 0, "unknown": 1,
                      "by_type": {"delivered": 1, "bounced": 1, "opted_out": 1, "help": 1, "replied": 1}}
    batch_line = re.compile(r"\d+ events: .*; \d+ seen before; \d+ about messages we do not know")
    lines = [line for line in result.stderr.splitlines() if batch_line.fullmatch(line)]
    assert len(lines) == batches and sum(int(line.split()[0]) for line in lines) == 6

    assert events_of(engine, sms["S000"][0]) == [("delivered", "delivered")]
    assert events_of(engine, sms["S001"][0]) == [("bounced", "undelivered error 000")]  # soft: the number is not suppressed
    assert suppressed(engine) == {("sms", "+14155550002", "stop")}
    with engine.db.session() as session:
        replied = session.scalars(select(ResponseEvent).where(ResponseEvent.type == "replied")).one()
        assert replied.message_id == sms["S004"][0] and replied.data["text"] == "Thanks, see you Saturday"

    assert [b["command"] for b in smsc.binds].count("bind_receiver") == 1
    assert sorted(smsc.deliver_resps) == [501, 502, 503, 504, 505, 506]  # every deliver_sm answered
    assert smsc.unbinds >= 1
    assert len(smsc.submits) == submitted + 1  # HELP answered through the sending channel
    assert smsc.received_text() == engine.settings["feedback"]["sms_help_text"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "bound as receiver" in logged and "Pw-1234" not in logged
    for text in (result.output, logged):
        assert PHONE not in text and PHONE[1:] not in text and "Saturday" not in text


def test_a_receipt_sent_again_is_recorded_once(smsc, sent_over_smpp):
    app, engine, sms = sent_over_smpp
    runner = app.test_cli_runner()
    for sequence in (601, 602):  # the SMSC sends it again, e.g. after a link dropped before it had the answer
        again = {"esm_class": 0x04, "short_message": receipt(sms["S005"][1], "DELIVRD")}
        deliver_on_bind(smsc, "bind_receiver", [(sequence, again)])
        result = runner.invoke(args=["smpp", "listen", "--once", "--idle", "0.3"])
        assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 batches, 1 binds: nothing new; 1 seen before; 0 about messages we do not know"
    assert events_of(engine, sms["S005"][0]) == [("delivered", "delivered")]


def test_a_transceiver_url_listens_as_a_transceiver(smsc, make_settings, tmp_path, caplog):
    app = create_app(make_settings(tmp_path, channels={"sms": smsc.url("bind=transceiver")}))
    app.extensions["ccm"].db.upgrade()
    try:
        result = app.test_cli_runner().invoke(args=["smpp", "listen", "--once", "--idle", "0.2"])
    finally:
        app.extensions["ccm"].close()
    assert result.exit_code == 0, result.output
    assert [b["command"] for b in smsc.binds] == ["bind_transceiver"]
    assert "senders should bind as transmitter" in caplog.text


@pytest.mark.parametrize(("sms", "said"), [
    (None, "[channels] sms is a file:// URL"),
    ("sms+http://:T0ken-9@127.0.0.1:9/v1/messages?preset=json&from=ACME", "[channels] sms is a sms+http:// URL"),
])
def test_a_url_that_is_not_smpp_is_an_error_naming_the_setting(make_settings, tmp_path, sms, said):
    app = create_app(make_settings(tmp_path, **({"channels": {"sms": sms}} if sms else {})))
    try:
        result = app.test_cli_runner().invoke(args=["smpp", "listen", "--once"])
    finally:
        app.extensions["ccm"].close()
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {said}: receipts and replies are read from an SMSC, so it must be an smpp:// URL (CCM_CHANNELS__SMS); "
        "other SMS gateways post theirs to /inbound/sms"]
    assert "T0ken-9" not in result.output


def test_once_with_a_refused_bind_is_an_error_without_the_password(smsc, make_settings, tmp_path):
    app = create_app(make_settings(tmp_path, channels={"sms": smsc.url(auth="northwind:wrongPw@")}))
    app.extensions["ccm"].db.upgrade()
    try:
        result = app.test_cli_runner().invoke(args=["smpp", "listen", "--once"])
    finally:
        app.extensions["ccm"].close()
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: cannot bind to the SMSC (smpp://northwind:****@127.0.0.1:{smsc.port}?source=Northwind&bind=receiver&window=10"
        "&enquire_link=30&timeout=2): bind refused: ESME_RINVPASWD (0x0E): Invalid Password")
    assert "wrongPw" not in result.output


def test_a_refused_bind_is_tried_again_with_a_growing_pause_until_it_is_taken(smsc, engine, caplog):
    caplog.set_level(logging.INFO, logger="ccm")
    engine.settings["channels"]["sms"] = smsc.url(auth="northwind:wrongPw@")
    channel = smpp_inbound_channel(engine.settings)
    channel.bind_backoff = 0  # the channel's own pause after a refusal: the listener's is tested here
    stop = threading.Event()
    listener = threading.Thread(target=listen_smpp, args=(engine, channel, stop), kwargs={"backoff": (0.05, 0.2)}, daemon=True)
    listener.start()
    try:
        wait_until(lambda: len(smsc.binds) >= 5, "the listener did not try again")
        smsc.password = "wrongPw"  # the operator fixes the account
        wait_until(lambda: "bound as receiver" in caplog.text, "the listener did not bind")
    finally:
        stop.set()
        listener.join(10)
        channel.close()
    assert not listener.is_alive()
    pauses = [r.args[-1] for r in caplog.records if "cannot bind" in r.getMessage()]
    assert pauses[:5] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert "bind refused: ESME_RINVPASWD (0x0E)" in caplog.text and "wrongPw" not in caplog.text


def test_a_dropped_link_is_bound_again_and_sigterm_stops_after_the_batch(smsc, sent_over_smpp, tmp_path):
    app, engine, sms = sent_over_smpp
    settings = engine.settings
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCM_")}
    env.update(CCM_DATABASE_URL=settings["ccm"]["database_url"], CCM_VAR_DIR=settings["ccm"]["var_dir"],
               CCM_TEMPLATES_DIR=settings["ccm"]["templates_dir"], CCM_CHANNELS__EMAIL=settings["channels"]["email"],
               CCM_CHANNELS__SMS=settings["channels"]["sms"], CCM_CHANNELS__PRINT=settings["channels"]["print"])
    ccm = Path(sys.executable).parent / "ccm"
    listener = subprocess.Popen([str(ccm), "smpp", "listen"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        receivers = lambda: [b for b in smsc.binds if b["command"] == "bind_receiver"]  # noqa: E731
        wait_until(lambda: len(receivers()) == 1, "the listener did not bind")
        smsc.deliver(701, esm_class=0x04, short_message=receipt(sms["S006"][1], "DELIVRD"))
        wait_until(lambda: 701 in smsc.deliver_resps, "the receipt was not answered")
        smsc.connections[-1].shutdown(2)  # the SMSC drops the link
        wait_until(lambda: len(receivers()) == 2, "the listener did not bind again")
        smsc.deliver(702, **mo("+14155550007", "STOP"))
        wait_until(lambda: 702 in smsc.deliver_resps, "the reply was not answered")
        time.sleep(0.2)  # recorded by now; SIGTERM would let the batch finish anyway
        listener.send_signal(signal.SIGTERM)
        stdout, stderr = listener.communicate(timeout=20)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate()
    assert listener.returncode == 0, stderr
    assert stdout.strip() == "2 batches, 2 binds: 1 delivered, 1 opted_out; 0 seen before; 0 about messages we do not know"
    assert "link lost (SMSC closed the connection); binding again in 1 s" in stderr
    assert "bound as receiver again" in stderr
    assert [line for line in stderr.splitlines() if " events: " in line] == [
        "1 events: 1 delivered; 0 seen before; 0 about messages we do not know",
        "1 events: 1 opted_out; 0 seen before; 0 about messages we do not know"]
    assert PHONE not in stderr + stdout and PHONE[1:] not in stderr + stdout and "Pw-1234" not in stderr
    assert smsc.unbinds >= 1  # unbound on the way out
    assert events_of(engine, sms["S006"][0]) == [("delivered", "delivered")]
    assert ("sms", "+14155550007", "stop") in suppressed(engine)

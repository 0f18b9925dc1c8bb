"""On-demand communications: one statement, letter or confirmation made for one customer
now, archived and recorded as a message of the day's on-demand run, sent once per key."""
from __future__ import annotations

import email
import email.policy
import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from ccm.models import ArchivedDocument, Message, Run
from ccm.runs import OnDemandConflict, OnDemandError, archive_root, on_demand, report, reprint


@pytest.fixture
def server(smtp_server):
    return smtp_server()


@pytest.fixture
def settings(make_settings, tmp_path, server):
    return make_settings(tmp_path, channels={"email": server.url()})


def test_a_duplicate_statement_is_sent_once_per_key_archived_and_reprintable(loaded, server):
    sent = on_demand(loaded, "statement", "C-EMAIL", actor="desk", send=True, key="call-1", fingerprint="a")
    assert (sent.state, sent.channel, sent.duplicate, sent.archived) == ("sent", "email", False, True)
    again = on_demand(loaded, "statement", "C-EMAIL", actor="desk", send=True, key="call-1", fingerprint="a")
    assert again.duplicate and again.message_id == sent.message_id
    assert len(server.handler.messages) == 1  # the retry sent nothing
    with pytest.raises(OnDemandConflict):
        on_demand(loaded, "statement", "C-EMAIL", actor="desk", send=True, key="call-1", fingerprint="b")
    with pytest.raises(OnDemandConflict):
        on_demand(loaded, "statement", "C-PRINT", actor="desk", send=True, key="call-1", fingerprint="a")

    mail = email.message_from_bytes(server.handler.messages[0], policy=email.policy.default)
    attached = next(mail.iter_attachments()).get_content()
    with loaded.db.reader() as session:
        entry, data = reprint(session, archive_root(loaded.var_dir), sent.message_id)
        message = session.get(Message, sent.message_id)
        run = session.get(Run, message.run_id)
        assert run.cycle.startswith("ondemand-") and message.feed_record.account == "ACC-1"
        assert message.decisions["statement.insert"]["rule"]  # why it got its insert, as in a batch
    assert data == attached == sent.rendered.pdf and entry.account == "ACC-1"
    assert "Statement" in PdfReader(io.BytesIO(data)).pages[0].extract_text()
    books = report(loaded, run.id)
    assert books.complete and books.statements == {"sent": 1} and books.records_in == 1


def test_rendering_only_records_an_archived_message_that_was_not_sent(loaded, server):
    made = on_demand(loaded, "statement", "C-PRINT", actor="desk", form="pdf")
    assert (made.state, made.channel, made.archived) == ("suppressed", "print", True)
    assert made.rendered.pdf.startswith(b"%PDF") and made.rendered.pages >= 1
    assert not list((loaded.var_dir / "print").glob("run*")) if (loaded.var_dir / "print").exists() else True
    with loaded.db.reader() as session:
        assert session.scalar(select(ArchivedDocument.sha256).where(ArchivedDocument.message_id == made.message_id))
    html = on_demand(loaded, "statement", "C-PRINT", actor="desk", form="html")
    assert html.rendered.subject and "<html" in html.rendered.html.lower() and html.rendered.text
    sms = on_demand(loaded, "statement", "C-PRINT", actor="desk", form="sms")
    assert sms.rendered.sms and sms.channel == "sms"
    assert len(server.handler.messages) == 0


def test_what_cannot_be_made_is_refused_with_the_reason(loaded, server):
    with pytest.raises(LookupError, match="no such customer"):
        on_demand(loaded, "statement", "NOBODY", actor="desk")
    with pytest.raises(LookupError, match="no such communication"):
        on_demand(loaded, "nothing-like-it", "C-EMAIL", actor="desk")
    with pytest.raises(OnDemandError, match="no statement for 1999-01"):
        on_demand(loaded, "statement", "C-EMAIL", actor="desk", period="1999-01")
    with pytest.raises(OnDemandError, match="has no pdf form"):
        on_demand(loaded, "payment-received", "C-EMAIL", actor="desk", form="pdf")
    nowhere = on_demand(loaded, "statement", "C-NOWHERE", actor="desk", send=True)
    assert nowhere.state == "suppressed" and nowhere.rendered is None and nowhere.reason


def test_marketing_asked_for_in_quiet_hours_waits_and_service_goes_at_once(loaded, server):
    """3 a.m. in Chicago: the weekly offer waits for the morning; the duplicate statement asked
    for now goes now."""
    import datetime as dt

    import time_machine

    loaded.settings["delivery"]["quiet_hours"] = "21:00-08:00"  # the default (tests run without)
    with time_machine.travel(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone.utc), tick=True):
        offer = on_demand(loaded, "deals", "C-PRINT", actor="desk", send=True, key="offer-1")
        statement = on_demand(loaded, "statement", "C-PRINT", actor="desk", send=True, key="dup-1")
    assert offer.state == "deferred" and offer.reason.startswith("quiet hours") and offer.rendered is None, offer
    assert (statement.state, statement.channel) == ("sent", "print")  # Bob has paper statements
    with loaded.db.reader() as session:
        waiting = session.get(Message, offer.message_id)
        assert waiting.next_attempt_at == dt.datetime(2026, 12, 7, 14, 0)  # 08:00 in Chicago
        assert session.get(Run, waiting.run_id).state == "waiting"  # the sweeper sends it then
    assert server.handler.messages == []  # the offer was not e-mailed at 3 a.m.


def test_on_demand_sends_count_against_the_channels_limits(loaded, server):
    loaded.settings["limits"]["email"] = "1/day"  # shared with the batch workers
    first = on_demand(loaded, "statement", "C-EMAIL", actor="desk", send=True, key="dup-1")
    second = on_demand(loaded, "statement", "C-EMAIL", actor="desk", send=True, key="dup-2")
    assert first.state == "sent" and (second.state, second.reason) == ("deferred", "email rate limit reached")
    assert len(server.handler.messages) == 1

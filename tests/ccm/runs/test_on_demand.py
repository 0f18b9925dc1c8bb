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

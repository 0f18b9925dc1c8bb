"""Delivery receipts count: where a channel's provider sends them, "delivered" is what a
receipt confirmed, and a failed receipt is a bounce. A hard bounce that arrives later (a
DSN in the bounce maildir, a bounce callback) sends a statement by post: one fallback
message per bounced message, sent by the next ``ccm runs resume``."""
from __future__ import annotations

import email
import email.policy
import json
import mailbox

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app import create_app
from ccm.feedback.response_report import run_report
from ccm.imports import import_customers, import_feed
from ccm.models import Customer, Message, Run, Suppression
from ccm.runs import service
from ccm.runs.compose import file_id

from .conftest import delivered, dsn, feedback_settings, signed, start_campaign


def _ref(engine, message_id: int) -> str:
    with engine.db.session() as session:
        return file_id(session.get(Message, message_id))


def test_where_a_channel_sends_receipts_delivered_counts_them_and_a_failed_receipt_is_a_bounce(make_settings, tmp_path):
    app, engine, outcome, settings = start_campaign(make_settings, tmp_path, feedback={"receipt_channels": ["sms"]})
    try:
        got = delivered(engine, tmp_path / "var")
        texts = sorted(ext for ext, sent in got.items() if sent.channel == "sms")
        mails = sorted(ext for ext, sent in got.items() if sent.channel == "email")
        assert len(texts) == 8  # S000..S007 (BOTH gets e-mail)
        events = [{"id": f"dlr-{ext}", "type": "delivered", "message": _ref(engine, got[ext].message_id)} for ext in texts[:3]]
        events.append({"id": "dlr-soft", "type": "failed", "message": _ref(engine, got[texts[3]].message_id), "status": "expired"})
        events.append({"id": "dlr-hard", "type": "failed", "message": _ref(engine, got[texts[4]].message_id), "permanent": True,
                       "status": "unknown subscriber"})
        answer = app.test_client().post("/inbound/sms", data=(body := signed({"events": events}))[0], headers=body[1]).json
        assert answer == {"recorded": 5, "duplicates": 0, "unknown": 0, "by_type": {"delivered": 3, "bounced": 2}}
        mail_events = [{"id": "dlr-mail", "type": "delivered", "message": got[mails[0]].raw["Message-ID"]},
                       {"id": "bounce-mail", "type": "bounce", "message": got[mails[1]].raw["Message-ID"], "permanent": True}]
        body = signed({"events": mail_events}, "email")
        assert app.test_client().post("/inbound/email", data=body[0], headers=body[1]).json["recorded"] == 2

        with engine.db.reader() as session:
            report = run_report(session, outcome.plan.run_id, settings["costs"], settings["feedback"]["receipt_channels"])
            without_receipts = run_report(session, outcome.plan.run_id, settings["costs"])
            suppressed = {(s.channel, s.reason) for s in session.scalars(select(Suppression))}
        sms, email = report.by["channel"]["sms"], report.by["channel"]["email"]
        assert (sms.sent, sms.delivered, sms.bounced) == (8, 3, 2)  # only what a receipt confirmed; both failures bounced
        assert (email.sent, email.delivered, email.bounced) == (len(mails), len(mails) - 1, 1)  # no receipts: sent minus bounces
        assert report.total.delivered == 3 + len(mails) - 1
        assert without_receipts.by["channel"]["sms"].delivered == 8 - 2  # counted like e-mail when receipts are not expected
        assert suppressed == {("sms", "hard_bounce"), ("email", "hard_bounce")}  # the soft failure suppresses nothing
        result = app.test_cli_runner().invoke(args=["report", "run", str(outcome.plan.run_id), "--json"])
        assert json.loads(result.output)["by"]["channel"]["sms"]["delivered"] == 3  # the command reads the setting
    finally:
        engine.close()


def test_an_unknown_receipt_channel_is_a_settings_error():
    from ccm.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="feedback.receipt_channels: no such channel 'fax'"):
        load_settings({"feedback": {"receipt_channels": ["sms", "fax"]}}, environ={})


@pytest.fixture
def statements(make_settings, tmp_path, customers_file, feed_file):
    """The six test customers' statements sent, with signed callbacks on."""
    app = create_app(feedback_settings(make_settings, tmp_path))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    import_customers(engine.db, customers_file, rejects_dir=tmp_path / "rejects", progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path / "rejects", progress=False)
    cycle = service.run_cycle(engine, "statement", "2026-11", progress=False)
    yield app, engine, cycle
    engine.close()


def test_a_statement_e_mail_bounced_later_goes_by_post_after_resume(statements, tmp_path):
    app, engine, cycle = statements
    runner = app.test_cli_runner()
    run_id = cycle.plan.run_id
    with engine.db.session() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == "C-EMAIL"))
        original = session.scalar(select(Message).where(Message.customer_id == customer.id, Message.purpose == "statement"))
        assert (original.channel, original.state) == ("email", "sent")
        original_id, reference = original.id, file_id(original)
    mails = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
             for path in (tmp_path / "var" / "maildir" / "new").iterdir()]
    (message_id,) = [mail["Message-ID"] for mail in mails if reference in mail["Message-ID"]]

    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn(message_id, "5.1.1"))
    read = runner.invoke(args=["feedback", "bounces", str(tmp_path / "bounces"), "--json"])
    assert json.loads(read.output)["by_type"] == {"bounced": 1}, read.output
    # The same bounce reported again by the provider's callback: still one fallback.
    body = signed({"events": [{"id": "b-again", "type": "bounce", "message": message_id, "permanent": True}]}, "email")
    assert app.test_client().post("/inbound/email", data=body[0], headers=body[1]).json["recorded"] == 1

    with engine.db.session() as session:
        run = session.get(Run, run_id)
        fallbacks = list(session.scalars(select(Message).where(Message.purpose == "statement:fallback")))
        assert [(m.channel, m.state, m.customer.external_id) for m in fallbacks] == [("print", "pending", "C-EMAIL")]
        assert fallbacks[0].idempotency_key == session.get(Message, original_id).idempotency_key + ":fallback"
        assert run.state == "waiting" and f"ccm runs resume {run_id}" in run.error
        fallback_id = fallbacks[0].id

    resumed = runner.invoke(args=["runs", "resume", str(run_id), "--json"])
    assert resumed.exit_code == 0, resumed.output
    with engine.db.session() as session:
        original, fallback = session.get(Message, original_id), session.get(Message, fallback_id)
        assert (original.channel, original.state) == ("email", "sent")  # the e-mail went out, and bounced
        assert (fallback.channel, fallback.state) == ("print", "sent") and fallback.pages
        assert session.get(Run, run_id).state == "completed"
        fallback_ref = file_id(fallback)
    (document,) = (tmp_path / "var" / "print").glob(f"*/documents/*-{fallback_ref}.pdf")
    assert len(PdfReader(document).pages) == fallback.pages  # a printed statement, in the print folder
    report = json.loads(runner.invoke(args=["runs", "show", str(run_id), "--json"]).output)
    assert report["balanced"] and report["complete"]  # one statement per record still; the fallback is on top
    assert report["by_channel"]["print"]["sent"] == cycle.report.by_channel["print"]["sent"] + 1

    # A second resume sends nothing again.
    again = runner.invoke(args=["runs", "resume", str(run_id), "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["by_channel"] == report["by_channel"]

"""Checks made again at send time (suppression, consent, quiet hours in the customer's
time zone), the fallback channel and the pause after failures in a row."""
from __future__ import annotations

import csv
import datetime as dt
import json

from sqlalchemy import select, update

from app import create_app
from ccm.imports import import_customers, import_feed
from ccm.models import Communication, Consent, Customer, Message, Suppression, utcnow
from ccm.runs import service
from ccm.delivery_settings import QuietHours
from ccm.runs.plan import plan_run

CYCLE = "2026-11"


def test_a_suppression_or_withdrawn_consent_after_planning_is_honoured_at_send_time(loaded):
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    with loaded.db.session() as session:  # after planning: Alice bounces, Bob withdraws SMS consent
        session.add(Suppression(channel="email", address="alice@example.com", reason="hard_bounce"))
        bob = session.scalar(select(Customer).where(Customer.external_id == "C-PRINT"))
        session.execute(update(Consent).where(Consent.customer_id == bob.id, Consent.channel == "sms").values(granted=False))
    outcome = service.resume(loaded, run_id, progress=False)
    assert outcome.complete
    with loaded.db.session() as session:
        by_key = {m.idempotency_key.split(":", 2)[2]: m for m in session.scalars(select(Message))}
    alice = by_key["ACC-1:statement"]
    assert (alice.channel, alice.state) == ("print", "sent")
    assert alice.reason == "rerouted to print at send time: email suppressed (hard_bounce)"
    reminder = by_key["ACC-2:sms.payment_due"]
    assert (reminder.state, reminder.reason) == ("suppressed", "no sms consent at send time")


def test_quiet_hours_defer_non_critical_sms_in_the_customers_time_zone(loaded, runner):
    loaded.settings["delivery"]["quiet_hours"] = "00:00-23:59"
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    with loaded.db.session() as session:
        session.execute(update(Communication).values(critical=False))
    result = runner.invoke(args=["runs", "resume", str(run_id), "--json"])
    report = json.loads(result.stdout)
    quiet = QuietHours("00:00-23:59")
    with loaded.db.session() as session:
        reminders = list(session.scalars(select(Message).where(Message.channel == "sms")))
        for message in reminders:
            until = quiet.ends(utcnow(), message.customer.timezone)
            if until is None:  # the one minute a day outside the window, in that zone
                continue
            assert message.state == "deferred" and message.reason.startswith("quiet hours 00:00-23:59")
            assert abs((message.next_attempt_at - until).total_seconds()) < 120
    assert report["by_channel"]["email"] == {"sent": 2} and report["by_channel"]["print"] == {"sent": 3}
    if report["by_channel"]["sms"].get("deferred"):
        assert result.exit_code == 5 and report["state"] == "waiting" and not report["complete"]
        assert "deferred" in report["reconciliation"] or report["statements"].get("deferred") is None


def test_quiet_hours_windows_may_wrap_midnight():
    quiet = QuietHours("21:00-08:00")
    # 03:00 UTC is 21:00 in Chicago (CST, UTC-6): quiet until 08:00 local = 14:00 UTC
    assert quiet.ends(dt.datetime(2026, 11, 23, 3, 0), "America/Chicago") == dt.datetime(2026, 11, 23, 14, 0)
    assert quiet.ends(dt.datetime(2026, 11, 23, 2, 59), "America/Chicago") is None
    # 23:30 in Shanghai (UTC+8) is 15:30 UTC: quiet until 08:00 the next morning there
    assert quiet.ends(dt.datetime(2026, 11, 23, 15, 30), "Asia/Shanghai") == dt.datetime(2026, 11, 24, 0, 0)
    assert QuietHours("").ends(dt.datetime(2026, 11, 23, 3, 0), "UTC") is None


def test_a_run_pauses_itself_after_failures_in_a_row(make_settings, tmp_path, smtp_server):
    server = smtp_server()
    # one SMTP session: with several, the sends already in flight when the run pauses still finish
    email = server.url(query="starttls=off&sessions=1")
    app = create_app(make_settings(tmp_path, channels={"email": email}, delivery={"pause_after_errors": 2}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    customers = tmp_path / "c.csv"
    with customers.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "paperless", "consent_email"])
        for i in range(3):
            writer.writerow([f"P-{i}", f"Person {i}", "busy@example.com", "yes", "yes"])
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    feed = tmp_path / "f.jsonl"
    feed.write_text("".join(
        json.dumps({"account": f"P{i}", "customer_id": f"P-{i}", "period": CYCLE, "opening_balance": "0", "closing_balance": "0",
                    "amount_due": "0", "due_date": "2026-12-15", "currency": "USD", "lines": []}) + "\n" for i in range(3)))
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)

    result = app.test_cli_runner().invoke(args=["run", "statement", "--cycle", CYCLE, "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 3 and report["state"] == "paused"
    assert report["by_channel"]["email"] == {"failed": 2, "pending": 1}
    assert report["error"] == "paused after 2 delivery failures in a row; last: 451 4.3.0 try later"
    engine.close()

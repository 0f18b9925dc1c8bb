"""Quiet hours in the customer's own time zone, with the clock set by time-machine: the
statement (critical) goes at any hour, its SMS payment reminder waits for the morning and is
sent by the retry sweeper then, a campaign's e-mail waits too; a communication can mark SMS
critical as well."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from sqlalchemy import select, update

from ccm.models import Communication, Customer, Message, utcnow
from ccm.runs.plan import plan_run
from ccm.scheduling.jobs import retry_sweeper

CYCLE = "2026-11"
UTC = dt.timezone.utc
NIGHT_IN_CHICAGO = dt.datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 22:00 in Chicago (CST), noon in Shanghai
MORNING_IN_CHICAGO = dt.datetime(2026, 11, 24, 14, 0)  # 08:00 CST, the end of the quiet hours there (naive UTC)


@pytest.fixture
def quiet(loaded):
    loaded.settings["delivery"]["quiet_hours"] = "21:00-08:00"
    return loaded


def messages_of(engine, external_id: str) -> dict[str, Message]:
    with engine.db.reader() as session:
        rows = session.scalars(select(Message).join(Customer).where(Customer.external_id == external_id))
        return {message.channel: message for message in rows}


def sms_lines(engine) -> list[dict]:
    path = engine.var_dir / "sms" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_the_statement_goes_at_night_and_its_sms_reminder_waits_for_the_customers_morning(quiet, runner):
    with time_machine.travel(NIGHT_IN_CHICAGO, tick=True) as clock:
        result = runner.invoke(args=["run", "statement", "--cycle", CYCLE, "--json"])
        assert result.exit_code == 5, result.output  # waiting
        report = json.loads(result.stdout)
        assert report["state"] == "waiting"
        assert report["by_channel"]["email"] == {"sent": 2} and report["by_channel"]["print"] == {"sent": 3}
        assert report["by_channel"]["sms"] == {"sent": 1, "deferred": 1}
        assert report["statements"] == {"sent": 5, "suppressed": 1}  # every statement went, at 22:00 local time

        chicago = messages_of(quiet, "C-PRINT")  # paper statement, SMS reminder, in America/Chicago
        assert chicago["print"].state == "sent"
        reminder = chicago["sms"]
        assert reminder.state == "deferred" and reminder.next_attempt_at == MORNING_IN_CHICAGO
        assert reminder.reason == "quiet hours 21:00-08:00 in the customer's time zone"
        assert messages_of(quiet, "C-ZH")["sms"].state == "sent"  # noon in Shanghai
        assert report["error"] == (
            "1 message waits for a later time (1 quiet hours 21:00-08:00 in the customer's time zone), the first until "
            "2026-11-24 14:00 UTC: the scheduler's retry sweeper sends them then, or ccm runs resume 1"
        )
        assert len(sms_lines(quiet)) == 1
        text = runner.invoke(args=["runs", "show", "1"]).output  # the print streams for the post come with the whole run
        assert "for the post: production-run1/ once the run is complete" in text, text
        assert not (quiet.var_dir / "print" / "production-run1").exists()

        clock.move_to(dt.datetime(2026, 11, 24, 13, 59, tzinfo=UTC))
        assert retry_sweeper(quiet, None, utcnow())[1] == "nothing due"
        assert messages_of(quiet, "C-PRINT")["sms"].state == "deferred"

        clock.move_to(MORNING_IN_CHICAGO.replace(tzinfo=UTC) + dt.timedelta(seconds=30))
        assert retry_sweeper(quiet, None, utcnow())[1] == "resumed runs 1"
    after = json.loads(runner.invoke(args=["runs", "show", "1", "--json"]).stdout)
    assert after["state"] == "completed" and after["complete"]
    assert after["by_channel"]["sms"] == {"sent": 2}
    assert "for the post: production-run1/)" in runner.invoke(args=["runs", "show", "1"]).output
    assert (quiet.var_dir / "print" / "production-run1" / "stream-0001.pdf").exists()
    sent = messages_of(quiet, "C-PRINT")["sms"]
    assert sent.state == "sent" and sent.sent_at >= MORNING_IN_CHICAGO
    assert sorted(line["to"] for line in sms_lines(quiet)) == ["+14155550102", "+8613800138000"]  # each once


def test_a_communication_that_marks_sms_critical_sends_its_reminders_at_night_too(quiet, runner):
    with time_machine.travel(NIGHT_IN_CHICAGO, tick=True):
        run_id = plan_run(quiet, "statement", CYCLE).run_id
        with quiet.db.session() as session:
            statement = session.scalar(select(Communication).where(Communication.name == "monthly-statement"))
            statement.config = {**statement.config, "critical_channels": ["sms"]}
        result = runner.invoke(args=["runs", "resume", str(run_id), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["by_channel"]["sms"] == {"sent": 2}


def test_a_bad_critical_channels_entry_is_one_clear_error(quiet, runner):
    run_id = plan_run(quiet, "statement", CYCLE).run_id
    with quiet.db.session() as session:
        session.execute(update(Communication).where(Communication.name == "monthly-statement")
                        .values(config={"critical_channels": "sms"}))
    result = runner.invoke(args=["runs", "resume", str(run_id)])
    assert result.exit_code == 1
    assert result.output == "Error: monthly-statement: critical_channels must be a list of email, sms, print, inbox, webhook, got 'sms'\n"
    assert json.loads(runner.invoke(args=["runs", "show", str(run_id), "--json"]).stdout)["by_channel"]["print"] == {"pending": 3}


def test_a_campaign_e_mail_waits_out_the_quiet_hours(quiet, runner):
    with time_machine.travel(NIGHT_IN_CHICAGO, tick=True):
        result = runner.invoke(args=["run", "deals", "--cycle", "2026-11-24", "--json"])
    assert result.exit_code == 5, result.output
    report = json.loads(result.stdout)
    alice = messages_of(quiet, "C-EMAIL")["email"]  # marketing consent by e-mail, in America/Chicago
    assert alice.state == "deferred" and alice.next_attempt_at == MORNING_IN_CHICAGO
    assert report["by_channel"]["email"].get("sent", 0) == 0 and not (quiet.var_dir / "maildir" / "new").exists()

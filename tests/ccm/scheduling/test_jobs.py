"""What schedules do: schedules as data (checked when saved), each fire time executed once and
recorded, date reminders once per occurrence, triggered sends, frequency caps."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import time_machine
from sqlalchemy import func, select

from ccm.feedback import create_token
from ccm.models import Customer, Message, Run
from ccm.scheduling.jobs import execute_schedule
from ccm.models.scheduling import ScheduleRun
from ccm.scheduling.service import ScheduleError, add_schedule

UTC = dt.timezone.utc


def _add(engine, name, job, **kwargs):
    with engine.db.session() as session:
        return add_schedule(session, name, job, **kwargs).id


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"job": "campaign", "communication": "deals"}, "give either a cron expression"),
    ({"job": "campaign", "communication": "deals", "cron": "0 9 * *"}, "five fields expected"),
    ({"job": "campaign", "communication": "deals", "cron": "0 9 * * 3", "timezone": "Mars/Olympus"}, "not an IANA name"),
    ({"job": "campaign", "communication": "statement", "cron": "0 9 * * 3"}, "is not a campaign"),
    ({"job": "statement", "communication": "deals", "cron": "0 2 1 * *"}, "is a campaign"),
    ({"job": "campaign", "cron": "0 9 * * 3"}, "needs a communication"),
    ({"job": "campaign", "communication": "dels", "cron": "0 9 * * 3"}, "no such communication"),
    ({"job": "campaign", "communication": "deals", "cron": "0 9 * * 3", "options": {"local_time": "9am"}}, "HH:MM"),
    ({"job": "campaign", "communication": "deals", "cron": "0 9 * * 3", "options": {"audience": "nobody"}}, "no such segment"),
    ({"job": "segments-refresh", "cron": "0 9 * * 3", "options": {"local_time": "09:00"}}, "does not apply"),
    ({"job": "reminders", "communication": "deals", "cron": "0 7 * * *"}, "no reminder settings"),
    ({"job": "retry-sweeper", "every_seconds": 0}, "at least 1 second"),
])
def test_a_bad_schedule_is_refused_when_saved(campaign_engine, kwargs, problem):
    with pytest.raises(ScheduleError, match=problem):
        _add(campaign_engine, "s", **kwargs)


def test_a_fire_time_runs_once_and_is_recorded(campaign_engine):
    engine = campaign_engine
    schedule = _add(engine, "deals-weekly", "campaign", communication="deals", cron="0 9 * * 3", timezone="Europe/Berlin")
    fire = dt.datetime(2026, 12, 2, 8, 0)
    first = execute_schedule(engine, schedule, fire, "test:1")
    again = execute_schedule(engine, schedule, fire, "test:2")  # a second scheduler, or the same after a crash
    assert first.state == "completed" and again is None
    with engine.db.session() as session:
        run = session.get(Run, first.run_id)
        assert run.cycle == "20261202T0900" and run.state == "completed"  # the label in the schedule's zone
        assert session.scalar(select(func.count()).select_from(Run)) == 1
        executions = list(session.scalars(select(ScheduleRun)))
    assert [(e.fire_time, e.state, e.holder) for e in executions] == [(fire, "completed", "test:1")]
    assert "sent" in first.summary


def test_a_failing_job_is_recorded_with_its_error(campaign_engine, monkeypatch):
    engine = campaign_engine
    schedule = _add(engine, "statements", "statement", communication="statement", cron="0 2 1 * *")
    done = execute_schedule(engine, schedule, dt.datetime(2026, 12, 1, 2, 0), "test:1")
    assert done.state == "failed" and "no billing data for cycle 2026-11" in done.error  # nothing imported


def test_reminders_go_once_per_customer_and_occurrence(campaign_engine):
    engine = campaign_engine
    with engine.db.session() as session:
        for customer in session.scalars(select(Customer).where(Customer.external_id.in_(["E000", "E001", "E002", "S000"]))):
            customer.attributes = {"contract_end": {"E000": "2027-01-08", "E001": "2027-01-09", "E002": "not a date",
                                                    "S000": "2027-01-08"}[customer.external_id]}
    schedule = _add(engine, "renewals", "reminders", communication="renewal", cron="0 7 * * *", timezone="America/Chicago")
    fire = dt.datetime(2026, 12, 9, 13, 0)  # 07:00 in Chicago on 9 December: contracts ending 8 January
    first = execute_schedule(engine, schedule, fire, "t")
    assert first.state == "completed", first.error
    again = execute_schedule(engine, schedule, fire + dt.timedelta(hours=1), "t")  # run again the same day
    assert again.state == "completed"
    with engine.db.session() as session:
        rows = session.execute(select(Customer.external_id, Message.channel, Message.state, Message.data)
                               .join(Customer).order_by(Customer.external_id)).all()
    assert [(ext, channel, state) for ext, channel, state, _ in rows] == [("E000", "email", "sent"), ("S000", "sms", "sent")]
    assert rows[0][3] == {"reminder": {"date": "2027-01-08", "days": 30}}
    import mailbox

    box = mailbox.Maildir(engine.var_dir / "maildir", create=False)
    (mail,) = list(box)
    assert "January 8, 2027" in mail["Subject"]


def due_today(session, attribute, target, yearly):
    from ccm.runs import due_condition

    return session.scalar(select(func.count()).select_from(Customer).where(due_condition(attribute, target, yearly)))


def test_yearly_dates_come_back_and_29_february_on_28_february(campaign_engine):
    engine = campaign_engine
    with engine.db.session() as session:
        customers = list(session.scalars(select(Customer).where(Customer.external_id.in_(["E000", "E001"]))))
        customers[0].attributes = {"birthday": "1980-02-29"}
        customers[1].attributes = {"birthday": "1975-02-28"}
    with engine.db.session() as session:
        assert due_today(session, "birthday", dt.date(2027, 2, 28), True) == 2  # not a leap year
        assert due_today(session, "birthday", dt.date(2028, 2, 28), True) == 1
        assert due_today(session, "birthday", dt.date(2028, 2, 29), True) == 1
        assert due_today(session, "birthday", dt.date(2028, 2, 29), False) == 0


def test_an_event_sends_its_message_at_once_and_once(campaign_engine):
    from app import create_app

    engine = campaign_engine
    app = create_app(engine.settings)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {create_token(engine, 'billing')}"}
    body = {"id": "pay-77", "type": "payment.received", "customer": "E003", "amount": "49.90", "currency": "USD",
            "data": {"reference": "statement 2026-11"}}
    first = client.post("/api/v1/events", json=body, headers=auth)
    assert first.status_code == 202, first.json
    (made,) = first.json["messages"]
    assert made["communication"] == "payment-received" and made["channel"] == "email" and made["state"] == "pending"
    deadline = time.monotonic() + 20
    while _state(engine, made["message_id"]) != "sent":
        assert time.monotonic() < deadline, _state(engine, made["message_id"])
        time.sleep(0.05)
    again = client.post("/api/v1/events", json=body, headers=auth)
    assert again.status_code == 200 and again.json["duplicate"] and again.json["messages"][0]["message_id"] == made["message_id"]
    import mailbox

    (mail,) = list(mailbox.Maildir(engine.var_dir / "maildir", create=False))
    text = mail.get_payload()[0].get_payload(decode=True).decode()
    assert "$49.90" in text and "statement 2026-11" in text
    no_consent = client.post("/api/v1/events", json={**body, "id": "pay-78", "customer": "NONE"}, headers=auth)
    assert no_consent.json["messages"][0]["state"] == "suppressed"
    unknown = client.post("/api/v1/events", json={**body, "type": "parcel.lost"}, headers=auth)
    assert unknown.status_code == 400 and "payment.received" in unknown.json["error"]


def _state(engine, message_id):
    with engine.db.session() as session:
        return session.get(Message, message_id).state


def test_the_frequency_cap_holds_across_campaigns_and_spares_service_messages(campaign_engine):
    from ccm.runs import service

    engine = campaign_engine
    with time_machine.travel(dt.datetime(2026, 12, 1, 12, tzinfo=UTC), tick=False):
        service.run_cycle(engine, "deals", "w1", progress=False)
    with time_machine.travel(dt.datetime(2026, 12, 3, 12, tzinfo=UTC), tick=False):
        service.run_cycle(engine, "deals", "w2", progress=False)
    with time_machine.travel(dt.datetime(2026, 12, 5, 12, tzinfo=UTC), tick=False):
        third = service.run_cycle(engine, "deals", "w3", progress=False)
    with time_machine.travel(dt.datetime(2026, 12, 9, 12, tzinfo=UTC), tick=False):
        fourth = service.run_cycle(engine, "deals", "w4", progress=False)  # the 1 December message is out of the window
    capped = "frequency cap (2 marketing messages in 7 days)"
    assert third.report.suppressed_reasons.get(capped, 0) >= 50 and third.report.by_channel.get("email", {}).get("sent", 0) == 0
    assert capped not in fourth.report.suppressed_reasons or fourth.report.suppressed_reasons[capped] < 10
    with engine.db.session() as session:
        sent_to_e003 = session.scalar(select(func.count()).select_from(Message).join(Customer)
                                      .where(Customer.external_id == "E003", Message.state == "sent"))
    assert sent_to_e003 == 3  # w1, w2, w4


def test_schedules_from_the_command_line(campaign_engine):
    from app import create_app

    runner = create_app(campaign_engine.settings).test_cli_runner()
    added = runner.invoke(args=["schedules", "add", "deals-weekly", "--job", "campaign", "--communication", "deals",
                                "--cron", "0 9 * * 3", "--timezone", "Europe/Berlin", "--local-time", "09:00"])
    assert added.exit_code == 0, added.output
    assert "next: 2026" in added.output or "next: 20" in added.output
    assert runner.invoke(args=["schedules", "pause", "deals-weekly"]).exit_code == 0
    listed = json.loads(runner.invoke(args=["schedules", "list", "--json"]).output)
    (view,) = listed["schedules"]
    assert view["paused"] and view["next_fire"] is None and view["options"] == {"local_time": "09:00"}
    assert listed["active_scheduler"] is None
    assert runner.invoke(args=["schedules", "resume", "deals-weekly"]).exit_code == 0
    refused = runner.invoke(args=["schedules", "add", "x", "--job", "campaign", "--communication", "deals", "--cron", "61 * * * *"])
    assert refused.exit_code == 1 and "Error: cron '61 * * * *'" in refused.output
    assert runner.invoke(args=["schedules", "remove", "deals-weekly"]).exit_code == 0
    assert runner.invoke(args=["schedules", "history", "deals-weekly"]).exit_code == 1


def test_an_execution_a_stopped_scheduler_left_half_done_is_finished_by_the_next(campaign_engine):
    from ccm.scheduling.jobs import perform, reclaim_interrupted
    from ccm.scheduling.process import take_lease

    engine = campaign_engine
    schedule = _add(engine, "deals-weekly", "campaign", communication="deals", cron="0 9 * * 3")
    with engine.db.session() as session:
        session.add(ScheduleRun(schedule_id=schedule, schedule_name="deals-weekly", fire_time=dt.datetime(2026, 12, 2, 9),
                                state="running", holder="gone:1:aa", lease_until=dt.datetime(2000, 1, 1)))
    assert take_lease(engine, "gone:1:aa", 30) and not take_lease(engine, "next:2:bb", 30)  # one holder at a time
    (execution_id,) = reclaim_interrupted(engine, "next:2:bb")
    assert reclaim_interrupted(engine, "next:2:bb") == []  # now its own
    assert perform(engine, execution_id, "gone:1:aa") is None  # the old holder, should it wake up, no longer holds it
    done = perform(engine, execution_id, "next:2:bb")
    assert done.state == "completed" and done.holder == "next:2:bb" and "sent" in done.summary and done.run_ids == [done.run_id]
    assert execute_schedule(engine, schedule, dt.datetime(2026, 12, 2, 9), "third:3:cc") is None  # that fire time is done


def _executions_of(engine):
    with engine.db.session() as session:
        rows = list(session.scalars(select(ScheduleRun)))
        session.expunge_all()
        return rows


def test_the_frequency_cap_is_checked_again_at_send_time(campaign_engine):
    """Two campaigns planned before either went out (one waits for 09:00 local time): the
    second one's messages meet the cap when they are sent, not when they were planned."""
    from ccm.runs.executor import execute
    from ccm.runs.plan import plan_run

    engine = campaign_engine
    engine.settings["delivery"]["marketing_cap"] = "1/7d"
    with time_machine.travel(dt.datetime(2026, 12, 1, 12, tzinfo=UTC), tick=False):
        first, second = plan_run(engine, "deals", "a"), plan_run(engine, "deals", "b")
        execute(engine, first.run_id, progress=False)
        execute(engine, second.run_id, progress=False)
    with engine.db.session() as session:
        reasons = dict(session.execute(select(Message.reason, func.count()).where(Message.run_id == second.run_id)
                                       .group_by(Message.reason)).all())
        sent_twice = session.scalar(select(func.count()).select_from(
            select(Message.customer_id).where(Message.state == "sent").group_by(Message.customer_id)
            .having(func.count() > 1).subquery()))
    assert reasons.get("frequency cap (1 marketing messages in 7 days) at send time", 0) >= 50 and sent_twice == 0


def test_erasing_a_customer_with_two_triggered_messages_a_day(campaign_engine):
    """Two events on one day for one customer; erasure clears the events' data and ids."""
    from ccm.feedback.erase import erase_customer
    from ccm.models.feedback import ResponseEvent
    from ccm.runs import trigger

    engine = campaign_engine
    with engine.db.session() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "E004"))
    for event_id in ("pay-ACC-4711-Jane", "pay-ACC-4712-Jane"):
        trigger(engine, "payment.received", event_id, customer_id, {"id": event_id, "reference": "ACC-4711 Jane Doe", "data": {}})
    done = erase_customer(engine, "E004")
    assert done.messages == 2
    with engine.db.session() as session:
        messages = list(session.scalars(select(Message).where(Message.customer_id == customer_id)))
        keys = [m.idempotency_key for m in messages]
        assert all(m.data == {} for m in messages) and not any("Jane" in key or "4711" in key for key in keys)
        assert session.scalar(select(func.count()).select_from(ResponseEvent).where(ResponseEvent.customer_id == customer_id)) == 0


def test_an_event_id_of_another_customer_is_refused_and_a_cancelled_days_run_stays_stopped(campaign_engine):
    from app import create_app
    from ccm.runs.service import set_state

    engine = campaign_engine
    client = create_app(engine.settings).test_client()
    auth = {"Authorization": f"bearer {create_token(engine, 'billing')}"}  # the scheme's case does not matter
    body = {"id": "pay-1", "type": "payment.received", "customer": "E005", "amount": "5.00", "currency": "USD"}
    first = client.post("/api/v1/events", json=body, headers=auth)
    assert first.status_code == 202
    clash = client.post("/api/v1/events", json={**body, "customer": "E006"}, headers=auth)
    assert clash.status_code == 409 and clash.json["field"] == "id"
    set_state(engine, first.json["messages"][0]["message_id"] and _run_of(engine, first.json["messages"][0]["message_id"]), "cancelled")
    after = client.post("/api/v1/events", json={**body, "id": "pay-2"}, headers=auth)
    assert after.json["messages"][0]["state"] == "suppressed" and after.json["messages"][0]["reason"] == "run cancelled"
    with engine.db.session() as session:
        assert session.get(Run, _run_of(engine, first.json["messages"][0]["message_id"])).state == "cancelled"


def _run_of(engine, message_id):
    with engine.db.session() as session:
        return session.get(Message, message_id).run_id


def test_the_frequency_a_customer_chose_holds_at_send_time(campaign_engine):
    from ccm.runs.executor import execute
    from ccm.runs.plan import plan_run

    engine = campaign_engine
    with engine.db.session() as session:
        weekly = session.scalar(select(Customer).where(Customer.external_id == "E007"))
        weekly.preferences = {"frequency": "weekly"}
    first, second = plan_run(engine, "deals", "wa"), plan_run(engine, "deals", "wb")  # both planned before either went out
    execute(engine, first.run_id, progress=False)
    execute(engine, second.run_id, progress=False)
    with engine.db.session() as session:
        states = [(m.run_id, m.state, m.reason) for m in session.scalars(
            select(Message).join(Customer).where(Customer.external_id == "E007").order_by(Message.run_id))]
    assert states[0][1] == "sent" and states[1][1:] == ("suppressed", "frequency chosen by the customer (weekly) at send time")


def test_a_waiting_run_can_be_paused_and_cancelled_and_the_sweeper_respects_a_person(campaign_engine):
    from ccm.runs.executor import execute
    from ccm.runs.plan import plan_run
    from ccm.runs.service import set_state
    from ccm.scheduling.jobs import retry_sweeper
    from ccm.runs.local_time import hold_until_local_time

    engine = campaign_engine
    with time_machine.travel(dt.datetime(2026, 12, 1, 20, tzinfo=UTC), tick=False):
        runs = []
        for cycle in ("local-a", "local-b"):
            plan = plan_run(engine, "deals", cycle)
            with engine.db.session() as session:
                hold_until_local_time(session, plan.run_id, "09:00")
            assert execute(engine, plan.run_id, progress=False) == "waiting"
            runs.append(plan.run_id)
        set_state(engine, runs[0], "paused")  # a person stops the first; nobody touches the second
    with time_machine.travel(dt.datetime(2026, 12, 2, 9, 1, tzinfo=UTC), tick=False):
        _, summary = retry_sweeper(engine, None, dt.datetime(2026, 12, 2, 9, 1))
    assert summary == f"resumed runs {runs[1]}"
    with engine.db.session() as session:
        assert session.get(Run, runs[0]).state == "paused" and session.get(Run, runs[1]).state in ("completed", "waiting")
    set_state(engine, runs[0], "cancelled")
    with engine.db.session() as session:
        left = dict(session.execute(select(Message.state, func.count()).where(Message.run_id == runs[0]).group_by(Message.state)).all())
    assert "deferred" not in left and left.get("suppressed", 0) >= 60  # cancelled: nothing waits for ever

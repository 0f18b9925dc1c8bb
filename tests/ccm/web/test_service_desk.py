"""The customer service desk (/console/customers, /console/tasks) through the test client:
finding customers, their profile and timeline, consents changed by phone, resending a
statement, erasure, and the follow-up queue; and who is refused what."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ccm.feedback import collect_tasks, find_customers, handle_events
from ccm.feedback.events import Event, record
from ccm.models import Consent, Customer, Message, Run
from ccm.models.authoring import AuditLog
from ccm.models.staff import FollowUpTask
from ccm.runs import service
from ccm.runs.outbox import set_messages

from shared_population import feedback_settings

from .conftest import PASSWORD


@pytest.fixture
def settings(make_settings, tmp_path):
    return feedback_settings(make_settings, tmp_path)


@pytest.fixture
def desk(loaded, staff):
    """Six customers (tests/ccm/conftest.py), their November statements sent (e-mail, post,
    SMS reminders, one nowhere) and the weekly deals sent once."""
    service.run_cycle(loaded, "statement", "2026-11", progress=False)
    service.run_cycle(loaded, "deals", "2026-11-30", progress=False)
    return loaded


def message_of(engine, external_id: str, communication_kind: str = "statement", channel: str | None = None) -> Message:
    with engine.db.reader() as session:
        query = select(Message).join(Customer).where(Customer.external_id == external_id, Message.purpose == communication_kind)
        if channel:
            query = query.where(Message.channel == channel)
        found = session.scalars(query.order_by(Message.id)).first()
        session.expunge_all()
        return found


def audited(engine, action: str) -> list[AuditLog]:
    with engine.db.reader() as session:
        rows = list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))
        session.expunge_all()
        return rows


def stale(client) -> None:
    """The sign-in is older than [console] fresh_minutes."""
    with client.session_transaction() as session:
        session["fresh_at"] = 0


def confirm(client, csrf: str, back: str) -> None:
    answer = client.post("/console/confirm", data={"password": PASSWORD, "next": back, "csrf_token": csrf})
    assert answer.status_code == 302


# --------------------------------------------------------------------------- finding


@pytest.mark.parametrize("query, expected", [
    ("c-em", {"C-EMAIL"}),  # external id, partly, any case
    ("ALICE", {"C-EMAIL"}),  # name, partly
    ("o'brien", {"C-PRINT"}),
    ("WANG@example", {"C-ZH"}),  # e-mail, partly
    ("(415) 555-0102", {"C-PRINT"}),  # phone in national form
    ("+1 415 555 0102", {"C-PRINT"}),
    ("415.555.0105", {"C-SMSONLY"}),
    ("+86 138 0013 8000", {"C-ZH"}),
    ("nobody-like-this", set()),
])
def test_customers_are_found_by_id_name_email_or_phone(desk, console_as, query, expected):
    client, _ = console_as("service")
    page = client.get("/console/customers", query_string={"q": query}).get_data(as_text=True)
    shown = {ext for ext in ("C-EMAIL", "C-PRINT", "C-ZH", "C-NOCONSENT", "C-NOWHERE", "C-SMSONLY") if f"/console/customers/{ext}\"" in page}
    assert shown == expected


def test_a_search_returns_a_bounded_list(desk):
    assert len(find_customers(desk, "c-")) == 6
    assert len(find_customers(desk, "c-", limit=2)) == 2
    assert find_customers(desk, "   ") == []
    assert find_customers(desk, "%") == find_customers(desk, "") == []


# --------------------------------------------------------------------------- the profile


def test_the_profile_shows_consents_and_one_timeline_of_messages_and_responses(desk, console_as):
    handle_events(desk, "sms", [{"type": "reply", "event_id": "r-1", "from": "(415) 555-0102", "text": "Please <b>call</b> me"}])
    client, _ = console_as("service")
    page = client.get("/console/customers/C-PRINT").get_data(as_text=True)
    assert "import:customers.csv" in page  # how each consent was given
    assert "monthly-statement" in page and "weekly-deals" in page  # the messages
    assert "replied" in page and "Please &lt;b&gt;call&lt;/b&gt; me" in page  # the response, escaped
    assert page.index("replied") < page.index("weekly-deals")  # newest first, interleaved
    archived = message_of(desk, "C-PRINT")
    pdf = client.get(f"/console/customers/C-PRINT/messages/{archived.id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    reminder = message_of(desk, "C-PRINT", "sms.payment_due")
    sms = client.get(f"/console/customers/C-PRINT/messages/{reminder.id}").get_data(as_text=True)
    assert "is due on Dec 15, 2026" in sms and "the SMS file" in sms
    other = client.get(f"/console/customers/C-EMAIL/messages/{archived.id}/pdf")
    assert other.status_code == 404  # a message of another customer


def test_an_email_is_shown_as_sent_in_a_sandboxed_frame_with_its_own_policy(desk, console_as):
    client, _ = console_as("service")
    page = client.get("/console/customers/C-EMAIL").get_data(as_text=True)
    assert "Alice &lt;script&gt;" in page and "<script>alert" not in page
    sent = message_of(desk, "C-EMAIL")
    shown = client.get(f"/console/customers/C-EMAIL/messages/{sent.id}").get_data(as_text=True)
    assert 'sandbox=""' in shown and f"/console/customers/C-EMAIL/messages/{sent.id}/body" in shown
    body = client.get(f"/console/customers/C-EMAIL/messages/{sent.id}/body")
    assert body.status_code == 200 and "<html" in body.get_data(as_text=True).lower()
    policy = body.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert body.headers["X-Frame-Options"] == "SAMEORIGIN"


# --------------------------------------------------------------------------- consents


def test_a_consent_withdrawn_by_phone_is_recorded_audited_and_honoured(desk, console_as):
    client, csrf = console_as("service")
    answer = client.post("/console/customers/C-EMAIL/consent",
                         data={"channel": "email", "purpose": "marketing", "granted": "no", "csrf_token": csrf})
    assert answer.status_code == 302
    with desk.db.reader() as session:
        consent = session.scalar(select(Consent).join(Customer).where(
            Customer.external_id == "C-EMAIL", Consent.channel == "email", Consent.purpose == "marketing"))
        assert (consent.granted, consent.source) == (False, "phone: service")
        assert consent.recorded_at > dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=1)
    [entry] = audited(desk, "consent.change")
    assert (entry.actor, entry.object_name) == ("service", "C-EMAIL")
    assert entry.details == {"channel": "email", "purpose": "marketing", "granted": False}
    assert "phone: service" in client.get("/console/customers/C-EMAIL").get_data(as_text=True)
    service.run_cycle(desk, "deals", "2026-12-07", progress=False)  # the next campaign leaves them out
    with desk.db.reader() as session:
        state, reason = session.execute(select(Message.state, Message.reason).join(Customer).join(Run).where(
            Customer.external_id == "C-EMAIL", Run.cycle == "2026-12-07")).one()
    assert state == "suppressed" and "email consent" in reason


def test_preferences_are_changed_by_phone(desk, console_as):
    client, csrf = console_as("service")
    topics = desk.settings["feedback"]["topics"][:1]
    frequency = desk.settings["feedback"]["frequencies"][-1]
    client.post("/console/customers/C-PRINT/preferences",
                data={"preferred_channel": "email", "topics": topics, "frequency": frequency, "csrf_token": csrf})
    with desk.db.reader() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == "C-PRINT"))
        assert customer.preferences == {"topics": topics, "frequency": frequency}
        assert customer.preferred_channel == "email"
    assert audited(desk, "preferences.change")[0].object_name == "C-PRINT"


def test_a_marketer_may_see_but_not_change_a_consent(desk, console_as):
    client, csrf = console_as("marketer")
    assert client.get("/console/customers/C-EMAIL").status_code == 200
    answer = client.post("/console/customers/C-EMAIL/consent",
                         data={"channel": "email", "purpose": "marketing", "granted": "no", "csrf_token": csrf})
    assert answer.status_code == 403 and "customers:edit" in answer.get_data(as_text=True)
    assert audited(desk, "consent.change") == []


# --------------------------------------------------------------------------- resend and erase


def test_a_resend_needs_a_fresh_sign_in_and_sends_the_statement_again(desk, console_as):
    client, csrf = console_as("service")
    original = message_of(desk, "C-EMAIL")
    url = f"/console/customers/C-EMAIL/messages/{original.id}/resend"
    stale(client)
    answer = client.post(url, data={"csrf_token": csrf}, headers={"Referer": "http://localhost/console/customers/C-EMAIL"})
    assert answer.status_code == 302 and "/console/confirm" in answer.headers["Location"]
    assert message_of(desk, "C-EMAIL", "statement:resend") is None
    confirm(client, csrf, "/console/customers/C-EMAIL")
    assert client.post(url, data={"csrf_token": csrf}).status_code == 302
    again = message_of(desk, "C-EMAIL", "statement:resend")
    assert (again.state, again.channel, again.feed_record_id) == ("sent", "email", original.feed_record_id)
    assert (desk.var_dir / "maildir" / "new" / again.provider_id).exists()
    [entry] = audited(desk, "statement.resend")
    assert entry.object_name == "C-EMAIL" and entry.details["new_message"] == again.id
    page = client.get("/console/customers/C-EMAIL").get_data(as_text=True)
    assert f"/messages/{again.id}/pdf" in page  # archived, in the timeline like any other


def test_erasure_needs_a_fresh_sign_in_and_a_confirmation(desk, console_as):
    client, csrf = console_as("service")
    stale(client)
    answer = client.get("/console/customers/C-PRINT/erase")
    assert answer.status_code == 302 and "/console/confirm" in answer.headers["Location"]
    confirm(client, csrf, "/console/customers/C-PRINT/erase")
    assert "C-PRINT" in client.get("/console/customers/C-PRINT/erase").get_data(as_text=True)
    wrong = client.post("/console/customers/C-PRINT/erase", data={"confirm": "C-EMAIL", "csrf_token": csrf})
    assert wrong.status_code == 400 and find_customers(desk, "C-PRINT")
    done = client.post("/console/customers/C-PRINT/erase", data={"confirm": "C-PRINT", "csrf_token": csrf})
    assert done.status_code == 200 and "removed:" in done.get_data(as_text=True)
    assert find_customers(desk, "C-PRINT") == [] and find_customers(desk, "O'Brien") == []
    [entry] = audited(desk, "customer.erase")
    assert entry.object_name.startswith("erased-")
    assert client.get("/console/customers/C-PRINT").status_code == 404


def test_billing_may_not_erase(desk, console_as):
    client, csrf = console_as("billing")
    assert client.get("/console/customers/C-PRINT/erase").status_code == 403
    assert client.post("/console/customers/C-PRINT/erase", data={"confirm": "C-PRINT", "csrf_token": csrf}).status_code == 403
    assert find_customers(desk, "C-PRINT")


# --------------------------------------------------------------------------- follow-ups


def make_follow_ups(engine) -> None:
    """A reply that is no keyword, a STOP and a HELP (no task), a complaint, a dead statement."""
    handle_events(engine, "sms", [
        {"type": "reply", "event_id": "r-1", "from": "+14155550102", "text": "Why is my bill so high?"},
        {"type": "reply", "event_id": "r-2", "from": "+14155550102", "text": "STOP"},
        {"type": "reply", "event_id": "r-3", "from": "+8613800138000", "text": "help"},
    ])
    deals = message_of(engine, "C-SMSONLY", "campaign")
    with engine.db.session() as session:
        record(session, Event("arf-1", "complained", "dsn", dt.datetime(2026, 12, 1), message_id=deals.id), engine.settings)
        set_messages(session, [{"id": message_of(engine, "C-NOCONSENT").id, "state": "dead", "reason": "print shop refused it"}])


def test_replies_complaints_and_dead_statements_become_tasks_once(desk, console_as):
    make_follow_ups(desk)
    assert collect_tasks(desk) == 3
    assert collect_tasks(desk) == 0
    handle_events(desk, "sms", [{"type": "reply", "event_id": "r-1", "from": "+14155550102", "text": "Why is my bill so high?"}])
    assert collect_tasks(desk) == 0  # the same callback again
    with desk.db.reader() as session:
        tasks = {task.kind: task for task in session.scalars(select(FollowUpTask))}
    assert set(tasks) == {"reply", "complaint", "undelivered"}
    assert "Why is my bill" not in tasks["reply"].summary  # never a message body
    client, _ = console_as("service")
    queue = client.get("/console/tasks").get_data(as_text=True)
    assert all(f"/console/tasks/{task.id}\"" in queue for task in tasks.values())
    dashboard = client.get("/console/").get_data(as_text=True)
    assert "undelivered: 1" in dashboard and "complaint: 1" in dashboard and "reply: 1" in dashboard


def test_a_task_is_assigned_commented_and_closed_with_the_history_at_hand(desk, console_as):
    make_follow_ups(desk)
    collect_tasks(desk)
    with desk.db.reader() as session:
        task_id = session.scalar(select(FollowUpTask.id).where(FollowUpTask.kind == "reply"))
    client, csrf = console_as("service")
    page = client.get(f"/console/tasks/{task_id}").get_data(as_text=True)
    assert "Why is my bill so high?" in page and "monthly-statement" in page  # the customer's history
    client.post(f"/console/tasks/{task_id}/assign", data={"to": "me", "csrf_token": csrf})
    assert f"/console/tasks/{task_id}\"" in client.get("/console/tasks?show=mine").get_data(as_text=True)
    client.post(f"/console/tasks/{task_id}/assign", data={"assignee": "admin-user", "csrf_token": csrf})
    client.post(f"/console/tasks/{task_id}/comment", data={"text": "Called back, explained the <tariff>.", "csrf_token": csrf})
    client.post(f"/console/tasks/{task_id}/close", data={"csrf_token": csrf})
    with desk.db.reader() as session:
        task = session.get(FollowUpTask, task_id)
        assert (task.state, task.assignee, task.closed_by) == ("closed", "admin-user", "service")
        assert [c.text for c in task.comments] == ["Called back, explained the <tariff>."]
    assert [entry.action for entry in audited(desk, "task.assign") + audited(desk, "task.comment") + audited(desk, "task.close")] \
        == ["task.assign", "task.assign", "task.comment", "task.close"]
    page = client.get(f"/console/tasks/{task_id}").get_data(as_text=True)
    assert "Called back, explained the &lt;tariff&gt;." in page
    viewer, csrf = console_as("viewer")
    assert viewer.post(f"/console/tasks/{task_id}/comment", data={"text": "x", "csrf_token": csrf}).status_code == 403

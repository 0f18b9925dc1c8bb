"""The studio's campaigns: a campaign record with a budget, its report over the weekly deals
run with the A/B test of the offer and its hold-out (variants, hold-out, ROI against the
budget), the CSV, the channel-shift report, and the winner sent to the rest once it is
significant (refused before, audited after); viewers may look, not change or send."""
from __future__ import annotations

import csv
import re
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from ccm.decisions import save_decision
from ccm.communications import get_communication
from ccm.feedback import channel_shift, send_winners_due
from ccm.feedback.events import Event, record
from ccm.feedback.on_behalf import change_preferences
from ccm.imports import import_customers
from ccm.models import Customer, Message, Run, utcnow
from ccm.models.authoring import AuditLog
from ccm.runs import service, wait
from shared_population import CAMPAIGN_CYCLE, people, write_people

EXPERIMENT = "weekly-deals-offer"
DEALS = "/console/campaigns/spring-deals"
SPEC = {"rules": [], "default": {"experiment": EXPERIMENT, "holdout": 0.3, "variants": [
    {"name": "saver", "content": "offers/energy_saver.html", "weight": 1},
    {"name": "bundle", "content": "offers/smart_bundle.html", "weight": 1}]}}


def campaign_form(csrf: str, **changes: str) -> dict:
    start = (utcnow().date() - dt.timedelta(days=1)).isoformat()
    form = {"csrf_token": csrf, "name": "spring-deals", "title": "Spring deals", "owner": "marketer",
            "goal": "Sell the smart bundle", "communication": "weekly-deals", "audience": "", "schedule": "",
            "channels": ["email", "sms"], "starts_on": start, "ends_on": "", "budget": "2.00", "currency": "USD",
            "forecast_responses": "20", "forecast_revenue": "500.00"}
    form.update(changes)
    return form


@pytest.fixture
def deals(engine, tmp_path):
    """The weekly deals (hold-out 30 %, so that a small population can give a significant
    result) sent to 70 customers, with opens and clicks of some."""
    import_customers(engine.db, write_people(tmp_path / "people.csv", people(60)), rejects_dir=tmp_path, progress=False)
    with engine.db.session() as session:
        save_decision(session, "weekly-deals", "email.offer", SPEC, author="test", check_contents=False)
    service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    with engine.db.session() as session:
        sent = session.execute(select(Message.id, Message.decisions).where(Message.state == "sent").order_by(Message.id)).all()
        for number, (message_id, _) in enumerate(sent[:12]):
            record(session, Event(f"open-{message_id}", "opened", "track", utcnow(), message_id=message_id), engine.settings)
            if number % 2:
                record(session, Event(f"click-{message_id}", "clicked", "track", utcnow(), message_id=message_id), engine.settings)
    return engine


def convert(engine, variant: str, share: float, amount: str = "25.00") -> int:
    """Conversions (with revenue) by ``share`` of the customers of ``variant`` (or the hold-out)."""
    with engine.db.session() as session:
        rows = session.execute(select(Message.id, Message.customer_id, Message.decisions).order_by(Message.id)).all()
        chosen = [(m, c) for m, c, trace in rows if (trace or {}).get("email.offer", {}).get("variant") == variant]
        for message_id, customer_id in chosen[:round(len(chosen) * share)]:
            record(session, Event(f"buy-{message_id}", "converted", "api", utcnow(), message_id=message_id, customer_id=customer_id,
                                  amount=Decimal(amount), currency="USD"), engine.settings)
        return len(chosen)


def test_a_marketer_creates_a_campaign_and_reads_its_report_against_the_budget(console_as, deals, engine):
    client, csrf = console_as("marketer")
    assert "New campaign" in client.get("/console/campaigns").get_data(as_text=True)
    refused = client.post("/console/campaigns/new", data=campaign_form(csrf, budget="lots"))
    assert refused.status_code == 422 and "budget: an amount" in refused.get_data(as_text=True)
    created = client.post("/console/campaigns/new", data=campaign_form(csrf), follow_redirects=True)
    page = created.get_data(as_text=True)
    assert "Campaign spring-deals created." in page and "Spring deals" in page
    convert(engine, "saver", 0.5)
    page = client.get(DEALS).get_data(as_text=True)
    assert "saver" in page and "bundle" in page and "hold-out (got nothing)" in page
    assert "Lift over hold-out" in page and "of a budget of 2.00" in page
    with engine.db.reader() as session:
        sent = session.scalar(select(Message).where(Message.state == "sent").limit(1))
    assert "Funnel" in page and "(withheld)" in page and "By segment" in page
    assert 'id="roi"' in page and "%" in page.split('id="roi">')[1][:20]  # the ROI on spend is shown
    assert sent is not None
    with engine.db.reader() as session:
        [entry] = session.scalars(select(AuditLog).where(AuditLog.action == "campaign.create"))
    assert (entry.actor, entry.object_name) == ("marketer", "spring-deals")

    download = client.get(f"{DEALS}/report.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    groups = {(row["dimension"], row["group"]) for row in rows}
    assert {("variant", f"{EXPERIMENT}/saver"), ("variant", f"{EXPERIMENT}/holdout"), ("channel", "email")} <= groups
    total = next(row for row in rows if row["dimension"] == "total")
    assert int(total["converted"]) > 0 and Decimal(total["revenue"]) > 0

    changed = client.post(f"{DEALS}/edit", data=campaign_form(csrf, budget="3.50"), follow_redirects=True)
    assert "of a budget of 3.50" in changed.get_data(as_text=True)


def test_the_winner_goes_to_the_rest_only_once_it_is_significant(console_as, deals, engine, tmp_path):
    marketer, csrf = console_as("marketer")
    marketer.post("/console/campaigns/new", data=campaign_form(csrf))
    approver, csrf = console_as("approver")
    convert(engine, "saver", 0.2)
    convert(engine, "bundle", 0.2)
    page = approver.get(DEALS).get_data(as_text=True)
    assert "No significant winner yet." in page and "disabled" in page
    refused = approver.post(f"{DEALS}/winner", data={"csrf_token": csrf, "experiment": EXPERIMENT}, follow_redirects=True)
    assert "The winner was not sent: experiment weekly-deals-offer: no significant winner yet" in refused.get_data(as_text=True)
    with engine.db.reader() as session:
        assert session.scalar(select(Run).where(Run.cycle.like("%-rest"))) is None

    convert(engine, "saver", 0.8)  # four in five who got the saver bought; the bundle and the hold-out hardly
    convert(engine, "holdout", 0.1)  # (a lift over a hold-out that bought nothing is not a number)
    page = approver.get(DEALS).get_data(as_text=True)
    assert "Winner: saver" in page, re.sub(r"\s+", " ", page[page.index("id=\"experiments\""):][:3000])
    # New customers joined since the cycle ran: the rest of the audience.
    import_customers(engine.db, write_people(tmp_path / "more.csv", people(70)), rejects_dir=tmp_path, progress=False)
    sent = approver.post(f"{DEALS}/winner", data={"csrf_token": csrf, "experiment": EXPERIMENT}, follow_redirects=True)
    assert "The winner goes to the rest" in sent.get_data(as_text=True)
    with engine.db.reader() as session:
        rest = session.scalar(select(Run).where(Run.cycle == f"{CAMPAIGN_CYCLE}-rest"))
    assert wait(rest.id, timeout=60)
    with engine.db.reader() as session:
        got = session.execute(select(Customer.external_id, Message.state, Message.decisions).join(Customer)
                              .where(Message.run_id == rest.id)).all()
        [entry] = session.scalars(select(AuditLog).where(AuditLog.action == "campaign.send_winner"))
    newcomers = {f"E{i:03d}" for i in range(60, 70)}
    assert {ext for ext, _, _ in got} == newcomers | {"NONE"}  # only those the cycle did not reach (NONE: no consent, again)
    variants = {ext: trace["email.offer"]["variant"] for ext, state, trace in got if ext != "NONE"}
    assert set(variants.values()) <= {"saver", "holdout"} and "saver" in variants.values()
    assert all(state == "sent" for ext, state, _ in got if variants.get(ext) == "saver")
    assert (entry.actor, entry.object_name, entry.details["experiment"]) == ("approver", "spring-deals", EXPERIMENT)


def test_a_winner_rule_set_in_advance_sends_the_winner_by_itself(console_as, deals, engine, tmp_path):
    marketer, csrf = console_as("marketer")
    marketer.post("/console/campaigns/new", data=campaign_form(csrf))
    rule = {"csrf_token": csrf, "experiment": EXPERIMENT, "hours": "48", "action": "set"}
    assert marketer.post(f"{DEALS}/winner-rule", data=rule).status_code == 403  # the rule sends: it takes campaigns:send
    assert "Send the winner by itself" not in marketer.get(DEALS).get_data(as_text=True)
    approver, csrf = console_as("approver")
    unknown = approver.post(f"{DEALS}/winner-rule", data={**rule, "csrf_token": csrf, "experiment": "no-such-test"},
                            follow_redirects=True)
    assert "have no experiment no-such-test" in unknown.get_data(as_text=True)
    page = approver.post(f"{DEALS}/winner-rule", data={**rule, "csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "sends the winner of weekly-deals-offer to the rest once significant, 48 hours" in page and "Not looked at yet." in page
    import_customers(engine.db, write_people(tmp_path / "more.csv", people(70)), rejects_dir=tmp_path, progress=False)
    convert(engine, "bundle", 0.2)
    convert(engine, "saver", 0.8)
    convert(engine, "holdout", 0.1)
    assert "judges weekly-deals-offer of cycle" in send_winners_due(engine)["spring-deals"]  # significant, but too soon
    with engine.db.reader() as session:
        assert session.scalar(select(Run).where(Run.cycle.like("%-rest"))) is None
    later = utcnow() + dt.timedelta(hours=49)
    outcome = send_winners_due(engine, now=later)["spring-deals"]
    assert outcome.startswith("sent the winner of weekly-deals-offer to the rest: run"), outcome
    assert send_winners_due(engine, now=later) == {}  # once per cycle
    with engine.db.reader() as session:
        rest = session.scalar(select(Run).where(Run.cycle == f"{CAMPAIGN_CYCLE}-rest"))
        [entry] = session.scalars(select(AuditLog).where(AuditLog.action == "campaign.send_winner"))
    assert wait(rest.id, timeout=60)
    assert (entry.actor, entry.details["rule"]) == ("scheduler", "after 48 hours")
    page = approver.get(DEALS).get_data(as_text=True)
    assert "Last look" in page and f"run {rest.id}" in page
    with engine.db.reader() as session:
        got = {ext for ext, in session.execute(select(Customer.external_id).join(Message).where(Message.run_id == rest.id))}
    assert got == {f"E{i:03d}" for i in range(60, 70)} | {"NONE"}


def test_the_scheduler_judges_the_winner_rules(engine):
    from ccm.scheduling.process import WINNERS_JOB, make_scheduler, sync_jobs

    scheduler = make_scheduler(engine)
    sync_jobs(engine, scheduler)
    job = scheduler.get_job(WINNERS_JOB)
    assert job is not None and job.trigger.interval == dt.timedelta(seconds=engine.settings["scheduler"]["winner_check_seconds"])


def test_the_channel_shift_counts_who_left_paper_and_what_it_saves(console_as, deals, engine):
    frequency = engine.settings["feedback"]["frequencies"][0]
    for ext in ("E001", "E002"):
        change_preferences(engine, ext, "service", paperless=True, preferred_channel=None, topics=["offers"], frequency=frequency)
    change_preferences(engine, "E003", "service", paperless=False, preferred_channel=None, topics=["news"], frequency=frequency)
    client, _ = console_as("marketer")
    today = utcnow().date()
    page = client.get(f"/console/campaigns/channel-shift?start={today - dt.timedelta(days=1)}&end={today}").get_data(as_text=True)
    assert 'id="moved">2<' in page
    assert 'id="per-cycle">1.19 USD<' in page  # 2 x (0.60 by post - 0.006 by e-mail)
    # Seen in the statements themselves, however the change came (here: no preference event at all)
    with engine.db.session() as session:
        statement = get_communication(session, "statement")
        ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
        runs = [Run(communication_id=statement.id, cycle=cycle, state="completed") for cycle in ("2026-09", "2026-10")]
        session.add_all(runs)
        session.flush()
        then, now = utcnow() - dt.timedelta(days=40), utcnow()
        for ext, old, new in (("E010", "print", "email"), ("E011", "print", "print"), ("E012", "email", "email"),
                              ("E013", "print", "sms")):
            for run, channel, when in ((runs[0], old, then), (runs[1], new, now)):
                session.add(Message(run_id=run.id, customer_id=ids[ext], channel=channel, purpose="statement", state="sent",
                                    idempotency_key=f"{run.cycle}:{ext}", sent_at=when))
    shift = channel_shift(engine, today - dt.timedelta(days=1), today)
    assert shift.moved == {"email": 3, "sms": 1} and shift.sent_since == 2  # E001, E002 declared; E010, E013 seen
    assert shift.saved == Decimal("0.594") + (Decimal("0.60") - Decimal(engine.settings["costs"]["sms"]))
    earlier = client.get("/console/campaigns/channel-shift?start=2020-01-01&end=2020-01-31").get_data(as_text=True)
    assert 'id="moved">0<' in earlier
    assert client.get("/console/campaigns/channel-shift?start=yesterday").status_code == 422


def test_a_viewer_sees_but_cannot_change_or_send(console_as, deals, engine):
    marketer, marketer_csrf = console_as("marketer")
    marketer.post("/console/campaigns/new", data=campaign_form(marketer_csrf))
    viewer, csrf = console_as("viewer")
    page = viewer.get(DEALS).get_data(as_text=True)
    assert "Spring deals" in page and "Send the winner to the rest" not in page and "/edit" not in page
    assert viewer.get("/console/campaigns/new").status_code == 403
    assert viewer.post("/console/campaigns/new", data=campaign_form(csrf, name="other")).status_code == 403
    assert viewer.post(f"{DEALS}/edit", data=campaign_form(csrf)).status_code == 403
    assert viewer.post(f"{DEALS}/winner", data={"csrf_token": csrf, "experiment": EXPERIMENT}).status_code == 403
    assert marketer.post(f"{DEALS}/winner", data={"csrf_token": marketer_csrf, "experiment": EXPERIMENT}).status_code == 403

"""The scheduler desk: schedules created, edited, paused, resumed and removed from the
console (each audited, errors shown at their field), the cron expression checked as typed,
the calendar of the coming weeks (bounded per schedule), the history with its runs, and
the refusal of those who may only look."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ccm.models.authoring import AuditLog
from ccm.models.scheduling import ScheduleRun
from ccm.scheduling import get_schedule, list_schedules, update_schedule
from ccm.scheduling import service
from ccm.scheduling.service import cron_trigger, fingerprint, fires_between

DEALS = {"name": "weekly-deals", "job": "campaign", "communication": "deals", "cron": "0 9 * * 3", "timezone": "Europe/Berlin"}


def _add(client, csrf, **fields):
    return client.post("/console/schedules/new", data={"csrf_token": csrf, **fields})


def _schedules(engine) -> dict:
    with engine.db.reader() as session:
        return {view.name: view for view in list_schedules(session)}


def _audit(engine, name: str) -> list[AuditLog]:
    with engine.db.reader() as session:
        rows = list(session.scalars(select(AuditLog).where(AuditLog.object_name == name).order_by(AuditLog.id)))
        session.expunge_all()
        return rows


def test_a_schedule_is_created_edited_paused_resumed_and_removed_and_each_change_audited(console_as, engine):
    client, csrf = console_as("scheduler")
    form = client.get("/console/schedules/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form and 'hx-trigger="keyup changed delay:300ms' in form and 'for="cron"' in form
    created = _add(client, csrf, **DEALS)
    assert created.status_code == 302 and created.headers["Location"].endswith("/console/schedules/weekly-deals")
    saved = _schedules(engine)["weekly-deals"]
    assert (saved.job, saved.when, saved.timezone, saved.paused) == ("campaign", "cron 0 9 * * 3", "Europe/Berlin", False)
    page = client.get("/console/schedules/weekly-deals").get_data(as_text=True)
    assert "Next fire times" in page and "CET" in page and "UTC" in page  # its own zone and the viewer's (UTC)

    edited = client.post("/console/schedules/weekly-deals/edit",
                         data={"csrf_token": csrf, "job": "campaign", "communication": saved.communication, "cron": "30 8 * * 1-5",
                               "timezone": "America/Chicago", "local_time": "10:00"})
    assert edited.status_code == 302
    saved = _schedules(engine)["weekly-deals"]
    assert (saved.when, saved.timezone, saved.options) == ("cron 30 8 * * 1-5", "America/Chicago", {"local_time": "10:00"})
    assert "30 8 * * 1-5" in client.get("/console/schedules/weekly-deals/edit").get_data(as_text=True)

    assert client.post("/console/schedules/weekly-deals/pause", data={"csrf_token": csrf}).status_code == 302
    assert _schedules(engine)["weekly-deals"].paused
    assert "none while paused" in client.get("/console/schedules").get_data(as_text=True)
    assert client.post("/console/schedules/weekly-deals/resume", data={"csrf_token": csrf, "back": "list"}).headers["Location"] == "/console/schedules"
    assert not _schedules(engine)["weekly-deals"].paused

    confirm = client.get("/console/schedules/weekly-deals/remove")
    assert confirm.status_code == 200 and "Remove the schedule" in confirm.get_data(as_text=True)
    assert client.post("/console/schedules/weekly-deals/remove", data={"csrf_token": csrf}).status_code == 302
    assert "weekly-deals" not in _schedules(engine)
    assert client.get("/console/schedules/weekly-deals/edit").status_code == 404

    entries = _audit(engine, "weekly-deals")
    assert [e.action for e in entries] == ["schedule.create", "schedule.edit", "schedule.pause", "schedule.resume", "schedule.remove"]
    assert {e.actor for e in entries} == {"scheduler"} and {e.object_type for e in entries} == {"schedule"}
    assert entries[0].details["cron"] == "0 9 * * 3" and entries[0].details["timezone"] == "Europe/Berlin"
    assert entries[1].details == {"cron": "0 9 * * 3 → 30 8 * * 1-5", "timezone": "Europe/Berlin → America/Chicago",
                                  "options": "— → local_time=10:00"}


@pytest.mark.parametrize("fields, field, words", [
    ({"cron": "0 25 * * *"}, "cron", "higher than the maximum"),
    ({"timezone": "Europe/Atlantis"}, "timezone", "not an IANA name"),
    ({"communication": "no-such-thing"}, "communication", "no such communication"),
    ({"job": "segments-refresh"}, "communication", "takes no communication"),
    ({"name": "bad name!"}, "name", "letters, digits"),
    ({"cron": "", "every_seconds": "often"}, "every_seconds", "whole number"),
])
def test_an_error_is_shown_next_to_its_field_and_nothing_is_saved(console_as, engine, fields, field, words):
    client, csrf = console_as("scheduler")
    answer = _add(client, csrf, **{**DEALS, **fields})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', page)
    assert error and words in error.group(1), page
    assert f'aria-describedby="{field}-error"' in page or f'{field}-error"' in page
    assert _schedules(engine) == {} and _audit(engine, fields.get("name", "weekly-deals")) == []


def test_an_edit_is_checked_by_the_engine_and_changes_the_scheduler_s_fingerprint(console_as, engine):
    client, csrf = console_as("scheduler")
    _add(client, csrf, **DEALS)
    refused = client.post("/console/schedules/weekly-deals/edit", data={**DEALS, "csrf_token": csrf, "job": "statement"})
    assert refused.status_code == 422 and 'id="communication-error"' in refused.get_data(as_text=True)  # deals is a campaign
    with engine.db.session() as session:
        before = fingerprint(get_schedule(session, "weekly-deals"))
        assert update_schedule(session, "weekly-deals", "campaign", communication="deals", cron="0 9 * * 3",
                               timezone="Europe/Berlin") == {}
        changes = update_schedule(session, "weekly-deals", "campaign", communication="deals", cron="0 10 * * 3", timezone="Europe/Berlin")
        assert changes == {"cron": ["0 9 * * 3", "0 10 * * 3"]}
        assert fingerprint(get_schedule(session, "weekly-deals")) != before  # the running scheduler rebuilds its job
    nothing = client.post("/console/schedules/weekly-deals/edit", data={**DEALS, "cron": "0 10 * * 3", "csrf_token": csrf})
    assert nothing.status_code == 302 and [e.action for e in _audit(engine, "weekly-deals")] == ["schedule.create"]


def test_the_cron_check_shows_the_error_where_it_is(console_as):
    client, csrf = console_as("scheduler")
    answer = client.post("/console/schedules/check", data={"cron": "0 25 * * *", "timezone": "Europe/Berlin"},
                         headers={"HX-Request": "true", "X-CSRFToken": csrf})
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in fragment
    assert "Column 3, the hour:" in fragment and "25" in fragment
    assert "0 25 * * *\n  ^" in fragment  # a caret under the field at fault
    six = client.post("/console/schedules/check", data={"cron": "0 9 * * 3 4"}, headers={"X-CSRFToken": csrf}).get_data(as_text=True)
    assert "Column 11" in six and "five fields expected" in six
    zone = client.post("/console/schedules/check", data={"cron": "0 9 * * *", "timezone": "Mars/Base"}, headers={"X-CSRFToken": csrf})
    assert "not an IANA name" in zone.get_data(as_text=True)


def test_the_cron_check_lists_the_next_five_fire_times_across_a_change_of_clocks(console_as, monkeypatch):
    client, csrf = console_as("scheduler")
    monkeypatch.setattr(service, "utcnow", lambda: dt.datetime(2027, 3, 25, 12))  # clocks go forward on 28 March 2027
    fragment = client.post("/console/schedules/check", data={"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
                           headers={"X-CSRFToken": csrf}).get_data(as_text=True)
    own = re.findall(r'<span class="own-time">([^<]+)</span>', fragment)
    assert own == ["2027-03-26 02:30 CET", "2027-03-27 02:30 CET", "2027-03-28 03:30 CEST",  # 02:30 does not happen that day
                   "2027-03-29 02:30 CEST", "2027-03-30 02:30 CEST"]
    viewer = re.findall(r'<span class="viewer-time muted">your time ([^<]+)</span>', fragment)
    assert viewer == ["2027-03-26 01:30 UTC", "2027-03-27 01:30 UTC", "2027-03-28 01:30 UTC", "2027-03-29 00:30 UTC",
                      "2027-03-30 00:30 UTC"]


def test_the_calendar_shows_the_coming_weeks_bounded_per_schedule(console_as, engine):
    client, csrf = console_as("scheduler")
    assert _add(client, csrf, **{**DEALS, "name": "daily", "cron": "0 9 * * *"}).status_code == 302
    assert _add(client, csrf, name="busy", job="segments-refresh", cron="* * * * *", timezone="UTC").status_code == 302
    assert _add(client, csrf, name="sweep", job="retry-sweeper", every_seconds="600", timezone="UTC").status_code == 302
    assert _add(client, csrf, name="resting", job="segments-refresh", cron="0 3 * * *", timezone="UTC").status_code == 302
    client.post("/console/schedules/resting/pause", data={"csrf_token": csrf})
    page = client.get("/console/schedules/calendar").get_data(as_text=True)
    days = re.findall(r'<section class="day[^"]*" aria-labelledby="day-(\d{4}-\d\d-\d\d)"', page)
    assert len(days) == 35 and dt.date.fromisoformat(days[0]).weekday() == 0  # this week from Monday, and four more
    daily = page.count('href="/console/schedules/daily"')
    assert 28 <= daily <= 36  # once a day from now to the end of the fourth week after this one
    assert page.count('href="/console/schedules/busy"') == 40 + 1  # the first 40, and the line that says how many more
    more = re.search(r'busy</a>: the first 40 shown, and (\d+) more in these weeks', page)
    assert more and int(more.group(1)) > 28 * 24 * 60 - 40
    assert re.search(r'sweep</a>: the first 40 shown, and \d+ more', page)
    assert "Paused, so not in the calendar:" in page and 'href="/console/schedules/resting"' in page
    assert page.count("CET") >= daily  # the daily schedule's own time, beside the viewer's (UTC)
    longer = client.get("/console/schedules/calendar?weeks=8&from=2027-01-06").get_data(as_text=True)
    assert len(re.findall(r'<section class="day', longer)) == 56 and 'aria-labelledby="day-2027-01-04"' in longer


def test_counting_fire_times_without_listing_them_matches_listing_them():
    for zone in ("Europe/Berlin", "America/Chicago", "UTC"):
        for expression in ("* * * * *", "*/7 1-3 * * *", "30 2 * * *", "0 9 1 * 1", "15,45 */2 1-10 * mon-fri"):
            trigger = cron_trigger(expression, ZoneInfo(zone))
            start = dt.datetime(2027, 10, 20, 5, 17, tzinfo=dt.timezone.utc)  # clocks go back in the window
            end = start + dt.timedelta(days=33)
            shown, more = fires_between(trigger, start, end, 10, expression)
            listed, moment = 0, trigger.get_next_fire_time(None, start)
            while moment < end:
                listed, moment = listed + 1, trigger.get_next_fire_time(moment, moment)
            assert len(shown) + more == listed, (zone, expression)


def test_the_history_shows_each_outcome_and_links_to_its_runs(console_as, engine):
    client, csrf = console_as("scheduler")
    _add(client, csrf, **DEALS)
    with engine.db.session() as session:
        schedule_id = get_schedule(session, "weekly-deals").id
        due = dt.datetime(2026, 12, 2, 8)
        for days, state, extra in [(0, "completed", {"run_id": 7, "run_ids": [7], "summary": "planned 60 messages"}),
                                   (7, "failed", {"error": "template deals has no approved version"}),
                                   (14, "missed", {"summary": "due more than the grace ago"}),
                                   (21, "coalesced", {}), (28, "skipped", {})]:
            session.add(ScheduleRun(schedule_id=schedule_id, schedule_name="weekly-deals", fire_time=due - dt.timedelta(days=days),
                                    started_at=due - dt.timedelta(days=days), finished_at=due - dt.timedelta(days=days), state=state,
                                    holder="test:1:aa", **extra))
    page = client.get("/console/schedules/weekly-deals").get_data(as_text=True)
    assert 'href="/console/runs/7"' in page and "planned 60 messages" in page
    assert "template deals has no approved version" in page
    for state in ("completed", "failed", "missed", "coalesced", "skipped"):
        assert f'<span class="state {state}">{state}</span>' in page
    assert 'href="/console/runs/7"' in client.get("/console/schedules").get_data(as_text=True)  # the last execution, in the list
    client.post("/console/schedules/weekly-deals/remove", data={"csrf_token": csrf})
    kept = client.get("/console/schedules/weekly-deals")
    assert kept.status_code == 200 and "was removed" in kept.get_data(as_text=True) and "/console/runs/7" in kept.get_data(as_text=True)
    assert client.get("/console/schedules/never-was").status_code == 404
    assert client.get("/console/schedules/ccm-retry-sweeper").status_code == 200


def test_those_who_may_only_look_are_refused_every_change(console_as, engine):
    scheduler, csrf = console_as("scheduler")
    _add(scheduler, csrf, **DEALS)
    client, csrf = console_as("marketer")
    for path in ("/console/schedules", "/console/schedules/calendar", "/console/schedules/weekly-deals"):
        assert client.get(path).status_code == 200, path
    page = client.get("/console/schedules").get_data(as_text=True)
    assert "New schedule" not in page and "/pause" not in page
    for path in ("/console/schedules/new", "/console/schedules/weekly-deals/edit", "/console/schedules/weekly-deals/remove"):
        refused = client.get(path)
        assert refused.status_code == 403 and "schedules:edit" in refused.get_data(as_text=True), path
    for path in ("/console/schedules/new", "/console/schedules/weekly-deals/edit", "/console/schedules/weekly-deals/pause",
                 "/console/schedules/weekly-deals/resume", "/console/schedules/weekly-deals/remove"):
        assert client.post(path, data={**DEALS, "csrf_token": csrf}).status_code == 403, path
    assert not _schedules(engine)["weekly-deals"].paused and [e.action for e in _audit(engine, "weekly-deals")] == ["schedule.create"]
    assert console_as("service")[0].get("/console/schedules").status_code == 403  # no schedules:view at all

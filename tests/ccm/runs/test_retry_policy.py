"""Retries of transient failures: exponential backoff with equal jitter, capped, then dead
after ``[ccm] max_attempts``; driven against a real aiosmtpd server that answers 451, with
the clock moved past each ``next_attempt_at`` by time-machine instead of sleeping."""
from __future__ import annotations

import csv
import datetime as dt
import json
import random

import pytest
import time_machine
from sqlalchemy import select

from app import create_app
from ccm.imports import import_customers, import_feed
from ccm.models import Message, utcnow
from ccm.runs.retry import RetryPolicy
from ccm.settings import SettingsError, load_settings

CYCLE = "2026-11"


def test_the_backoff_doubles_from_the_base_up_to_the_cap():
    policy = RetryPolicy(base_seconds=30, cap_seconds=3600, max_attempts=9)
    assert [policy.ceiling(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert not policy.gives_up(8) and policy.gives_up(9)


def test_the_jitter_stays_between_half_the_ceiling_and_the_ceiling():
    policy = RetryPolicy(base_seconds=30, cap_seconds=3600, max_attempts=5)
    rng = random.Random(4)
    for attempt in (1, 2, 3, 7, 8, 12):
        ceiling = policy.ceiling(attempt)
        waits = [policy.backoff(attempt, rng).total_seconds() for _ in range(300)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), attempt
        # jittered across the whole upper half, not one fixed value
        assert min(waits) < ceiling * 0.55 and max(waits) > ceiling * 0.95 and len(set(waits)) == len(waits)


def test_a_wait_the_provider_asks_for_is_kept_up_to_the_cap():
    policy = RetryPolicy(base_seconds=30, cap_seconds=3600, max_attempts=5)
    rng = random.Random(7)
    assert policy.backoff(1, rng, asked=600).total_seconds() == 600  # Retry-After: 600, longer than the backoff
    assert 15 <= policy.backoff(1, rng, asked=2).total_seconds() <= 30  # shorter: the backoff's own
    assert policy.backoff(1, rng, asked=86400).total_seconds() == 3600  # never past the cap


def test_the_retry_policy_is_read_from_the_settings_and_checked():
    settings = load_settings(environ={"CCM_DELIVERY__RETRY_BASE_SECONDS": "5", "CCM_MAX_ATTEMPTS": "3"})
    assert RetryPolicy.from_settings(settings) == RetryPolicy(base_seconds=5, cap_seconds=3600, max_attempts=3)
    with pytest.raises(SettingsError, match="delivery.retry_cap_seconds .10. is shorter than delivery.retry_base_seconds .60."):
        load_settings({"delivery": {"retry_base_seconds": 60, "retry_cap_seconds": 10}}, environ={})
    with pytest.raises(SettingsError, match="ccm.max_attempts: expected a whole number of at least 1, got 0"):
        load_settings({"ccm": {"max_attempts": 0}}, environ={})
    with pytest.raises(SettingsError, match="delivery.retry_base_seconds: expected a whole number"):
        load_settings({"delivery": {"retry_base_seconds": "soon"}}, environ={})
    with pytest.raises(SettingsError, match="unknown key delivery.retry_bse_seconds .did you mean 'retry_base_seconds'"):
        load_settings({"delivery": {"retry_bse_seconds": 5}}, environ={})


def one_busy_customer(engine, folder):
    """A paperless customer whose mailbox the test server always answers with 451."""
    customers = folder / "customers.csv"
    with customers.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "paperless", "consent_email"])
        writer.writerow(["R-1", "Retry Me", "busy@example.com", "yes", "yes"])
    feed = folder / "feed.jsonl"
    feed.write_text(json.dumps({"account": "R1", "customer_id": "R-1", "period": CYCLE, "opening_balance": "0", "closing_balance": "0",
                                "amount_due": "0", "due_date": "2026-12-15", "currency": "USD", "lines": []}) + "\n")
    import_customers(engine.db, customers, rejects_dir=folder, progress=False)
    import_feed(engine.db, feed, rejects_dir=folder, progress=False)


def the_message(engine) -> Message:
    with engine.db.reader() as session:
        return session.scalar(select(Message))


def test_transient_failures_back_off_per_attempt_and_end_dead_after_max_attempts(make_settings, tmp_path, smtp_server):
    server = smtp_server()
    settings = make_settings(
        tmp_path, channels={"email": server.url()}, ccm={"max_attempts": 4},
        delivery={"retry_base_seconds": 30, "retry_cap_seconds": 45, "quiet_hours": ""},
        email={"attach_pdf": False}, archive={"enabled": False},
    )
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    one_busy_customer(engine, tmp_path)
    runner = app.test_cli_runner()
    policy = RetryPolicy.from_settings(engine.settings)

    with time_machine.travel(dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.timezone.utc), tick=True) as clock:
        waits = []
        for attempt in (1, 2, 3):
            before = utcnow()
            args = ["run", "statement", "--cycle", CYCLE, "--json"] if attempt == 1 else ["runs", "resume", "1", "--json"]
            result = runner.invoke(args=args)
            after = utcnow()
            assert result.exit_code == 5, result.output  # waiting: a message waits for its retry
            message = the_message(engine)
            assert (message.state, message.attempts, message.reason) == ("failed", attempt, "451 4.3.0 try later")
            ceiling = dt.timedelta(seconds=policy.ceiling(attempt))
            assert before + ceiling / 2 <= message.next_attempt_at <= after + ceiling
            waits.append(ceiling.total_seconds())

            early = runner.invoke(args=["runs", "resume", "1", "--json"])  # before its time: not tried again
            assert early.exit_code == 5 and the_message(engine).attempts == attempt
            clock.move_to(message.next_attempt_at.replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=1))
        assert waits == [30, 45, 45]  # doubled, then held at the cap

        last = runner.invoke(args=["runs", "resume", "1", "--json"])
    assert last.exit_code == 6, last.output  # undelivered: no postal address to fall back to
    report = json.loads(last.stdout)
    message = the_message(engine)
    assert (message.state, message.attempts) == ("dead", 4)
    assert message.reason == "retries exhausted after 4 attempts: 451 4.3.0 try later"
    assert report["by_channel"] == {"email": {"dead": 1}}
    assert report["failure_reasons"] == {"retries exhausted after 4 attempts: 451 4.3.0 try later": 1}
    assert report["state"] == "undelivered"
    assert server.handler.messages == []  # never accepted, never sent by another way
    engine.close()

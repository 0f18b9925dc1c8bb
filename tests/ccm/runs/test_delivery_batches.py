"""Outcomes written in batches and sends pipelined over several SMTP sessions, against a
real aiosmtpd server: a worker killed with SIGKILL mid-run re-sends exactly the messages it
had in flight (sent, outcome not yet written; never more than ``RECORD_BATCH``), with the
same Message-ID; Ctrl-C re-sends nothing; a claim lost meanwhile is never recorded."""
from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ccm.imports import import_customers, import_feed
from ccm.models import Message, Run, utcnow
from ccm.runs import deliver
from ccm.runs.compose import file_id
from ccm.runs.outbox import claim
from ccm.runs.deliver import RECORD_BATCH, Worker
from ccm.runs.plan import plan_run
from documents import make_message_id

CCM = str(Path(sys.executable).with_name("ccm"))
CYCLE = "2026-11"
DOMAIN = "northwind.example"


def cheap_emails(folder: Path, count: int, address: str | None = None) -> tuple[Path, Path]:
    """``count`` paperless customers with an e-mail address (``ok<n>@example.com``, or
    ``address`` for all) and no phone: one e-mail each."""
    customers, feed = folder / "customers.csv", folder / "feed.jsonl"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "email", "paperless", "consent_email"])
        writer.writerows([f"P-{i:04d}", f"Customer {i}", address or f"ok{i}@example.com", "yes", "yes"] for i in range(count))
    with feed.open("w", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(json.dumps({"account": f"PA-{i:04d}", "customer_id": f"P-{i:04d}", "period": CYCLE, "opening_balance": "10.00",
                                 "closing_balance": "22.34", "amount_due": "22.34", "due_date": "2026-12-15", "currency": "USD",
                                 "lines": [{"date": "2026-11-05", "description": "Energy usage", "amount": "12.34"}]}) + "\n")
    return customers, feed


@pytest.fixture
def by_smtp(engine, settings, tmp_path, smtp_server):
    """The engine loaded with ``count`` cheap e-mails, sent by SMTP with 4 sessions."""

    def load(count: int, sessions: int = 4):
        server = smtp_server()
        settings["channels"]["email"] = server.url(query=f"starttls=off&sessions={sessions}")
        settings["email"] = {"attach_pdf": False}
        settings["archive"] = {"enabled": False}
        engine.settings["channels"]["email"] = settings["channels"]["email"]
        engine.settings["email"]["attach_pdf"] = False
        engine.settings["archive"]["enabled"] = False
        customers, feed = cheap_emails(tmp_path, count)
        import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
        import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
        return server

    return load


def received_ids(server) -> Counter:
    return Counter(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for raw in list(server.handler.messages))


def count(engine, state: str) -> int:
    with engine.db.reader() as session:
        return session.scalar(select(func.count()).where(Message.state == state))


def claimed_message_ids(engine) -> set[str]:
    """The Message-IDs (as composed) of the messages still claimed: no outcome written."""
    with engine.db.reader() as session:
        claimed = session.scalars(select(Message).where(Message.state == "claimed"))
        return {make_message_id(m.idempotency_key, DOMAIN, ref=file_id(m)) for m in claimed}


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_a_stopped_pipelined_run_resends_at_most_what_it_had_in_flight(engine, settings, by_smtp, config_file, how):
    total = 400
    server = by_smtp(total)
    config = config_file(settings)
    env = dict(os.environ, CCM_CONFIG=str(config))
    process = subprocess.Popen([CCM, "run", "statement", "--cycle", CYCLE, "--workers", "1"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(server.handler.messages) < 45:  # a moment chosen by the receiver, not by the worker's batches
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not start sending"
        time.sleep(0.002)
    process.send_signal(how)
    process.communicate(timeout=60)
    server.wait_until_idle()  # the stopped run's connection closed: what it sent has arrived

    before = received_ids(server)
    assert max(before.values()) == 1
    assert len(before) < total, "the run must be stopped mid-way for this test to mean anything"
    in_flight = claimed_message_ids(engine) & set(before)  # received, but no outcome written
    assert len(in_flight) <= RECORD_BATCH
    if how == signal.SIGINT:
        assert count(engine, "claimed") == 0 and not in_flight  # drained and recorded before stopping

    resumed = subprocess.run([CCM, "runs", "resume", "1", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["complete"] and report["by_channel"] == {"email": {"sent": total}}
    after = received_ids(server)
    assert len(after) == total  # every statement arrived
    twice = {message_id for message_id, n in after.items() if n > 1}
    assert twice == in_flight  # exactly the messages in flight at the kill, with the same Message-ID
    assert max(after.values()) <= 2


def test_never_more_than_a_record_batch_in_flight_and_outcomes_written_in_batches(engine, by_smtp, monkeypatch):
    total = 90
    server = by_smtp(total)
    in_flight, transactions = [], []
    send, flush = Worker.send, Worker.flush

    def checked_send(self, *args):  # type: ignore[no-untyped-def]
        send(self, *args)
        in_flight.append(len(self.unrecorded) + self.in_flight)

    def counted_flush(self):  # type: ignore[no-untyped-def]
        if self.unrecorded:
            transactions.append(len(self.unrecorded))
        flush(self)

    monkeypatch.setattr(Worker, "send", checked_send)
    monkeypatch.setattr(Worker, "flush", counted_flush)
    run_id = plan_run(engine, "statement", CYCLE).run_id
    stats = Worker(engine, run_id).run()
    assert stats.sent == total == len(server.handler.messages)
    assert count(engine, "sent") == total
    assert len(in_flight) == total and max(in_flight) <= RECORD_BATCH
    assert sum(transactions) == total and len(transactions) <= total // 4  # not one transaction per message


def test_an_outcome_whose_claim_was_taken_over_meanwhile_is_not_recorded(engine, by_smtp, caplog):
    by_smtp(3)
    run_id = plan_run(engine, "statement", CYCLE).run_id
    worker = Worker(engine, run_id)
    worker.identity = "host-a:1"
    ids = claim(engine, run_id, 10, worker.identity)
    for message_id in ids:
        worker.record(message_id, state="sent", attempts=1, provider_id=f"p{message_id}", sent_at=utcnow())
    assert count(engine, "sent") == 0  # noted, not written yet
    with engine.db.session() as session:  # meanwhile the lease of one ran out and another worker took it
        session.execute(update(Message).where(Message.id == ids[1]).values(claimed_by="host-b:2", lease_until=utcnow() + dt.timedelta(seconds=60)))
    worker.flush()
    with engine.db.reader() as session:
        states = dict(session.execute(select(Message.id, Message.state)).all())
        taken = session.get(Message, ids[1])
        assert (taken.claimed_by, taken.provider_id) == ("host-b:2", None)
    assert [states[i] for i in ids] == ["sent", "claimed", "sent"]
    assert f"message {ids[1]}: claim lost before its outcome (sent) was recorded" in caplog.text


def test_a_batch_is_written_when_full_or_when_its_oldest_outcome_waited_long_enough(engine, by_smtp, monkeypatch):
    by_smtp(RECORD_BATCH + 1)
    run_id = plan_run(engine, "statement", CYCLE).run_id
    worker = Worker(engine, run_id)
    ids = claim(engine, run_id, RECORD_BATCH + 1, worker.identity)
    for message_id in ids[:RECORD_BATCH]:
        worker.record(message_id, state="suppressed", reason="test")
    assert count(engine, "suppressed") == RECORD_BATCH and not worker.unrecorded  # full: written at once
    worker.record(ids[-1], state="suppressed", reason="test")
    assert count(engine, "suppressed") == RECORD_BATCH and len(worker.unrecorded) == 1
    worker.flush()
    assert count(engine, "suppressed") == RECORD_BATCH + 1


def test_slow_messages_are_written_before_the_batch_is_full(engine, by_smtp, monkeypatch):
    by_smtp(8, sessions=1)
    transactions = []
    flush, compose = Worker.flush, deliver.Composer.compose

    def counted_flush(self):  # type: ignore[no-untyped-def]
        if self.unrecorded:
            transactions.append(len(self.unrecorded))
        flush(self)

    def slow_compose(self, message):  # type: ignore[no-untyped-def]
        time.sleep(0.03)
        return compose(self, message)

    monkeypatch.setattr(deliver, "RECORD_SECONDS", 0.05)
    monkeypatch.setattr(Worker, "flush", counted_flush)
    monkeypatch.setattr(deliver.Composer, "compose", slow_compose)
    run_id = plan_run(engine, "statement", CYCLE).run_id
    assert Worker(engine, run_id).run().sent == 8
    assert sum(transactions) == 8 and len(transactions) >= 2  # one chunk, yet not one transaction at its end


def test_nothing_of_a_chunk_stays_alive_after_it(engine, by_smtp):
    """Sender threads waiting for the next chunk hold no message of the last one (they
    would survive the chunk's garbage collection and pile up in the oldest generation)."""
    import gc

    by_smtp(30)
    run_id = plan_run(engine, "statement", CYCLE).run_id
    worker = Worker(engine, run_id)
    worker.deliver_chunk(claim(engine, run_id, 30, worker.identity))
    try:
        assert count(engine, "sent") == 30 and worker.senders  # the threads are still there, idle
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, deliver._Sending)]
    finally:
        worker.close_channels()


def test_a_run_with_several_sessions_pauses_itself_after_failures_in_a_row(engine, settings, tmp_path, smtp_server):
    """The pause after failures in a row holds with sends in flight: those finish, the rest
    of the chunk goes back to pending, nothing is lost."""
    server = smtp_server()
    engine.settings["channels"]["email"] = server.url(query="starttls=off&sessions=4")
    engine.settings["delivery"]["pause_after_errors"] = 2
    engine.settings["archive"]["enabled"] = False
    engine.settings["email"]["attach_pdf"] = False
    customers, feed = cheap_emails(tmp_path, 12, address="busy@example.com")  # the server answers 451
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    run_id = plan_run(engine, "statement", CYCLE).run_id
    with engine.db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state="running"))
    worker = Worker(engine, run_id)
    worker.run()
    assert worker.paused_itself
    assert 2 <= count(engine, "failed") <= 2 + 3  # the limit, and at most the other sessions' sends in flight
    assert count(engine, "failed") + count(engine, "pending") == 12 and count(engine, "claimed") == 0
    with engine.db.reader() as session:
        assert session.get(Run, run_id).state == "paused"

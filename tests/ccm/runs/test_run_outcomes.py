"""Every statement reaches its customer and every run tells the truth (issue 12): a
statement whose e-mail gives up for any reason goes by post; each outcome has its own state
and exit code; a run whose process died shows as interrupted and is resumed by the sweeper;
a resume right after ``kill -9`` of a pool run completes in one go."""
from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import func, select, update

from app import create_app
from ccm.imports import import_customers, import_feed
from ccm.models import Message, Run, utcnow
from ccm.runs import gate
from ccm.runs.outbox import process_alive, worker_id
from ccm.scheduling.jobs import retry_sweeper

CCM = str(Path(sys.executable).with_name("ccm"))
CYCLE = "2026-11"
COLUMNS = ["external_id", "name", "email", "address_line1", "city", "postal_code", "country", "paperless", "consent_email"]


def paperless_customers(tmp_path: Path, statement, locals_: list[str]) -> tuple[Path, Path]:
    """Paperless customers with a postal address, one per local part (``ok``, ``busy``:
    always 451, ``drop``: the connection closes during DATA), each at a domain of its own."""
    customers, feed = tmp_path / "customers.csv", tmp_path / "feed.jsonl"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for n, local in enumerate(locals_):
            writer.writerow([f"P-{n:03d}", f"Customer {n}", f"{local}@d{n}.example", f"{n} Main St", "Springfield", "62701", "US", "yes", "yes"])
    feed.write_text("".join(json.dumps(statement(f"P-{n:03d}", f"ACC-{n:03d}", 2)) + "\n" for n in range(len(locals_))))
    return customers, feed


def _received_ids(server) -> Counter:
    return Counter(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for raw in server.handler.messages)


def test_statements_whose_email_gives_up_for_any_reason_go_by_post(make_settings, tmp_path, smtp_server, statement_data):
    server = smtp_server()
    settings = make_settings(
        tmp_path, channels={"email": server.url(query="starttls=off&timeout=5")}, email={"attach_pdf": False},
        ccm={"max_attempts": 3},
        delivery={"retry_base_seconds": 1, "retry_cap_seconds": 1, "wait_seconds": 60, "pause_after_errors": 0},
    )
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    locals_ = ["ok"] * 6 + ["busy"] * 3 + ["drop"] * 3
    customers, feed = paperless_customers(tmp_path, statement_data, locals_)
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)

    result = app.test_cli_runner().invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 0, result.output
    assert "· completed" in result.output
    assert "records in 12, planned 12 = sent 12 + suppressed 0 + dead 0: reconciled" in result.output
    assert "fallback: 6 × email → print: retries exhausted (sent)" in result.output
    report = json.loads(app.test_cli_runner().invoke(args=["runs", "show", "1", "--json"]).stdout)
    assert report["state"] == "completed" and report["by_channel"] == {"email": {"sent": 6}, "print": {"sent": 6}}
    assert report["fallbacks"] == {"email → print: retries exhausted (sent)": 6}
    with engine.db.session() as session:
        rerouted = list(session.scalars(select(Message).where(Message.channel == "print")))
    assert all(m.fallback_from == "email" and m.reason.startswith("rerouted to print: email failed (retries exhausted after 3 attempts")
               for m in rerouted)
    assert len(_received_ids(server)) == 6  # the six good addresses, once each
    engine.close()


def test_only_owed_communications_fall_back_after_retries_run_out():
    customer = SimpleNamespace(address_line1="1 Main St", postal_code="62701", city="Springfield", email="a@b.example", phone=None,
                               has_consent=lambda channel, purpose: True)
    message = SimpleNamespace(channel="email", customer=customer, fallback_from=None)
    statement = SimpleNamespace(kind="statement", config={"fallback": {"email": "print"}})
    campaign = SimpleNamespace(kind="marketing", config={"fallback": {"email": "print"}})
    assert gate.fallback_channel(statement, message, "retries exhausted") == "print"
    assert gate.fallback_channel(campaign, message, "retries exhausted") is None  # not owed: no paper for a transient e-mail failure
    assert gate.fallback_channel(campaign, message, "permanent failure") == "print"
    chained = SimpleNamespace(kind="statement", config={"fallback": {"sms": "email", "email": "print"}})
    by_sms = SimpleNamespace(channel="email", customer=customer, fallback_from="sms")
    assert gate.fallback_channel(chained, by_sms, "retries exhausted") == "print"
    back = SimpleNamespace(kind="statement", config={"fallback": {"email": "sms", "sms": "email"}})
    assert gate.fallback_channel(back, SimpleNamespace(channel="sms", customer=customer, fallback_from="email"), "permanent failure") is None


def _dead_identity() -> str:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    pid = process.pid
    process.wait()
    return f"{socket.gethostname()}:{pid}:1"


def test_a_run_whose_process_died_is_interrupted_and_the_sweeper_finishes_it(loaded, runner):
    from ccm.runs.plan import plan_run

    run_id = plan_run(loaded, "statement", CYCLE).run_id
    with loaded.db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state="running", owner=worker_id(), heartbeat_at=utcnow()))
    refused = runner.invoke(args=["runs", "resume", str(run_id)])  # this very process is alive: the run is running
    assert refused.exit_code == 1 and f"run {run_id} is running in process" in refused.output

    with loaded.db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(owner=_dead_identity()))
    listing = json.loads(runner.invoke(args=["runs", "list", "--json"]).stdout)
    assert listing[0]["state"] == "interrupted" and "died" in listing[0]["error"]
    assert "interrupted" in runner.invoke(args=["runs", "list"]).output

    resumed, summary = retry_sweeper(loaded, None, utcnow())
    assert resumed == [run_id], summary
    report = json.loads(runner.invoke(args=["runs", "show", str(run_id), "--json"]).stdout)
    assert report["state"] == "completed" and report["complete"]


def test_a_process_is_alive_only_if_it_is_the_same_process_and_not_a_zombie():
    assert process_alive(worker_id()) is True
    assert process_alive(_dead_identity()) is False
    pid, started = worker_id().split(":")[1:]
    assert process_alive(f"{socket.gethostname()}:{pid}:{int(started, 16) + 1:x}") is False  # a reused PID
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while zombie.poll() is None and os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        time.sleep(0.01)
    assert process_alive(f"{socket.gethostname()}:{zombie.pid}") is False  # exited, not reaped yet
    zombie.wait()
    assert process_alive("elsewhere.example:1:1") is None  # another host: only its lease can tell


TRIALS, BULK = 10, 16


def test_a_pool_run_killed_and_resumed_at_once_completes_in_one_resume(make_settings, tmp_path, smtp_server, statement_data, config_file):
    """Ten times: `ccm run` with two worker processes is killed with SIGKILL mid-run and
    `ccm runs resume` starts at once (its workers may not even be dead yet): the resume
    completes the run, every statement arrives, and only messages the server had already
    received before the resume arrive twice."""
    server = smtp_server()
    rng = random.Random(12)
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        settings = make_settings(folder, channels={"email": server.url()}, email={"attach_pdf": False}, ccm={"workers": 2, "chunk_size": 4})
        app = create_app(settings)
        engine = app.extensions["ccm"]
        engine.db.upgrade()
        customers, feed = paperless_customers(folder, statement_data, ["ok"] * BULK)
        import_customers(engine.db, customers, rejects_dir=folder, progress=False)
        import_feed(engine.db, feed, rejects_dir=folder, progress=False)
        env = dict(os.environ, CCM_CONFIG=str(config_file(settings)))
        server.handler.messages.clear()

        process = subprocess.Popen([CCM, "run", "statement", "--cycle", CYCLE], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        at_least = rng.randint(1, BULK // 2)
        deadline = time.monotonic() + 120
        while _count(engine, "sent") < at_least:
            assert process.poll() is None, f"the run ended before it was killed (exit {process.returncode})"
            assert time.monotonic() < deadline, "the run did not start sending"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # not reaped before the resume starts: a zombie, as after a real crash
        before = set(_received_ids(server))
        resumed = subprocess.run([CCM, "runs", "resume", "1", "--json"], env=env, capture_output=True, text=True, timeout=300)
        process.wait()
        assert resumed.returncode == 0, (trial, resumed.stderr)
        report = json.loads(resumed.stdout)
        assert report["state"] == "completed" and report["by_channel"] == {"email": {"sent": BULK}}, trial
        received = _received_ids(server)
        assert len(received) == BULK, trial  # none lost
        twice = {message_id for message_id, n in received.items() if n > 1}
        assert twice <= before and max(received.values()) <= 2, trial  # duplicates: only what the server had already
        engine.close()
        _no_process_left_with(folder / "var" / "ccm.db", trial)


def _no_process_left_with(database: Path, trial: int) -> None:
    """The killed run's workers exit once they gave back their claims: none is left over
    holding the database open (an orphan waiting forever for work from a dead pool)."""
    deadline = time.monotonic() + 30
    while True:
        holders = []
        for fd in Path("/proc").glob("[0-9]*/fd/*"):
            try:
                if fd.resolve() == database.resolve() and int(fd.parts[2]) != os.getpid():
                    holders.append(int(fd.parts[2]))
            except OSError:  # the process or descriptor went away meanwhile
                continue
        if not holders:
            return
        assert time.monotonic() < deadline, (trial, f"processes still hold the database: {sorted(set(holders))}")
        time.sleep(0.2)


def test_a_stop_signal_that_comes_while_the_stop_event_is_busy_does_not_hang():
    """A signal handler runs between two steps of the main thread, maybe while that thread
    holds the stop event's own lock (setting it after a first SIGTERM): the event is set
    all the same, and nothing waits for itself."""
    import threading

    from ccm.runs.periodic import set_on_signal

    event = threading.Event()
    previous = set_on_signal(event, signal.SIGUSR1)
    try:
        with event._cond:  # as inside Event.set or Event.wait
            signal.raise_signal(signal.SIGUSR1)
            assert not event.is_set()
        assert event.wait(10)
    finally:
        signal.signal(signal.SIGUSR1, previous[signal.SIGUSR1])


def _count(engine, state: str) -> int:
    with engine.db.session() as session:
        return session.scalar(select(func.count()).where(Message.state == state)) or 0

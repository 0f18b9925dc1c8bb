"""The statement cycle with the celery executor: two `ccm worker` processes on this
machine's Redis, the database on PostgreSQL (skipped where either is absent)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from ccm.imports import import_customers, import_feed

CCM = str(Path(sys.executable).with_name("ccm"))
BROKER = "redis://127.0.0.1:6379/7"

pytestmark = pytest.mark.postgres


@pytest.fixture
def redis_broker():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"*2\r\n$6\r\nSELECT\r\n$1\r\n7\r\n*1\r\n$7\r\nFLUSHDB\r\n")
            sock.recv(100)
    except OSError:
        pytest.skip("Redis is not available on 127.0.0.1:6379")
    return BROKER


def test_statement_cycle_across_two_celery_workers(make_settings, tmp_path, postgres_url, redis_broker, customers_file, feed_file, config_file):
    settings = make_settings(tmp_path, ccm={"database_url": postgres_url, "broker_url": redis_broker, "chunk_size": 1})
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    import_customers(engine.db, customers_file, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path, progress=False)
    env = dict(os.environ, CCM_CONFIG=str(config_file(settings)))
    workers = [
        subprocess.Popen([CCM, "worker", "--concurrency", "1", "--loglevel", "INFO"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        result = app.test_cli_runner().invoke(args=["run", "statement", "--cycle", "2026-11", "--executor", "celery", "--json"])
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        logs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert result.exit_code == 0, (result.output, logs)
    report = json.loads(result.stdout)
    assert report["complete"]
    assert report["by_channel"] == {"email": {"sent": 2}, "print": {"sent": 3}, "sms": {"sent": 2}, "none": {"suppressed": 1}}
    var = Path(settings["ccm"]["var_dir"])
    assert len(list((var / "maildir" / "new").iterdir())) == 2
    assert len((var / "sms" / "outbox.jsonl").read_text().splitlines()) == 2
    assert sum(log.count("succeeded") for log in logs) >= 7  # one task per message here (chunk_size 1)
    engine.close()


def test_the_celery_executor_needs_a_broker_and_a_shared_database(loaded, runner):
    result = runner.invoke(args=["run", "statement", "--cycle", "2026-11", "--executor", "celery"])
    assert result.exit_code == 1 and "needs a database every worker can reach" in result.output
    assert runner.invoke(args=["runs", "list", "--json"]).stdout.strip() == "[]"  # nothing was planned


def test_a_celery_worker_killed_mid_run_loses_nothing(make_settings, tmp_path, postgres_url, redis_broker, write_bulk, config_file):
    """SIGKILL one of two workers mid-run, at the default settings: its claims are no longer
    renewed and end a lease later (30 s), the producer queues them again, the other worker
    finishes; every message is delivered once (the file channels are idempotent on the
    message id, so even the one in flight arrives once). How long that tail takes is
    measured by ``python -m bench.celery_tail``, not here."""
    import time

    from sqlalchemy import func, select

    from ccm.models import Message

    settings = make_settings(tmp_path, ccm={"database_url": postgres_url, "broker_url": redis_broker, "chunk_size": 1})
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    customers, feed = write_bulk(tmp_path, 20, lines=40)
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    env = dict(os.environ, CCM_CONFIG=str(config_file(settings)))
    workers = [subprocess.Popen([CCM, "worker", "--concurrency", "1"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(2)]
    producer = subprocess.Popen([CCM, "run", "statement", "--cycle", "2026-11", "--executor", "celery", "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with engine.db.session() as session:
                sent = session.scalar(select(func.count()).where(Message.state == "sent"))
            if sent >= 4:
                break
            assert time.monotonic() < deadline and producer.poll() is None, producer.communicate()
            time.sleep(0.05)
        assert sent < 40, "the run must be stopped mid-way for this test to mean anything"
        os.killpg(workers[0].pid, signal.SIGKILL)  # the worker and its pool process, at once
        out, err = producer.communicate(timeout=240)
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            worker.wait(timeout=60)
    assert producer.returncode == 0, err
    report = json.loads(out)
    assert report["complete"] and report["by_channel"] == {"print": {"sent": 20}, "sms": {"sent": 20}}
    var = Path(settings["ccm"]["var_dir"])
    ids = [json.loads(line)["id"] for line in (var / "sms" / "outbox.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 20
    engine.close()

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

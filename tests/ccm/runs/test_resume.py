"""A run killed or interrupted mid-way resumes without duplicates or losses: a real
`ccm` process is killed with SIGKILL and with SIGINT, then `ccm runs resume` finishes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ccm.imports import import_customers, import_feed
from ccm.models import Message
from ccm.runs.compose import file_id
from ccm.runs.deliver import RECORD_BATCH
from documents import make_message_id

CCM = str(Path(sys.executable).with_name("ccm"))
BULK = 14


def _sent(engine) -> int:
    with engine.db.session() as session:
        return session.scalar(select(func.count()).where(Message.state == "sent"))


def _start(config: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, CCM_CONFIG=str(config))
    return subprocess.Popen([CCM, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_sent(engine, process: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while _sent(engine) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not start sending"
        time.sleep(0.02)


def _outcome(engine) -> tuple[int, int]:
    with engine.db.session() as session:
        total = session.scalar(select(func.count()).select_from(Message))
        sent = session.scalar(select(func.count()).where(Message.state == "sent"))
    return total, sent


def _delivered_ids(var: Path) -> Counter:
    import csv

    ids: Counter = Counter()
    for manifest in (var / "print").glob("run*/manifest.csv"):
        with manifest.open(newline="", encoding="utf-8") as fh:
            ids.update(row["message_id"] for row in csv.DictReader(fh))
    sms = var / "sms" / "outbox.jsonl"
    ids.update(json.loads(line)["id"] for line in sms.read_text(encoding="utf-8").splitlines())
    return ids


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_an_interrupted_run_resumes_without_duplicates_or_losses(engine, settings, tmp_path, how, write_bulk, config_file):
    customers, feed = write_bulk(tmp_path, BULK)
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    config = config_file(settings)

    process = _start(config, "run", "statement", "--cycle", "2026-11", "--workers", "1")
    _wait_for_sent(engine, process, 3)
    process.send_signal(how)
    out, err = process.communicate(timeout=60)
    total, sent = _outcome(engine)
    assert total == 2 * BULK and 3 <= sent < total, "the run must be stopped mid-way for this test to mean anything"
    if how == signal.SIGINT:
        assert "ccm runs resume 1" in err
        with engine.db.session() as session:
            assert session.scalar(select(func.count()).where(Message.state == "claimed")) == 0

    resumed = subprocess.run([CCM, "runs", "resume", "1", "--json"], env=dict(os.environ, CCM_CONFIG=str(config)),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["complete"] and report["state"] == "completed"
    assert report["by_channel"] == {"print": {"sent": BULK}, "sms": {"sent": BULK}}
    delivered = _delivered_ids(engine.var_dir)
    assert len(delivered) == 2 * BULK
    assert max(delivered.values()) == 1, [k for k, v in delivered.items() if v > 1]


def test_a_killed_run_resends_at_most_the_messages_in_flight_by_smtp(engine, settings, tmp_path, write_bulk, config_file, smtp_server):
    """Killed with SIGKILL mid-run against a real SMTP server: after resume every customer
    has the e-mail, and only the messages in flight at the kill (received by the server,
    outcome not yet written; at most RECORD_BATCH) arrived twice, with the same Message-ID."""
    import csv as csv_module

    server = smtp_server()
    customers, feed = write_bulk(tmp_path, BULK)
    with customers.open(encoding="utf-8", newline="") as fh:
        rows = list(csv_module.reader(fh))
    header = rows[0]
    for row in rows[1:]:
        row[header.index("paperless")] = "yes"
        row[header.index("email")] = f"ok{row[0]}@example.com"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        csv_module.writer(fh).writerows(rows)
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    settings["channels"]["email"] = server.url()
    config = config_file(settings)

    process = _start(config, "run", "statement", "--cycle", "2026-11", "--workers", "1")
    _wait_for_sent(engine, process, 3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    server.wait_until_idle()  # the killed run's connection closed: what it sent has arrived
    received_before = {_message_id(raw) for raw in server.handler.messages}
    assert len(received_before) < BULK, "the run must be stopped mid-way for this test to mean anything"
    with engine.db.session() as session:
        claimed = session.scalars(select(Message).where(Message.state == "claimed", Message.channel == "email"))
        domain = engine.settings["email"]["message_id_domain"]
        in_flight = {make_message_id(m.idempotency_key, domain, ref=file_id(m)) for m in claimed} & received_before
    assert len(in_flight) <= RECORD_BATCH

    resumed = subprocess.run([CCM, "runs", "resume", "1", "--json"], env=dict(os.environ, CCM_CONFIG=str(config)),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ids = Counter(_message_id(raw) for raw in server.handler.messages)
    assert len(ids) == BULK  # every statement arrived
    assert {message_id for message_id, n in ids.items() if n > 1} == in_flight  # only those, once more each
    assert max(ids.values()) <= 2


def _message_id(raw: bytes) -> str:
    import email as email_module
    import email.policy

    return email_module.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]

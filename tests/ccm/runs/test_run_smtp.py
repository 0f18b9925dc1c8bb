"""The statement cycle by SMTP against a real aiosmtpd server on 127.0.0.1: accepted,
temporarily refused (retried on resume with the same Message-ID) and permanently refused
(the statement falls back to print)."""
from __future__ import annotations

import csv
import email
import email.policy
import json

from app import create_app
from ccm.imports import import_customers, import_feed

COLUMNS = ["external_id", "name", "email", "address_line1", "city", "postal_code", "country", "paperless", "consent_email"]


def write_files(tmp_path, statement):
    customers = tmp_path / "customers.csv"
    with customers.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for ext, local in (("S-OK", "ok"), ("S-BUSY", "busy"), ("S-REJECT", "reject")):
            writer.writerow([ext, f"Customer {local}", f"{local}@example.com", "1 Main St", "Springfield", "62701", "US", "yes", "yes"])
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(json.dumps(statement(ext, f"ACC-{ext}", 2)) + "\n" for ext in ("S-OK", "S-BUSY", "S-REJECT")))
    return customers, feed


def test_smtp_outcomes_are_classified_and_a_transient_failure_is_retried_on_resume(make_settings, tmp_path, smtp_server, statement_data):
    server = smtp_server()
    app = create_app(make_settings(tmp_path, channels={"email": server.url()}, email={"attach_pdf": False}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    customers, feed = write_files(tmp_path, statement_data)
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    runner = app.test_cli_runner()

    first = runner.invoke(args=["run", "statement", "--cycle", "2026-11", "--json"])
    report = json.loads(first.stdout)
    assert report["state"] == "waiting"
    assert report["by_channel"] == {"email": {"sent": 1, "failed": 1}, "print": {"sent": 1}}
    assert first.exit_code == 5  # the run did not finish: a message waits for its retry
    assert report["reconciliation"] == "records in 3, planned 3 = sent 2 + suppressed 0 + dead 0 + failed 1 (retrying): open (1 messages to finish)"
    assert not report["complete"]
    assert [reason[:3] for reason in report["failure_reasons"]] == ["451"]
    with engine.db.session() as session:
        from sqlalchemy import select

        from ccm.models import Message

        bounced = session.scalar(select(Message).where(Message.channel == "print"))
        assert bounced.reason.startswith("rerouted to print: email failed (permanent failure: 550")
        assert "@" not in bounced.reason, "no addresses in reasons"
    assert "smtp://127.0.0.1" in report["outputs"]["email"]
    assert len(server.handler.messages) == 1

    server.handler.busy_accepts = True
    resumed = runner.invoke(args=["runs", "resume", str(report["run_id"]), "--retry-now", "--json"])
    after = json.loads(resumed.stdout)
    assert resumed.exit_code == 0
    assert after["reconciliation"] == "records in 3, planned 3 = sent 3 + suppressed 0 + dead 0: reconciled"
    assert after["by_channel"] == {"email": {"sent": 2}, "print": {"sent": 1}}
    assert after["state"] == "completed"
    received = [email.message_from_bytes(raw, policy=email.policy.default) for raw in server.handler.messages]
    assert sorted(m["To"].addresses[0].username for m in received) == ["busy", "ok"]
    assert len({m["Message-ID"] for m in received}) == 2
    engine.close()

"""The reconciliation: records in = planned = sent + suppressed + dead + failed + deferred +
open, checked at the end of every run; a run whose books do not balance (a message row
deleted, a state forged in SQL) is not completed and says what does not add up."""
from __future__ import annotations

import csv
import json

from sqlalchemy import delete, select, update

from app import create_app
from ccm.imports import import_customers, import_feed
from ccm.models import Customer, Message
from ccm.runs.plan import plan_run

CYCLE = "2026-11"


def show(runner, run_id: int = 1) -> dict:
    return json.loads(runner.invoke(args=["runs", "show", str(run_id), "--json"]).stdout)


def test_a_balanced_run_shows_records_in_planned_and_every_state(loaded, runner):
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 0, result.output
    assert "records in 6, planned 6 = sent 5 + suppressed 1 + dead 0: reconciled" in result.output
    report = show(runner)
    assert (report["records_in"], report["planned"], report["statements"]) == (6, 6, {"sent": 5, "suppressed": 1})
    assert report["problems"] == [] and report["balanced"] and report["complete"] and report["state"] == "completed"


def test_dead_is_called_dead_in_the_text_and_in_json(make_settings, tmp_path, smtp_server):
    server = smtp_server()
    app = create_app(make_settings(tmp_path, channels={"email": server.url()}, email={"attach_pdf": False}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    customers = tmp_path / "c.csv"
    with customers.open("w", newline="") as fh:  # no postal address: a hard bounce has no paper to fall back to
        csv.writer(fh).writerows([["external_id", "name", "email", "paperless", "consent_email"], ["D-1", "Dee", "reject@example.com", "yes", "yes"]])
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    feed = tmp_path / "f.jsonl"
    feed.write_text(json.dumps({"account": "D1", "customer_id": "D-1", "period": CYCLE, "opening_balance": "0", "closing_balance": "0",
                                "amount_due": "0", "due_date": "2026-12-15", "currency": "USD", "lines": []}) + "\n")
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    runner = app.test_cli_runner()

    text = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert text.exit_code == 6, text.output  # completed with an undelivered message: not the exit of a clean run
    assert "· undelivered" in text.output and "1 message undelivered, no channel left (1 × email: permanent failure: 550" in text.output
    assert "email  1 dead" in text.output
    assert "records in 1, planned 1 = sent 0 + suppressed 0 + dead 1: reconciled" in text.output
    (line,) = [line.strip() for line in text.output.splitlines() if line.strip().startswith("dead: ")]
    assert line.startswith("dead: 1 × permanent failure: 550 5.1.1") and "@" not in line
    report = show(runner)
    assert report["statements"] == {"dead": 1} and report["by_channel"] == {"email": {"dead": 1}}
    assert list(report["dead_reasons"]) == [line.split(" × ", 1)[1]] and report["retry_reasons"] == {}
    engine.close()


def test_a_message_row_deleted_before_delivery_keeps_the_run_from_completing(loaded, runner):
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    with loaded.db.session() as session:
        nowhere = session.scalar(select(Customer.id).where(Customer.external_id == "C-NOWHERE"))
        session.execute(delete(Message).where(Message.customer_id == nowhere))

    result = runner.invoke(args=["runs", "resume", str(run_id), "--json"])
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    problem = "records in 6 but planned 5: 1 record has no message (plan the cycle again to add them)"
    assert report["state"] == "failed" and not report["balanced"] and not report["complete"]
    assert report["problems"] == [problem] and report["error"] == f"does not reconcile: {problem}"
    assert report["reconciliation"] == f"records in 6, planned 5 = sent 5 + suppressed 0 + dead 0: NOT BALANCED: {problem}"
    assert f"run {run_id} does not reconcile: {problem}" in result.stderr

    again = runner.invoke(args=["run", "statement", "--cycle", CYCLE, "--json"])  # planning again restores the message
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["state"] == "completed" and show(runner, run_id)["planned"] == 6


def test_states_forged_in_sql_are_found(loaded, runner):
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    with loaded.db.session() as session:  # a statement "sent" that no worker sent, before the run goes
        forged = session.scalar(select(Message.id).where(Message.channel == "print").order_by(Message.id))
        session.execute(update(Message).where(Message.id == forged).values(state="sent"))
    result = runner.invoke(args=["runs", "resume", str(run_id), "--json"])
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    assert report["state"] == "failed"
    assert report["problems"] == ["1 message is marked sent without a send time"]

    with loaded.db.session() as session:  # after the run: a reminder in a state no code writes
        reminder = session.scalar(select(Message.id).where(Message.channel == "sms").order_by(Message.id))
        session.execute(update(Message).where(Message.id == reminder).values(state="lost"))
    report = show(runner, run_id)
    assert report["problems"] == ["1 message is in state 'lost', which the engine never writes",
                                  "1 message is marked sent without a send time"]
    assert report["reconciliation"].startswith("records in 6, planned 6 = sent 5 + suppressed 1 + dead 0: NOT BALANCED: ")

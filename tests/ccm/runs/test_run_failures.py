"""What goes wrong around a run gives one clear line, a defined state and no double sends:
bad channel settings, no schema, an unreachable database, a lost claim, a cancel after a crash."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from app import create_app
from ccm.models import Message, Run, utcnow
from ccm.runs import service
from ccm.runs.outbox import claim
from ccm.runs.deliver import Worker
from ccm.runs.plan import plan_run

CYCLE = "2026-11"


def test_a_bad_channel_url_fails_before_anything_is_planned(loaded, runner):
    loaded.settings["channels"]["sms"] = "https://gateway.example/send"
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "https" in result.output
    with loaded.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_commands_on_a_database_without_schema_or_unreachable_say_so_in_one_line(make_settings, tmp_path):
    settings = make_settings(tmp_path)
    app = create_app(settings)
    database = app.extensions["ccm"].db.file
    for args in (["run", "statement", "--cycle", CYCLE], ["runs", "list"], ["runs", "show", "1"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: no database at {database}: ") and result.output.count("\n") == 1
    assert not database.exists()  # nothing made where the settings point
    app.extensions["ccm"].db.create_file()  # an empty database: no schema
    for args in (["run", "statement", "--cycle", CYCLE], ["runs", "list"], ["runs", "show", "1"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 1
        assert result.output == "Error: the database has no schema yet: run `ccm db upgrade` first\n"
    app.extensions["ccm"].close()

    down = create_app(make_settings(tmp_path, ccm={"database_url": "postgresql+psycopg://nobody:secret@127.0.0.1:1/ccm"}))
    result = down.test_cli_runner().invoke(args=["runs", "list"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "127.0.0.1:1" in result.output and "secret" not in result.output


def test_a_worker_whose_claim_was_taken_over_does_not_send_or_record(loaded):
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    slow, fast = Worker(loaded, run_id), Worker(loaded, run_id)
    slow.identity, fast.identity = "host-a:1", "host-b:2"
    ids = claim(loaded, run_id, 100, slow.identity)
    with loaded.db.session() as session:  # the slow worker's lease runs out...
        session.execute(update(Message).where(Message.id.in_(ids)).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    fast.run()  # ...and another worker delivers everything
    sent = fast.stats.sent
    slow.deliver_chunk(ids)  # the slow worker wakes up: it must notice and send nothing
    assert slow.stats.sent == 0
    with loaded.db.session() as session:
        assert session.scalar(select(func.count()).where(Message.state == "sent")) == sent == 7


def test_cancelling_after_a_crash_suppresses_the_dead_workers_claims(loaded, runner):
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    claim(loaded, run_id, 3, "this-host-is-gone:999999")  # a worker that died (lease still running)
    with loaded.db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state="running"))
        session.execute(update(Message).where(Message.state == "claimed").values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    assert runner.invoke(args=["runs", "cancel", str(run_id)]).exit_code == 0
    report = service.report(loaded, run_id)
    assert report.complete and report.state == "cancelled"
    assert report.reconciliation() == "records in 6, planned 6 = sent 0 + suppressed 6 + dead 0: reconciled"

"""The same statement cycle on PostgreSQL (skipped where PostgreSQL is absent), with two
worker processes claiming with FOR UPDATE SKIP LOCKED."""
from __future__ import annotations

import json

import pytest

from app import create_app
from ccm.imports import import_customers, import_feed

pytestmark = pytest.mark.postgres


def test_statement_cycle_on_postgresql_with_two_workers(make_settings, tmp_path, postgres_url, customers_file, feed_file):
    app = create_app(make_settings(tmp_path, ccm={"database_url": postgres_url, "workers": 2, "chunk_size": 2}))
    engine = app.extensions["ccm"]
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert import_customers(engine.db, customers_file, rejects_dir=tmp_path, progress=False).inserted == 6
    assert import_feed(engine.db, feed_file, rejects_dir=tmp_path, progress=False).inserted == 6

    result = runner.invoke(args=["run", "statement", "--cycle", "2026-11", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["complete"]
    assert report["by_channel"] == {"email": {"sent": 2}, "print": {"sent": 3}, "sms": {"sent": 2}, "none": {"suppressed": 1}}

    again = json.loads(runner.invoke(args=["run", "statement", "--cycle", "2026-11", "--json"]).stdout)
    assert again["by_channel"] == report["by_channel"]
    assert import_customers(engine.db, customers_file, rejects_dir=tmp_path, progress=False).unchanged == 6
    engine.close()

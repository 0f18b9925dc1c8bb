"""The tail after a Celery worker dies: how long a run takes from the SIGKILL of one of its
two workers to its completion, at the default settings (``[ccm] lease_seconds`` 30: a
worker renews its claims every 10 s; the dead one's end a lease later and the producer
queues them again within 10 s). Goal (issue 12): well under a minute.

Needs PostgreSQL and Redis on loopback (skipped where absent): a scratch database is
created and dropped, the Redis database 8 is flushed. The same run without a kill is timed
too, so the tail can be read against the run's own length.

    python -m bench.celery_tail [--statements 60] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import engine_settings, write_statement_feed

CCM = str(Path(sys.executable).with_name("ccm"))
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BROKER = "redis://127.0.0.1:6379/8"


def main(statements: int = 60, admin_url: str = ADMIN_URL) -> dict | None:
    if not _redis_ready():
        print("celery tail: skipped (no Redis on 127.0.0.1:6379)")
        return None
    try:
        _drop(admin_url, _scratch_database(admin_url))
    except Exception as exc:  # no PostgreSQL: nothing to measure
        print(f"celery tail: skipped (no PostgreSQL: {type(exc).__name__})")
        return None
    clean = _timed_run(admin_url, statements, kill_after=None)
    killed = _timed_run(admin_url, statements, kill_after=statements // 5)
    result = {"statements": statements, "run_seconds": round(clean["seconds"], 1),
              "killed_run_seconds": round(killed["seconds"], 1), "kill_to_completion_seconds": round(killed["tail"], 1)}
    print(f"celery tail: {statements} statements on 2 workers in {result['run_seconds']} s; with one worker killed "
          f"(SIGKILL) mid-run {result['killed_run_seconds']} s, of which {result['kill_to_completion_seconds']} s "
          f"from the kill to completion (goal: well under 60 s at the default lease of 30 s)")
    return result


def _timed_run(admin_url: str, statements: int, *, kill_after: int | None) -> dict:
    database = _scratch_database(admin_url)
    try:
        return _run(database, statements, kill_after)
    finally:
        _drop(admin_url, database)


def _run(database: str, statements: int, kill_after: int | None) -> dict:
    from sqlalchemy import create_engine, text

    from ccm.wiring import Engine
    from ccm.imports import import_customers, import_feed

    _redis_ready()  # flushes the broker's database: no task of an earlier run is left
    with tempfile.TemporaryDirectory(prefix="ccm-celery-tail-") as scratch:
        var = Path(scratch)
        settings = engine_settings(var, ccm={"database_url": database, "broker_url": BROKER, "chunk_size": 1})
        engine = Engine.from_settings(settings)
        engine.db.upgrade()
        prefix = "T-"
        customers = _paper_customers(var / "customers.csv", [f"{prefix}{n:05d}" for n in range(statements)])
        feed = write_statement_feed(var / "feed.jsonl", [(f"ACC-{prefix}{n:05d}", f"{prefix}{n:05d}") for n in range(statements)])
        import_customers(engine.db, customers, rejects_dir=var, progress=False)
        import_feed(engine.db, feed, rejects_dir=var, progress=False)
        config = var / "ccm.toml"
        config.write_text("".join(f"[{section}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
                                  for section, values in settings.items()), encoding="utf-8")
        env = dict(os.environ, CCM_CONFIG=str(config))
        workers = [subprocess.Popen([CCM, "worker", "--concurrency", "1"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(2)]
        started = time.monotonic()
        killed_at = None
        try:
            producer = subprocess.Popen([CCM, "run", "statement", "--cycle", "2026-11", "--executor", "celery", "--json"],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            reader = create_engine(database)
            while kill_after is not None and killed_at is None and producer.poll() is None:
                with reader.connect() as connection:
                    sent = connection.execute(text("SELECT count(*) FROM messages WHERE state = 'sent'")).scalar()
                if sent >= kill_after:
                    os.killpg(workers[0].pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                time.sleep(0.05)
            out, _ = producer.communicate(timeout=900)
            finished = time.monotonic()
            reader.dispose()
        finally:
            for worker in workers:
                try:
                    os.killpg(worker.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                worker.wait(timeout=60)
            engine.close()
        report = json.loads(out)
        if not report.get("complete"):
            raise SystemExit(f"celery tail: the run did not complete: {report.get('state')} {report.get('error')}")
        return {"seconds": finished - started, "tail": (finished - killed_at) if killed_at else 0.0}


def _paper_customers(path: Path, external_ids: list[str]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "address_line1", "city", "postal_code", "country", "timezone"])
        for external_id in external_ids:
            writer.writerow([external_id, f"Customer {external_id}", "1 Main St", "Springfield", "62701", "US", "UTC"])
    return path


def _redis_ready() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"*2\r\n$6\r\nSELECT\r\n$1\r\n8\r\n*1\r\n$7\r\nFLUSHDB\r\n")
            sock.recv(100)
        return True
    except OSError:
        return False


def _scratch_database(admin_url: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"ccm_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop(admin_url: str, database: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.celery_tail", description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=60)
    parser.add_argument("--postgres", default=ADMIN_URL, metavar="ADMIN_URL", help="a PostgreSQL server where a scratch database may be made")
    arguments = parser.parse_args()
    main(arguments.statements, arguments.postgres)

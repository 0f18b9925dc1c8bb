"""Bulk imports through the API: a customer file and a billing feed handed over whole,
imported in the background with the command-line import's checks; the job shows its
progress and report, its rejects name line and field; permissions per kind; an unreadable
file refused at once; files larger than other requests accepted up to their own limit."""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ccm.models.imports import ImportJob
from ccm.runs.outbox import process_alive
from ccm.staff import create_key, create_service_account

from .conftest import bearer

CUSTOMERS = """external_id,name,email,country,consent_email
K1,Ada Lovelace,ada@example.com,GB,yes
K2,Grace Hopper,not an address,US,yes
K3,Alan Turing,alan@example.com,GB,yes
"""


def _done(client, location: str, headers: dict) -> dict:
    deadline = time.monotonic() + 60
    while True:
        job = client.get(location, headers=headers).json
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_a_customer_file_is_imported_as_a_job_with_its_rejects(app, key_for):
    client, headers = app.test_client(), key_for("service")
    answer = client.post("/api/v1/imports/customers?name=crm-export.csv", data=CUSTOMERS.encode(),
                         headers={**headers, "Content-Type": "text/csv"})
    assert answer.status_code == 202, answer.json
    assert answer.json["kind"] == "customers" and answer.json["file"] == "crm-export.csv"
    job = _done(client, answer.headers["Location"], headers)
    assert job["state"] == "completed", job
    assert job["lines_done"] == job["lines_total"] == 4
    assert {key: job["report"][key] for key in ("rows", "inserted", "rejected")} == {"rows": 3, "inserted": 2, "rejected": 1}
    assert client.get("/api/v1/customers/K3", headers=headers).json["name"] == "Alan Turing"
    assert client.get("/api/v1/customers/K2", headers=headers).status_code == 404

    rejects = client.get(job["rejects"], headers=headers)
    assert rejects.status_code == 200 and rejects.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(rejects.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["file"], r["line"], r["field"]) for r in rows] == [("crm-export.csv", "3", "email")]  # as named, not where kept
    assert "Grace Hopper" in rows[0]["raw"]

    again = client.post("/api/v1/imports/customers?format=csv", data=CUSTOMERS.encode(), headers=headers)
    report = _done(client, again.headers["Location"], headers)["report"]
    assert (report["unchanged"], report["inserted"], report["rejected"]) == (2, 0, 1)  # the same file again writes nothing
    listed = client.get("/api/v1/imports/customers?limit=1", headers=headers).json
    assert [item["id"] for item in listed["items"]] == [again.json["id"]] and listed["next_cursor"]


def test_a_feed_is_imported_by_billing_and_gzipped_jsonl_is_read(app, key_for):
    client = app.test_client()
    service, billing = key_for("service"), key_for("billing")
    customers = client.post("/api/v1/imports/customers", data=CUSTOMERS.encode(), headers={**service, "Content-Type": "text/csv"})
    assert _done(client, customers.headers["Location"], service)["state"] == "completed"
    statement = {"account": "A-1", "customer_id": "K1", "period": "2026-11", "opening_balance": "10.00", "closing_balance": "12.50",
                 "amount_due": "12.50", "due_date": "2026-12-20", "currency": "GBP",
                 "lines": [{"date": "2026-11-03", "description": "Service", "amount": "2.50"}]}
    bad = {**statement, "account": "A-2", "due_date": "soon"}
    body = gzip.compress("\n".join(json.dumps(s) for s in (statement, bad)).encode())
    answer = client.post("/api/v1/imports/feed?format=jsonl.gz&name=billing.jsonl.gz", data=body,
                         headers={**billing, "Content-Type": "application/gzip"})
    assert answer.status_code == 202, answer.json
    job = _done(client, answer.headers["Location"], billing)
    assert job["state"] == "completed" and job["report"]["inserted"] == 1 and job["report"]["rejected"] == 1, job
    rows = list(csv.DictReader(io.StringIO(client.get(job["rejects"], headers=billing).get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["line"], r["field"]) for r in rows] == [("2", "due_date")]

    refused = client.post("/api/v1/imports/customers", data=CUSTOMERS.encode(), headers={**billing, "Content-Type": "text/csv"})
    assert refused.status_code == 403 and refused.json["permission"] == "customers:edit"
    assert client.get(f"/api/v1/imports/customers/{job['id']}", headers=billing).status_code == 403
    assert client.get(f"/api/v1/imports/customers/{job['id']}", headers=service).status_code == 404  # a feed job is no customer job
    assert client.get(job["rejects"], headers=service).status_code == 403


@pytest.mark.parametrize("body, headers, status, field", [
    (b"\xff\xfe not text", {"Content-Type": "text/csv"}, 422, "body"),
    (b"", {"Content-Type": "text/csv"}, 422, "body"),
    (b"id,full_name\x00\n1,Ada\n", {"Content-Type": "text/csv"}, 422, "body"),  # no external_id, name: said at once
    (CUSTOMERS.encode(), {"Content-Type": "application/octet-stream"}, 415, "format"),
])
def test_a_file_that_cannot_be_read_is_refused_at_once_and_nothing_is_kept(app, key_for, body, headers, status, field):
    client, key = app.test_client(), key_for("service")
    answer = client.post("/api/v1/imports/customers", data=body, headers={**key, **headers})
    assert answer.status_code == status and answer.content_type == "application/problem+json", answer.json
    assert answer.json["field"] == field
    with app.extensions["ccm"].db.reader() as session:
        assert session.query(ImportJob).count() == 0
    assert not list((app.extensions["ccm"].var_dir / "imports").glob("*/*"))


def test_a_file_larger_than_other_requests_is_taken_up_to_its_own_limit(make_settings, tmp_path):
    from app import create_app

    app = create_app(make_settings(tmp_path, web={"max_body_bytes": 2000, "import_max_bytes": 200_000}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    create_service_account(engine, "crm", ["service"], actor="test")
    client, headers = app.test_client(), bearer(create_key(engine, "crm", days=1, actor="test").key)
    rows = "".join(f"B{n},Customer {n},c{n}@example.com,GB,yes\n" for n in range(1000))
    body = ("external_id,name,email,country,consent_email\n" + rows).encode()
    assert 2000 < len(body) < 200_000
    answer = client.post("/api/v1/imports/customers", data=body, headers={**headers, "Content-Type": "text/csv",
                                                                           "Idempotency-Key": "big-1"})
    assert answer.status_code == 202, answer.json
    assert _done(client, answer.headers["Location"], headers)["report"]["inserted"] == 1000
    assert len(body * 6) > 200_000
    too_big = client.post("/api/v1/imports/customers", data=body * 6, headers={**headers, "Content-Type": "text/csv"})
    assert too_big.status_code == 413 and too_big.content_type == "application/problem+json"
    jobs = client.get("/api/v1/imports/customers", headers=headers).json["items"]
    streamed = client.post("/api/v1/imports/customers", headers={**headers, "Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
                           input_stream=io.BytesIO(body * 6), environ_overrides={"wsgi.input_terminated": True})  # no length: stopped while read
    assert streamed.status_code == 413 and streamed.content_type == "application/problem+json"
    assert client.get("/api/v1/imports/customers", headers=headers).json["items"] == jobs  # nothing kept of it
    assert len(list((engine.var_dir / "imports").iterdir())) == len(jobs)
    assert client.put("/api/v1/customers/X", json={"name": "x" * 100, "attributes": {"note": "y" * 3000}},
                      headers=headers).status_code == 413  # the others keep theirs
    engine.close()


def test_a_job_whose_process_died_shows_interrupted_and_is_restarted(app, key_for):
    client, headers = app.test_client(), key_for("service")
    job = _done(client, client.post("/api/v1/imports/customers", data=CUSTOMERS.encode(),
                                    headers={**headers, "Content-Type": "text/csv"}).headers["Location"], headers)
    assert client.post(f"/api/v1/imports/customers/{job['id']}/restart", headers=headers).status_code == 409  # completed
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    assert process_alive(dead) is False
    with app.extensions["ccm"].db.session() as session:
        row = session.get(ImportJob, job["id"])
        row.state, row.owner, row.report = "running", dead, None
    assert client.get(f"/api/v1/imports/customers/{job['id']}", headers=headers).json["state"] == "interrupted"
    restarted = client.post(f"/api/v1/imports/customers/{job['id']}/restart", headers=headers)
    assert restarted.status_code == 202
    again = _done(client, f"/api/v1/imports/customers/{job['id']}", headers)
    assert again["state"] == "completed" and again["report"]["unchanged"] == 2  # what the first try stored stays as it is


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_scheduler_takes_up_a_job_whose_process_died_and_one_never_started(app, key_for):
    import datetime as dt

    from ccm.scheduling.jobs import take_up_imports

    engine = app.extensions["ccm"]
    client, headers = app.test_client(), key_for("service")
    first = _done(client, client.post("/api/v1/imports/customers", data=CUSTOMERS.encode(),
                                      headers={**headers, "Content-Type": "text/csv"}).headers["Location"], headers)
    second = _done(client, client.post("/api/v1/imports/customers", data=CUSTOMERS.encode(),
                                       headers={**headers, "Content-Type": "text/csv"}).headers["Location"], headers)
    running = _done(client, client.post("/api/v1/imports/customers", data=CUSTOMERS.encode(),
                                        headers={**headers, "Content-Type": "text/csv"}).headers["Location"], headers)
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    with engine.db.session() as session:
        died = session.get(ImportJob, first["id"])
        died.state, died.owner, died.report = "running", dead, None
        forgotten = session.get(ImportJob, second["id"])  # its request's process died before starting it
        forgotten.state, forgotten.owner, forgotten.report = "queued", None, None
        forgotten.created_at -= dt.timedelta(minutes=5)
        alive = session.get(ImportJob, running["id"])  # importing in a live process: left alone
        alive.state, alive.owner = "running", f"{socket.gethostname()}:{os.getpid()}"
    assert take_up_imports(engine, "scheduler:1:aa") == [first["id"], second["id"]]
    for job in (first, second):
        again = client.get(f"/api/v1/imports/customers/{job['id']}", headers=headers).json
        assert again["state"] == "completed" and again["report"]["unchanged"] == 2
    assert client.get(f"/api/v1/imports/customers/{running['id']}", headers=headers).json["state"] == "running"
    assert take_up_imports(engine, "scheduler:1:aa") == []  # nothing twice

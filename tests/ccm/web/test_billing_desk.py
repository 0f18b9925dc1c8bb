"""The billing desk with Flask's test client: a feed uploaded and checked (rejects shown and
downloadable before anything is planned), a cycle started and executed in the background,
the live part, pause, resume, cancel and retry, the reconciliation and the messages not
sent, print files, the archive and reprints; each refusal and each audit entry."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from ccm.imports import import_customers
from ccm.models import ArchivedDocument, Customer, Message, Run
from ccm.models.authoring import AuditLog
from ccm.runs import archive_root, plan_run, wait

CYCLE = "2026-11"


def audits(engine, action: str) -> list[AuditLog]:
    with engine.db.reader() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def runs_of(engine) -> list[Run]:
    with engine.db.reader() as session:
        return list(session.scalars(select(Run)))


def feed_bytes(statement_data, *, bad: bool = True) -> bytes:
    """The six customers' statements, and (``bad``) one of an unknown customer and one
    whose amount is not a number."""
    records = [statement_data(ext, f"ACC-{i}", 2) for i, ext in
               enumerate(("C-EMAIL", "C-PRINT", "C-ZH", "C-NOCONSENT", "C-NOWHERE", "C-SMSONLY"), 1)]
    if bad:
        records.append(statement_data("C-GHOST", "ACC-9", 1))
        broken = statement_data("C-PRINT", "ACC-10", 1)
        broken["amount_due"] = "lots"
        records.append(broken)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


@pytest.fixture
def customers(engine, customers_file: Path):
    assert import_customers(engine.db, customers_file, rejects_dir=engine.var_dir / "rejects", progress=False).rejected == 0
    return engine


def upload(client, csrf: str, data: bytes, name: str = "november.jsonl"):
    return client.post("/console/runs/upload", data={"csrf_token": csrf, "feed": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def start(client, csrf: str, cycle: str = CYCLE):
    return client.post("/console/runs/start", data={"csrf_token": csrf, "communication": "monthly-statement", "cycle": cycle})


@pytest.fixture
def finished_run(console_as, customers, statement_data):
    """The billing user's client after uploading the feed and running the cycle to its end."""
    client, csrf = console_as("billing")
    upload(client, csrf, feed_bytes(statement_data, bad=False))
    answer = start(client, csrf)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/console/runs/1")
    assert wait(1, 120)
    return client, csrf


def test_an_upload_shows_its_rejects_before_anything_is_planned(console_as, customers, statement_data, engine):
    client, csrf = console_as("billing")
    answer = upload(client, csrf, feed_bytes(statement_data))
    assert answer.status_code == 302
    page_url = answer.headers["Location"]
    assert re.search(r"/console/runs/imports/\d{8}T\d{6}Z-[0-9a-f]{8}$", page_url)
    page = client.get(page_url).get_data(as_text=True)
    assert "november.jsonl" in page and "unknown customer" in page and "amount_due" in page
    assert ">8</dd>" in page and ">2</dd>" in page  # eight statements, two rejected
    assert 'name="cycle"' in page and f'value="{CYCLE}" selected' in page
    assert runs_of(engine) == []  # checked and stored, nothing planned

    rejects = client.get(page_url + "/rejects.csv")
    assert rejects.status_code == 200 and rejects.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(rejects.get_data(as_text=True).lstrip("\ufeff"))))
    rejects.close()
    assert {(r["line"], r["field"], r["reason"]) for r in rows} >= {("7", "customer_id", "unknown customer")}
    assert any(r["field"] == "amount_due" and r["line"] == "8" for r in rows)
    assert all(Path(r["file"]).name == "november.jsonl" for r in rows)

    [entry] = audits(engine, "upload")
    assert entry.actor == "billing" and entry.object_name == "november.jsonl"
    assert entry.details["rejected"] == 2 and entry.details["inserted"] == 6


def test_an_unreadable_upload_is_reported_and_nothing_is_imported(console_as, customers, engine):
    client, csrf = console_as("billing")
    answer = upload(client, csrf, b"not a feed", name="feed.xlsx")
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "not a .csv, .jsonl or .ndjson file" in page and "Start the cycle" not in page
    assert client.get(answer.headers["Location"] + "/rejects.csv").status_code == 404
    assert client.get("/console/runs/imports/..%2F..%2Fetc").status_code == 404


def test_a_marketer_cannot_upload_start_or_control_runs(console_as, customers, statement_data, engine):
    client, csrf = console_as("marketer")
    assert upload(client, csrf, feed_bytes(statement_data)).status_code == 403
    assert start(client, csrf).status_code == 403
    for action in ("pause", "resume", "cancel", "retry"):
        assert client.post(f"/console/runs/1/{action}", data={"csrf_token": csrf}).status_code == 403
    page = client.get("/console/runs").get_data(as_text=True)
    assert client.get("/console/runs").status_code == 200 and "Start a cycle" not in page
    assert runs_of(engine) == []


def test_a_cycle_runs_in_the_background_and_its_books_are_shown(finished_run, engine):
    client, _ = finished_run
    page = client.get("/console/runs/1").get_data(as_text=True)
    assert "records in 6, planned 6 = sent 5 + suppressed 1 + dead 0: reconciled" in page
    assert 'id="run-state">completed<' in page
    assert "hx-trigger" not in page  # finished: nothing polls
    # The message not sent, under its reason, with its customer.
    assert "no deliverable channel" in page and "<bdi>C-NOWHERE</bdi>" in page and "<bdi>Dan Nowhere</bdi>" in page
    # Print production: batches and the streams for the post.
    assert "manifest.csv" in page and "production-run1" in page and "print-stream.pdf" in page
    [entry] = audits(engine, "start")
    assert entry.object_type == "run" and entry.object_name == "1" and entry.details["cycle"] == CYCLE
    assert entry.details["records_in"] == 6 and entry.details["planned"] >= 6  # SMS reminders ride along
    listing = client.get("/console/runs").get_data(as_text=True)
    assert "/console/runs/1" in listing and "completed" in listing


def test_the_live_part_polls_while_a_run_is_planned_and_stops_when_it_ends(console_as, customers, statement_data, engine):
    client, csrf = console_as("billing")
    upload(client, csrf, feed_bytes(statement_data, bad=False))
    plan = plan_run(engine, "monthly-statement", CYCLE)  # planned, not executed
    live = client.get(f"/console/runs/{plan.run_id}/live").get_data(as_text=True)
    assert 'hx-get="/console/runs/1/live"' in live and 'hx-trigger="every 1s"' in live
    assert "<progress" in live and "1 of 9 messages done" in live  # six statements, three SMS reminders; one suppressed when planned
    assert "<html" not in live  # a fragment
    assert 'id="run-pause"' in live and 'id="run-cancel"' in live

    assert client.post(f"/console/runs/{plan.run_id}/pause", data={"csrf_token": csrf}).status_code == 302
    assert [e.object_name for e in audits(engine, "pause")] == ["1"]
    paused = client.get(f"/console/runs/{plan.run_id}/live").get_data(as_text=True)
    assert "hx-trigger" not in paused and 'id="run-state">paused<' in paused and 'id="run-resume"' in paused

    assert client.post(f"/console/runs/{plan.run_id}/resume", data={"csrf_token": csrf}).status_code == 302
    assert wait(plan.run_id, 120)
    done = client.get(f"/console/runs/{plan.run_id}/live").get_data(as_text=True)
    assert 'id="run-state">completed<' in done and "hx-trigger" not in done and "9 of 9 messages done" in done
    assert [e.object_name for e in audits(engine, "resume")] == ["1"]

    refused = client.post(f"/console/runs/{plan.run_id}/cancel", data={"csrf_token": csrf}, follow_redirects=True)
    assert "it cannot be cancelled" in refused.get_data(as_text=True)
    [cancel] = audits(engine, "cancel")
    assert "refused" in cancel.details


def test_a_planned_run_is_cancelled(console_as, customers, statement_data, engine):
    client, csrf = console_as("billing")
    upload(client, csrf, feed_bytes(statement_data, bad=False))
    plan = plan_run(engine, "monthly-statement", CYCLE)
    assert client.post(f"/console/runs/{plan.run_id}/cancel", data={"csrf_token": csrf}).status_code == 302
    page = client.get(f"/console/runs/{plan.run_id}").get_data(as_text=True)
    assert 'id="run-state">cancelled<' in page and "run cancelled" in page
    assert [e.object_name for e in audits(engine, "cancel")] == ["1"] and "refused" not in audits(engine, "cancel")[0].details


def test_failed_messages_are_retried_now(console_as, customers, statement_data, engine):
    engine.settings["channels"]["email"] = "smtp://127.0.0.1:9"  # nothing listens: every e-mail fails for now
    client, csrf = console_as("billing")
    upload(client, csrf, feed_bytes(statement_data, bad=False))
    start(client, csrf)
    assert wait(1, 120)
    page = client.get("/console/runs/1").get_data(as_text=True)
    assert 'id="run-state">waiting<' in page and 'id="run-retry"' in page
    assert "<bdi>C-EMAIL</bdi>" in page  # failed, waiting for its retry, listed with its reason
    with engine.db.reader() as session:
        before = session.scalar(select(Run.id))
    answer = client.post("/console/runs/1/retry", data={"csrf_token": csrf}, follow_redirects=True)
    assert "failed messages are retried now" in answer.get_data(as_text=True)
    assert wait(before, 120)
    [entry] = audits(engine, "retry")
    assert entry.object_name == "1" and entry.details["messages"] >= 1
    with engine.db.reader() as session:
        attempts = session.scalars(select(Message.attempts).where(Message.channel == "email", Message.state == "failed")).all()
    assert attempts and all(n >= 2 for n in attempts)  # tried again, not waiting for the backoff


def test_print_files_are_served_only_from_the_print_folder(finished_run, console_as, engine):
    client, _ = finished_run
    page = client.get("/console/runs/1").get_data(as_text=True)
    link = re.search(r'href="(/console/runs/1/print/production-run1/manifest\.csv)"', page).group(1)
    manifest = client.get(link)
    assert manifest.status_code == 200 and manifest.mimetype == "text/csv" and b"message_id" in manifest.data
    manifest.close()
    batch = re.search(r'href="(/console/runs/1/print/run1-\d{9}/print-stream\.pdf)"', page).group(1)
    stream = client.get(batch)
    assert stream.data.startswith(b"%PDF")
    stream.close()
    for bad in ("/console/runs/1/print/..%2F..%2F/ccm.db", "/console/runs/1/print/production-run1/..%2Fccm.db",
                "/console/runs/2/print/production-run1/manifest.csv", "/console/runs/1/print/production-run1/stream.txt"):
        assert client.get(bad).status_code == 404
    marketer, _ = console_as("marketer")
    assert marketer.get(link).status_code == 403


def test_the_archive_is_searched_and_a_statement_reprinted_byte_for_byte(finished_run, console_as, engine):
    client, csrf = finished_run
    with engine.db.reader() as session:
        doc = session.scalar(select(ArchivedDocument).join(Customer, Customer.id == ArchivedDocument.customer_id)
                             .where(Customer.external_id == "C-PRINT"))
    archived = (archive_root(engine.var_dir) / doc.path).read_bytes()
    for query in ("customer=C-PRINT", "customer=brien", "account=ACC-2", f"cycle={CYCLE}"):
        page = client.get(f"/console/archive?{query}").get_data(as_text=True)
        assert f"/console/archive/{doc.message_id}/reprint" in page, query
    assert "0 documents found" in client.get("/console/archive?account=NOPE").get_data(as_text=True)

    reprinted = client.post(f"/console/archive/{doc.message_id}/reprint", data={"csrf_token": csrf})
    assert reprinted.status_code == 200 and reprinted.data == archived
    assert "attachment" in reprinted.headers["Content-Disposition"]
    [entry] = audits(engine, "reprint")
    assert entry.object_type == "message" and entry.object_name == str(doc.message_id) and entry.details["account"] == "ACC-2"
    assert entry.details["sha256"] == doc.sha256

    assert client.get(f"/console/archive/{doc.message_id}.pdf").data == archived  # to look at, not audited
    message = client.get(f"/console/messages/{doc.message_id}").get_data(as_text=True)
    assert "<bdi>C-PRINT</bdi>" in message and f"/console/archive/{doc.message_id}.pdf" in message
    with engine.db.reader() as session:
        sms = session.scalar(select(Message).where(Message.channel == "sms", Message.state == "sent"))
        sms_id, texted_customer = sms.id, sms.customer.external_id
    texted = client.get(f"/console/messages/{sms_id}").get_data(as_text=True)  # not archived: as kept by its channel
    assert f"/console/customers/{texted_customer}/messages/{sms_id}" in texted

    assert client.post("/console/archive/999/reprint", data={"csrf_token": csrf}).status_code == 404
    with client.session_transaction() as session:
        session["fresh_at"] = 0  # signed in long ago
    stale = client.post(f"/console/archive/{doc.message_id}/reprint", data={"csrf_token": csrf},
                        headers={"Referer": "http://localhost/console/archive?customer=C-PRINT"})
    assert stale.status_code == 302 and stale.headers["Location"].startswith("/console/confirm")
    assert len(audits(engine, "reprint")) == 1

    marketer, marketer_csrf = console_as("marketer")
    assert marketer.post(f"/console/archive/{doc.message_id}/reprint", data={"csrf_token": marketer_csrf}).status_code == 403

"""The customer's inbox: a statement cycle whose policy puts the inbox first delivers to the
inbox channel the customers who signed up for it; the website lists their messages, reads
one (the open is recorded once), fetches the statement PDF from the archive, archives and
restores it; no one sees another customer's message; erasure empties their inbox."""
from __future__ import annotations

import hashlib
import io

from pypdf import PdfReader
from sqlalchemy import select

from ccm.feedback import change_consent, erase_customer
from ccm.models import Communication, Customer, Message
from ccm.models.feedback import ResponseEvent
from ccm.runs import resend_statement, service

CYCLE = "2026-11"
INBOX_FIRST = {"order": [{"channel": "inbox"}, {"channel": "email", "when": "paperless"}, {"channel": "print"}, {"channel": "email"}]}


def _statements_in_the_inbox(engine) -> int:
    from ccm.communications import ensure_built_in

    for external_id in ("C-EMAIL", "C-ZH"):
        change_consent(engine, external_id, "inbox", "service", True, "agent-7")
    with engine.db.session() as session:
        ensure_built_in(session)
        communication = session.scalar(select(Communication).where(Communication.name == "monthly-statement"))
        communication.config = dict(communication.config, channel_policy=INBOX_FIRST)
    run_id = service.run_cycle(engine, "statement", CYCLE, progress=False).report.run_id
    with engine.db.reader() as session:
        rows = session.execute(select(Customer.external_id, Message.channel).join(Customer).where(Message.purpose == "statement"))
        channels = dict(rows.all())
    assert (channels["C-EMAIL"], channels["C-ZH"], channels["C-PRINT"]) == ("inbox", "inbox", "print")
    return run_id


def test_the_website_lists_reads_and_archives_a_customers_inbox(loaded, app, key_for):
    run_id = _statements_in_the_inbox(loaded)
    client, website = app.test_client(), key_for("website")
    listed = client.get("/api/v1/customers/C-EMAIL/inbox", headers=website)
    assert listed.status_code == 200, listed.json
    (item,) = listed.json["items"]
    assert listed.json["unread"] == 1 and listed.json["next_cursor"] is None
    assert item["communication"] == "monthly-statement" and item["document"] and item["read_at"] is None
    assert item["subject"] and item["preview"]

    read = client.get(f"/api/v1/customers/C-EMAIL/inbox/{item['id']}", headers=website)
    assert read.status_code == 200 and read.json["read_at"]
    html = read.json["content"]["html"]
    assert "Alice &lt;script&gt;" in html and "<script>alert" not in html  # the name as typed, escaped
    assert "/t/c/" in html or "/t/o/" in html or "href" in html  # links are the message's tracked links
    assert client.get(f"/api/v1/customers/C-EMAIL/inbox/{item['id']}", headers=website).status_code == 200  # read again
    with loaded.db.reader() as session:
        opens = session.scalars(select(ResponseEvent).where(ResponseEvent.message_id == item["id"], ResponseEvent.type == "opened")).all()
        assert [(event.source, event.channel) for event in opens] == [("inbox", "inbox")]  # once
    assert client.get("/api/v1/customers/C-EMAIL/inbox", headers=website).json["unread"] == 0

    pdf = client.get(f"/api/v1/customers/C-EMAIL/inbox/{item['id']}/pdf", headers=website)
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert "Statement" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()

    archived = client.post(f"/api/v1/customers/C-EMAIL/inbox/{item['id']}/archive", headers=website)
    assert archived.status_code == 200 and archived.json["archived_at"]
    assert client.get("/api/v1/customers/C-EMAIL/inbox", headers=website).json["items"] == []
    assert [i["id"] for i in client.get("/api/v1/customers/C-EMAIL/inbox?folder=archived", headers=website).json["items"]] == [item["id"]]
    restored = client.post(f"/api/v1/customers/C-EMAIL/inbox/{item['id']}/archive", json={"archived": False}, headers=website)
    assert restored.status_code == 200 and restored.json["archived_at"] is None

    again = resend_statement(loaded, item["id"], "agent-7")  # the service desk sends the statement again
    assert (again.channel, again.state) == ("inbox", "sent")
    assert [i["id"] for i in client.get("/api/v1/customers/C-EMAIL/inbox", headers=website).json["items"]] == [again.message_id, item["id"]]

    zh = client.get("/api/v1/customers/C-ZH/inbox", headers=website).json["items"]
    assert len(zh) == 1 and zh[0]["id"] != item["id"]
    report = service.report(loaded, run_id)
    assert report.costs["inbox"] == "0.00" and "inbox" in report.by_channel  # 2 x 0.0005, rounded to cents


def test_no_one_reads_another_customers_message_and_the_key_needs_the_permission(loaded, app, key_for):
    _statements_in_the_inbox(loaded)
    client, website, viewer = app.test_client(), key_for("website"), key_for("viewer")
    with loaded.db.reader() as session:
        theirs = session.scalar(select(Message.id).join(Message.customer).where(Message.channel == "inbox").limit(1))
        paper = session.scalar(select(Message.id).where(Message.channel == "print").limit(1))
    for path in (f"/api/v1/customers/C-PRINT/inbox/{theirs}", f"/api/v1/customers/C-EMAIL/inbox/{paper}",
                 f"/api/v1/customers/C-PRINT/inbox/{theirs}/pdf", "/api/v1/customers/NO-SUCH/inbox"):
        answer = client.get(path, headers=website)
        assert answer.status_code == 404 and answer.content_type.startswith("application/problem+json"), path
    assert client.post(f"/api/v1/customers/C-PRINT/inbox/{theirs}/archive", headers=website).status_code == 404
    refused = client.get("/api/v1/customers/C-EMAIL/inbox", headers=viewer)
    assert refused.status_code == 403 and refused.json["permission"] == "inbox:serve"
    assert client.get("/api/v1/customers/C-EMAIL/inbox").status_code == 401


def test_erasure_empties_the_customers_inbox(loaded, app, key_for):
    _statements_in_the_inbox(loaded)
    folder = loaded.var_dir / "inbox"
    before = sorted(p.name for p in folder.rglob("*.json"))
    assert len(before) == 2
    unkeyed = hashlib.sha256(b"C-EMAIL").hexdigest()
    assert not any(unkeyed in str(path) for path in folder.rglob("*"))  # filed under a keyed pseudonym
    erased = erase_customer(loaded, "C-EMAIL", actor="test")
    assert any(r.kind == "inbox" and r.count == 1 for r in erased.removed), erased
    assert len(list(folder.rglob("*.json"))) == 1  # C-ZH's is kept

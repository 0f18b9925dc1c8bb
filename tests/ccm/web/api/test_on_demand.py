"""On demand through the API: a duplicate statement sent to a caller once per
Idempotency-Key (counted at a real SMTP server), a reused key with other content refused,
the statement archived, in the customer's history and reprinted byte for byte."""
from __future__ import annotations

import base64
import email
import email.policy
import io

import pytest
from pypdf import PdfReader

from ccm.feedback import profile


@pytest.fixture
def server(smtp_server):
    return smtp_server()


@pytest.fixture
def settings(make_settings, tmp_path, database, server):
    return make_settings(tmp_path, channels={"email": server.url()}, **({"ccm": {"database_url": database}} if database else {}))


def test_a_statement_on_demand_is_sent_once_archived_and_reprintable(loaded, app, key_for, server):
    client, service, billing = app.test_client(), key_for("service"), key_for("billing")
    asked = {"communication": "statement", "customer": "C-EMAIL", "send": True, "include_content": True}
    first = client.post("/api/v1/on-demand", json=asked, headers={**service, "Idempotency-Key": "call-42"})
    assert first.status_code == 201, first.json
    made = first.json
    assert (made["state"], made["channel"], made["archived"], made["duplicate"]) == ("sent", "email", True, False)
    assert made["content"]["subject"] and "<html" in made["content"]["html"].lower()
    retry = client.post("/api/v1/on-demand", json=asked, headers={**service, "Idempotency-Key": "call-42"})
    assert retry.status_code == 201 and retry.json["message_id"] == made["message_id"]
    assert len(server.handler.messages) == 1  # the retry sent nothing
    other = client.post("/api/v1/on-demand", json={**asked, "customer": "C-PRINT"}, headers={**service, "Idempotency-Key": "call-42"})
    assert other.status_code == 409 and other.content_type.startswith("application/problem+json")

    mail = email.message_from_bytes(server.handler.messages[0], policy=email.policy.default)
    attached = next(mail.iter_attachments()).get_content()
    assert base64.b64decode(made["content"]["pdf"]) == attached
    reprinted = client.post(f"/api/v1/runs/{made['run_id']}/messages/{made['message_id']}/reprint", headers=billing)
    assert reprinted.status_code == 200 and reprinted.content_type == "application/pdf"
    assert reprinted.data == attached
    assert "Statement" in PdfReader(io.BytesIO(reprinted.data)).pages[0].extract_text()
    assert client.get(f"/api/v1/messages/{made['message_id']}/pdf", headers=billing).data == attached

    shown = client.get(f"/api/v1/messages/{made['message_id']}", headers=billing).json
    assert shown["customer"] == "C-EMAIL" and shown["account"] == "ACC-1" and shown["state"] == "sent"
    assert shown["trace"]["statement.insert"]["why"] and shown["template_versions"] and shown["archived"]["pages"] >= 1
    history = profile(loaded, "C-EMAIL").timeline
    assert any(entry.message_id == made["message_id"] and entry.what == "sent" for entry in history)


def test_rendering_only_needs_no_key_and_sending_needs_one_and_the_permission(loaded, app, key_for, server):
    client, service, viewer = app.test_client(), key_for("service"), key_for("viewer")
    shown = client.post("/api/v1/on-demand", json={"communication": "statement", "customer": "C-PRINT", "form": "pdf",
                                                    "include_content": True}, headers=viewer)
    assert shown.status_code == 201 and shown.json["state"] == "suppressed" and shown.json["archived"]
    assert PdfReader(io.BytesIO(base64.b64decode(shown.json["content"]["pdf"]))).pages
    text = client.post("/api/v1/on-demand", json={"communication": "statement", "customer": "C-PRINT", "form": "sms",
                                                   "include_content": True}, headers=viewer)
    assert text.status_code == 201 and text.json["content"]["sms"]

    refused = client.post("/api/v1/on-demand", json={"communication": "statement", "customer": "C-EMAIL", "send": True},
                          headers={**viewer, "Idempotency-Key": "k1"})
    assert refused.status_code == 403 and refused.json["permission"] == "customers:resend"
    keyless = client.post("/api/v1/on-demand", json={"communication": "statement", "customer": "C-EMAIL", "send": True}, headers=service)
    assert keyless.status_code == 400 and keyless.json["field"] == "Idempotency-Key"
    unknown = client.post("/api/v1/on-demand", json={"communication": "statement", "customer": "NOBODY"}, headers=service)
    assert unknown.status_code == 404
    no_pdf = client.post("/api/v1/on-demand", json={"communication": "payment-received", "customer": "C-EMAIL", "form": "pdf"},
                         headers=service)
    assert no_pdf.status_code == 422 and "no pdf form" in no_pdf.json["detail"]
    assert len(server.handler.messages) == 0

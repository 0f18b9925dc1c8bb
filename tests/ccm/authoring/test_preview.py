"""Preview on real and sample data (real PDFs read back, PNG pages, .eml, SMS) and proofs
to a seed list through a real SMTP server, never counted as messages of a run."""
from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess

import pytest
from signed_in import as_user
from sqlalchemy import func, select

from ccm.models import Message, Run

from .conftest import GOOD_INSERT


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout.decode("utf-8")


@pytest.fixture
def customers(loaded, store):
    return loaded


def test_preview_of_a_statement_for_a_real_customer_writes_pdf_and_pages(customers, ccm, tmp_path):
    out = tmp_path / "preview"
    result = ccm("templates", "preview", "statement/statement.html", "--customer", "C-ZH", "--cycle", "2026-11",
                 "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    pdf = out / "statement__statement.html.pdf"
    assert str(pdf) in data["files"] and data["pages"] >= 1
    text = pdf_text(pdf)
    assert "王小明" in text and "ACC-3" in text
    if shutil.which("pdftoppm"):
        assert len(list(out.glob("statement__statement.html-*.png"))) == data["pages"]


def test_preview_of_an_email_writes_eml_and_html_and_sms_its_encoding(customers, ccm, tmp_path):
    out = tmp_path / "preview"
    assert ccm("templates", "preview", "email/statement_ready.html", "--customer", "C-EMAIL", "--out", str(out)).exit_code == 0
    message = email.message_from_bytes((out / "email__statement_ready.html.eml").read_bytes(), policy=email.policy.default)
    assert "statement for 2026-11 is ready" in message["Subject"]
    assert message.get_body(("plain",)).get_content().startswith("Dear Alice")
    assert "&lt;script&gt;" in (out / "email__statement_ready.html.html").read_text(encoding="utf-8")
    assert [part.get_filename() for part in message.iter_attachments()] == ["statement-2026-11.pdf"]

    sms = ccm("templates", "preview", "sms/payment_due.txt", "--customer", "C-ZH", "--out", str(out), "--json")
    info = json.loads(sms.output)["sms"]
    assert info["encoding"] == "UCS-2" and info["segments"] == 1
    assert (out / "sms__payment_due.txt.sms.txt").read_text(encoding="utf-8").strip() == info["text"]


def test_preview_of_a_draft_block_with_all_variants(ccm, write, tmp_path):
    assert ccm("templates", "edit", "inserts/winback_offer.html", "--file", str(write(GOOD_INSERT))).exit_code == 0
    out = tmp_path / "preview"
    result = ccm("templates", "preview", "inserts/winback_offer.html", "--sample", "--all-variants", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "We miss you, Alex Sample" in pdf_text(out / "inserts__winback_offer.html.pdf")  # the draft, in the statement
    variants = sorted(p.name for p in (out / "variants").glob("*.pdf"))
    assert variants == [f"statement.insert--inserts__{name}.html.pdf" for name in ("go_paperless", "premium_upgrade", "winback_offer")]
    assert "Upgrade to Premium" in pdf_text(out / "variants" / variants[1])
    assert (out / "variants" / "variants.html").exists()
    with_v1 = ccm("templates", "preview", "inserts/winback_offer.html", "--version", "1", "--sample", "--out", str(tmp_path / "v1"))
    assert with_v1.exit_code == 0 and "We miss you" in pdf_text(tmp_path / "v1" / "inserts__winback_offer.html.pdf")


def test_preview_needs_a_customer_or_sample_and_a_known_customer(ccm):
    assert ccm("templates", "preview", "sms/payment_due.txt").output.strip() == "Error: give a customer (--customer EXTERNAL_ID) or --sample"
    assert ccm("templates", "preview", "sms/payment_due.txt", "--customer", "NOPE").output.strip() == "Error: no such customer: NOPE"


def test_test_send_mails_a_marked_proof_to_the_seed_list_and_no_run_counts_it(make_settings, tmp_path, smtp_server):
    from app import create_app

    server = smtp_server()
    settings = make_settings(tmp_path, channels={"email": server.url()},
                             proofs={"seed_lists": {"qa": ["proofs@corp.example", "lead@corp.example"]}})
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["templates", "sync"]).exit_code == 0

    result = runner.invoke(args=["templates", "test-send", "email/statement_ready.html", "--to", "qa"], env=as_user(engine, "mara"))
    assert result.exit_code == 0, result.output
    assert "sent to 2 address(es) of seed list qa" in result.output
    received = [email.message_from_bytes(raw, policy=email.policy.default) for raw in server.handler.messages]
    assert sorted(m["To"].addresses[0].addr_spec for m in received) == ["lead@corp.example", "proofs@corp.example"]
    assert all(m["X-CCM-Proof"] == "yes" and m["Subject"].startswith("[PROOF] ") for m in received)

    sms = runner.invoke(args=["templates", "test-send", "sms/payment_due.txt", "--to", "qa"], env=as_user(engine, "mara"))
    assert sms.exit_code == 0
    assert "GSM-7" in email.message_from_bytes(server.handler.messages[-1], policy=email.policy.default).get_body(("plain",)).get_content()

    unknown = runner.invoke(args=["templates", "test-send", "sms/payment_due.txt", "--to", "customers"], env=as_user(engine, "mara"))
    assert unknown.exit_code == 1
    assert unknown.output.strip() == "Error: no such seed list: customers (configured in [proofs] seed_lists: qa)"
    with engine.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Run)) == 0
    history = json.loads(runner.invoke(args=["templates", "history", "email/statement_ready.html", "--json"]).output)
    assert history[-1]["action"] == "test_send" and history[-1]["details"] == {"seed_list": "qa", "sent": 2}
    engine.close()


def test_all_variants_put_the_decisions_choices_first(store):
    from ccm.previews.preview import Source, decided_contents, slot_candidates
    from ccm.communications import ensure_built_in, get_communication
    from ccm.authoring.store import library

    with store.db.session() as session:
        ensure_built_in(session)
        decided = decided_contents(session, get_communication(session, "statement"))
        source = Source(library(session), {}, {"statement.insert": {"print": "inserts/go_paperless.html"}}, None, "en_US", "UTC", decided)
    # the shipped decision chooses among these three; the communication's default comes with them
    assert set(decided["statement.insert"]) == {"inserts/go_paperless.html", "inserts/premium_upgrade.html", "inserts/winback_offer.html"}
    assert slot_candidates(source, "statement.insert")[:3] == sorted(decided["statement.insert"])

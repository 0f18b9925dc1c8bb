"""Archived statements: PDF/A, indexed by customer, account and cycle; a reprint returns the
document byte for byte as it was printed or attached, and refuses an altered file."""
from __future__ import annotations

import email
import io
import email.policy
import json
import mailbox

from pypdf import PdfReader
from sqlalchemy import select

from ccm.models import ArchivedDocument, Message
from signed_in import as_user

CYCLE = "2026-11"


def test_reprint_returns_the_document_as_sent_and_refuses_an_altered_one(loaded, app, tmp_path):
    runner = app.test_cli_runner(env=as_user(loaded, "ben", "billing"))
    assert runner.invoke(args=["run", "statement", "--cycle", CYCLE]).exit_code == 0
    with loaded.db.session() as session:
        emailed = session.scalar(select(Message).where(Message.idempotency_key.endswith("ACC-1:statement")))
        printed = session.scalar(select(Message).where(Message.idempotency_key.endswith("ACC-2:statement")))
        assert session.scalar(select(ArchivedDocument).where(ArchivedDocument.message_id == emailed.id)).pdf_a

    box = mailbox.Maildir(loaded.var_dir / "maildir", factory=None, create=False)
    mails = [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.keys()]
    attached = [next(mail.iter_attachments()).get_content() for mail in mails]
    out = tmp_path / "reprint.pdf"
    result = runner.invoke(args=["reprint", str(emailed.id), "--out", str(out)])
    assert result.exit_code == 0 and "verified" in result.output
    assert out.read_bytes() in attached
    metadata = PdfReader(io.BytesIO(out.read_bytes())).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"pdfaid:part" in metadata  # the archive keeps PDF/A

    manifest = next((loaded.var_dir / "print").glob("run*/manifest.csv")).parent
    printed_files = {p.read_bytes() for p in manifest.glob("documents/*.pdf")}
    assert runner.invoke(args=["reprint", str(printed.id), "--out", str(out)]).exit_code == 0
    assert out.read_bytes() in printed_files

    found = json.loads(runner.invoke(args=["archive", "find", "--customer", "C-PRINT", "--json"]).stdout)
    assert [(d["message_id"], d["account"], d["cycle"]) for d in found] == [(printed.id, "ACC-2", CYCLE)]

    archived = loaded.var_dir / "archive" / found[0]["path"]
    archived.write_bytes(archived.read_bytes() + b"%tampered")
    refused = runner.invoke(args=["reprint", str(printed.id), "--out", str(out)])
    assert refused.exit_code == 1 and "does not match its recorded hash" in refused.output
    missing = runner.invoke(args=["reprint", "9999"])
    assert missing.exit_code == 1 and missing.output.strip() == "Error: no such message: 9999"


def test_a_document_that_cannot_be_archived_is_not_sent(loaded, runner):
    (loaded.var_dir / "archive").write_text("not a folder")  # the archive cannot be written
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE, "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 5 and report["state"] == "waiting" and report["statements"].get("sent", 0) == 0  # retried later
    assert all(reason.startswith("cannot archive the document") for reason in report["failure_reasons"])
    assert not (loaded.var_dir / "maildir").exists() or not list((loaded.var_dir / "maildir" / "new").iterdir())


def test_a_reprinted_batch_is_the_one_the_document_really_is_in():
    from channels import DeliveryResult
    from ccm.runs.deliver import print_batch_of

    found = DeliveryResult("sent", provider_id="run1-000000100/documents/000001-m000000105-abc.pdf")
    assert print_batch_of(found, "run1-000000105") == "run1-000000100"
    assert print_batch_of(DeliveryResult("sent", provider_id="documents/000001-x.pdf"), "run1-000000105") == "run1-000000105"

"""A communication whose document is a Typst template: the cycle renders it with Typst
(data formatted by the engine, the insert its decision chose in its Typst form, the terms
page), archives PDF/A-3b with PDF/UA-1 tags, prints and e-mails it, and records every
template version it used for the reprint."""
from __future__ import annotations

import io
import subprocess

from pypdf import PdfReader
from sqlalchemy import select

from ccm.communications import MONTHLY_STATEMENT, ensure_built_in
from ccm.models import ArchivedDocument, Communication, Message, Template, TemplateVersion
from signed_in import as_user

CYCLE = "2026-11"


def _text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def test_the_statement_cycle_renders_the_typst_statement(loaded, app, tmp_path):
    with loaded.db.session() as session:
        ensure_built_in(session)
        statement = session.scalar(select(Communication).where(Communication.name == MONTHLY_STATEMENT))
        statement.config = {**statement.config, "document": "statement/statement.typ", "static_pages": []}
    runner = app.test_cli_runner(env=as_user(loaded, "ben", "billing"))
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 0, result.output

    with loaded.db.reader() as session:
        printed = session.scalar(select(Message).where(Message.idempotency_key.endswith("ACC-2:statement")))
        chinese = session.scalar(select(Message).join(Message.customer).where(Message.customer.has(external_id="C-ZH"),
                                                                             Message.purpose == "statement"))
        used = {name for name, in session.execute(select(Template.name).join(TemplateVersion).where(
            TemplateVersion.id.in_(list(printed.template_versions.values()))))}
        archived = session.scalar(select(ArchivedDocument).where(ArchivedDocument.message_id == printed.id))
    assert printed.state == "sent" and archived.pdf_a
    assert {"statement/statement.typ", "statement/terms.typ", "typst/ccm.typ"} <= used
    assert any(name.startswith("inserts/") and name.endswith(".typ") for name in used)  # the decision's block, in Typst

    out = tmp_path / "reprint.pdf"
    assert runner.invoke(args=["reprint", str(printed.id), "--out", str(out)]).exit_code == 0
    document = out.read_bytes()
    catalog = PdfReader(io.BytesIO(document)).trailer["/Root"]
    metadata = catalog["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in metadata and b"<pdfuaid:part>1</pdfuaid:part>" in metadata
    text = _text(document)
    assert "Monthly statement" in text and "Terms and conditions" in text and "ACC-2" in text

    assert runner.invoke(args=["reprint", str(chinese.id), "--out", str(out)]).exit_code == 0
    assert "月度对账单" in _text(out.read_bytes())


def test_the_bill_cycle_sends_the_typst_bill_from_the_same_feed(loaded, app, tmp_path):
    """The built-in monthly bill (``ccm run bill``): the one-page Typst bill with its
    remittance slip, on paper for paper customers and attached to the e-mail of paperless
    ones, whose subject and text speak of a bill."""
    import email
    import email.policy

    runner = app.test_cli_runner(env=as_user(loaded, "ben", "billing"))
    result = runner.invoke(args=["run", "bill", "--cycle", CYCLE])
    assert result.exit_code == 0, result.output
    with loaded.db.reader() as session:
        bills = {m.customer.external_id: (m.channel, m.state, m.idempotency_key, m.provider_id, m.pages, m.id)
                 for m in session.scalars(select(Message).where(Message.purpose == "statement"))}
    assert bills["C-PRINT"][:2] == ("print", "sent") and bills["C-EMAIL"][:2] == ("email", "sent")
    assert bills["C-PRINT"][2].startswith("monthly-bill:2026-11:") and bills["C-PRINT"][4] == 1  # one page

    out = tmp_path / "bill.pdf"
    assert runner.invoke(args=["reprint", str(bills["C-PRINT"][5]), "--out", str(out)]).exit_code == 0
    text = _text(out.read_bytes())
    assert "Your bill" in text and "Detach and return this slip" in text and "Monthly statement" not in text
    mail_file = next((loaded.var_dir / "maildir" / "new").iterdir())
    mail = email.message_from_bytes(mail_file.read_bytes(), policy=email.policy.default)
    assert "bill for 2026-11" in mail["Subject"] and "Your bill for 2026-11 is ready." in mail.get_body(("plain",)).get_content()
    (attachment,) = mail.iter_attachments()
    attached = attachment.get_content()
    assert attachment.get_filename() == "bill-2026-11.pdf"
    assert "Detach and return this slip" in _text(attached)

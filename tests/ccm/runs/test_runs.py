"""The statement cycle end to end on the embedded default: real SQLite, real PDFs read
back, real maildir, SMS file and print folder."""
from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import mailbox
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import select

from ccm.models import Message, TemplateVersion
from ccm.runs import service
from documents import pdf_fonts
from statement_engines import html_statement

CYCLE = "2026-11"


def delivered_emails(var: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(var / "maildir", factory=None, create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.keys()]


def delivered_sms(var: Path) -> list[dict]:
    path = var / "sms" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def manifest_rows(var: Path) -> list[dict]:
    rows = []
    for manifest in sorted((var / "print").glob("run*/manifest.csv")):
        with manifest.open(newline="", encoding="utf-8") as fh:
            rows.extend(dict(row, batch=manifest.parent.name) for row in csv.DictReader(fh))
    return rows


def pdf_text(data: bytes) -> str:
    """The text of a PDF as poppler's pdftotext reads it (what a customer's viewer shows)."""
    import subprocess

    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout.decode("utf-8")


def test_statement_cycle_delivers_each_statement_once_by_the_right_channel(loaded, runner):
    var = loaded.var_dir
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 0, result.output
    assert "records in 6, planned 6 = sent 5 + suppressed 1 + dead 0: reconciled" in result.output

    report = json.loads(runner.invoke(args=["runs", "show", "1", "--json"]).output)
    assert report["complete"] and report["state"] == "completed"
    assert report["by_channel"] == {"email": {"sent": 2}, "print": {"sent": 3}, "sms": {"sent": 2}, "none": {"suppressed": 1}}
    assert report["suppressed_reasons"] == {"no deliverable channel: no e-mail address and no postal address": 1}
    assert report["costs"] == {"email": "0.01", "print": "1.80", "sms": "0.08", "total": "1.89"} and report["currency"] == "USD"

    emails = delivered_emails(var)
    assert sorted(m["To"].addresses[0].addr_spec for m in emails) == ["alice@example.com", "eve@example.com"]
    alice = next(m for m in emails if m["To"].addresses[0].addr_spec == "alice@example.com")
    assert alice["To"].addresses[0].display_name == "Alice <script>alert(1)</script> Smith"
    html = alice.get_body(("html",)).get_content()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert alice.get_body(("plain",)).get_content().strip()
    attachment = next(alice.iter_attachments())
    pdf = attachment.get_content()
    assert "ACC-1" in pdf_text(pdf)

    with loaded.db.session() as session:
        messages = {m.idempotency_key: m for m in session.scalars(select(Message))}
        sent_email = messages[f"monthly-statement:{CYCLE}:ACC-1:statement"]
        assert sent_email.artifact_sha256 == hashlib.sha256(pdf).hexdigest()
        assert sent_email.provider_id and sent_email.sent_at
        used = session.scalars(select(TemplateVersion).where(TemplateVersion.id.in_(sent_email.template_versions.values())))
        assert {v.template.name for v in used} >= {"statement/statement.typ", "statement/terms.typ", "email/statement_ready.html"}

    rows = manifest_rows(var)
    assert sorted(row["customer"] for row in rows) == ["C-NOCONSENT", "C-PRINT", "C-ZH"]
    for batch in {row["batch"] for row in rows}:
        stream = PdfReader(var / "print" / batch / "print-stream.pdf")
        assert len(stream.pages) == sum(int(r["pages"]) for r in rows if r["batch"] == batch)
    zh_pdf = (var / "print" / rows[0]["batch"] / next(r["file"] for r in rows if r["customer"] == "C-ZH")).read_bytes()
    assert "王小明" in pdf_text(zh_pdf)

    eve = next(m for m in emails if m["To"].addresses[0].addr_spec == "eve@example.com")
    assert eve["Bcc"] is None and "evil" not in str(eve["To"].addresses[0].addr_spec)
    huge_pdf = (var / "print" / rows[0]["batch"] / next(r["file"] for r in rows if r["customer"] == "C-NOCONSENT")).read_bytes()
    huge_text = pdf_text(huge_pdf)
    assert "US$9,999,999,999.99" in huge_text and "-US$12,345,678.90" in huge_text  # en_GB
    assert "US$10,000,000,024.67" in huge_text and "US$12,345,678.90" in huge_text  # debits, credits
    assert "<b>" in huge_text  # the description's HTML is printed as text, not markup
    assert "😀" in huge_text and draws_emoji(huge_pdf)  # the emoji is drawn, not an empty box

    sms = delivered_sms(var)
    assert sorted(s["to"] for s in sms) == ["+14155550102", "+8613800138000"]
    assert {s["encoding"] for s in sms} == {"GSM-7", "UCS-2"}


def test_running_the_same_cycle_twice_sends_nothing_twice(loaded, runner, feed_file):
    first = runner.invoke(args=["run", "statement", "--cycle", CYCLE])
    assert first.exit_code == 0, first.output
    counts = (len(delivered_emails(loaded.var_dir)), len(delivered_sms(loaded.var_dir)), len(manifest_rows(loaded.var_dir)))
    again = runner.invoke(args=["run", "statement", "--cycle", CYCLE, "--feed", str(feed_file)])
    assert again.exit_code == 0, again.output
    assert "planned 0 new messages" in again.output
    assert "unchanged" in again.output
    assert (len(delivered_emails(loaded.var_dir)), len(delivered_sms(loaded.var_dir)), len(manifest_rows(loaded.var_dir))) == counts


def test_a_missing_field_fails_that_message_with_its_reason_not_the_run(make_settings, tmp_path, customers_file, feed_file):
    import shutil

    from app import create_app
    from ccm.imports import import_customers, import_feed

    library = tmp_path / "library"
    shutil.copytree(Path(__file__).resolve().parents[3] / "templates", library)
    sms = library / "sms" / "payment_due.txt"
    sms.write_text(sms.read_text(encoding="utf-8") + "{{ customer.attributes.plan }}", encoding="utf-8")
    app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    import_customers(engine.db, customers_file, rejects_dir=tmp_path / "rejects", progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path / "rejects", progress=False)

    outcome = service.run_cycle(engine, "statement", CYCLE, progress=False)
    assert outcome.report.by_channel["sms"] == {"dead": 2}
    assert outcome.report.by_channel["email"] == {"sent": 2}
    (reason,) = outcome.report.failure_reasons
    assert "plan" in reason and "sms/payment_due.txt" in reason
    assert outcome.report.complete
    engine.close()


def test_run_show_of_an_unknown_run_is_one_line_and_exit_1(runner):
    result = runner.invoke(args=["runs", "show", "99"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no such run: 99"


def test_a_cycle_without_billing_data_is_a_clear_error(runner):
    result = runner.invoke(args=["run", "statement", "--cycle", "2026-10"])
    assert result.exit_code == 1
    assert "no billing data for cycle 2026-10" in result.output
    bad = runner.invoke(args=["run", "statement", "--cycle", "November"])
    assert bad.exit_code == 1 and "cycle must be YYYY-MM" in bad.output


def test_two_worker_processes_share_the_run_without_duplicates(loaded):
    loaded.settings["ccm"]["workers"] = 2
    loaded.settings["ccm"]["chunk_size"] = 1
    outcome = service.run_cycle(loaded, "statement", CYCLE, progress=False)
    assert outcome.report.complete
    assert len(delivered_emails(loaded.var_dir)) == 2
    assert len(delivered_sms(loaded.var_dir)) == 2
    assert len(manifest_rows(loaded.var_dir)) == 3


def test_a_template_syntax_error_stops_the_run_before_anything_is_planned(make_settings, tmp_path, customers_file, feed_file,
                                                                          caplog):
    import shutil

    from app import create_app
    from ccm.imports import import_customers, import_feed

    library = tmp_path / "library"
    shutil.copytree(Path(__file__).resolve().parents[3] / "templates", library)
    subject = library / "email" / "statement_ready.subject.txt"
    subject.write_text("Your statement {{ statement.period }\n", encoding="utf-8")
    app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    import_customers(engine.db, customers_file, rejects_dir=tmp_path / "rejects", progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path / "rejects", progress=False)

    result = app.test_cli_runner().invoke(args=["run", "statement", "--cycle", CYCLE])
    assert result.exit_code == 1
    assert "templates have errors, nothing was planned" in result.output
    # The library sync refuses the broken file (nothing of it is stored) and says why, with the line.
    assert "email/statement_ready.subject.txt: no approved version in the template store" in result.output
    assert "email/statement_ready.subject.txt, line 1, column 1: error: syntax: unexpected '}'" in caplog.text
    with engine.db.session() as session:
        assert session.scalars(select(Message)).first() is None
    engine.close()


def test_pause_resume_and_cancel_take_effect_and_keep_the_books_balanced(loaded, runner):
    from ccm.runs.plan import plan_run

    plan = plan_run(loaded, "statement", CYCLE)
    assert runner.invoke(args=["runs", "pause", str(plan.run_id)]).output.strip() == f"run {plan.run_id}: paused"
    paused = runner.invoke(args=["run", "statement", "--cycle", CYCLE])  # a paused run is not delivered
    assert paused.exit_code == 3 and "ccm runs resume" in paused.output
    assert not (loaded.var_dir / "maildir").exists() and not delivered_sms(loaded.var_dir)

    cancelled = runner.invoke(args=["runs", "cancel", str(plan.run_id)])
    assert cancelled.exit_code == 0
    report = json.loads(runner.invoke(args=["runs", "show", str(plan.run_id), "--json"]).stdout)
    assert report["state"] == "cancelled" and report["complete"]
    assert report["suppressed_reasons"]["run cancelled"] == 5 + 2  # five statements, two SMS reminders
    refused = runner.invoke(args=["runs", "resume", str(plan.run_id)])
    assert refused.exit_code == 1 and "cancelled" in refused.output
    again = runner.invoke(args=["runs", "pause", str(plan.run_id)])
    assert again.exit_code == 1 and "is cancelled; it cannot be paused" in again.output
    listing = json.loads(runner.invoke(args=["runs", "list", "--json"]).stdout)
    assert listing == [{"id": plan.run_id, "communication": "monthly-statement", "cycle": CYCLE, "state": "cancelled", "records_in": 6, "error": None}]


def test_run_control_at_the_cli_is_audited_and_checked_for_whoever_is_signed_in(loaded, runner):
    """No one signed in: the shell's user, audited as such; signed in: that user, who needs
    runs:control; with [console] cli_sign_in, signing in is required."""
    from ccm.runs.plan import plan_run
    from ccm.models.authoring import AuditLog
    from signed_in import as_user

    plan = plan_run(loaded, "statement", CYCLE)
    assert runner.invoke(args=["runs", "pause", str(plan.run_id)]).exit_code == 0
    refused = runner.invoke(args=["runs", "resume", str(plan.run_id)], env=as_user(loaded, "mia", "marketer"))
    assert refused.exit_code == 1 and "runs:control" in refused.output
    assert runner.invoke(args=["runs", "cancel", str(plan.run_id)], env=as_user(loaded, "bill", "billing")).exit_code == 0
    loaded.settings["console"]["cli_sign_in"] = True
    assert "sign in first" in runner.invoke(args=["runs", "pause", str(plan.run_id)]).output
    with loaded.db.reader() as session:
        entries = [(a.actor, a.action, a.object_name, a.details.get("via")) for a in session.scalars(
            select(AuditLog).where(AuditLog.object_type == "run").order_by(AuditLog.id))]
    assert [entry[1:] for entry in entries] == [("pause", str(plan.run_id), "cli"), ("cancel", str(plan.run_id), "cli")]
    assert entries[0][0].startswith("shell:") and entries[1][0] == "bill"


def test_print_production_sorts_by_postal_code_and_bundles_households(engine, tmp_path, write_bulk, runner, caplog):
    from ccm.imports import import_customers, import_feed

    customers, feed = write_bulk(tmp_path, 6, lines=2)
    rows = customers.read_text(encoding="utf-8").splitlines()
    # B-0001 and B-0004 live at one address (one envelope); postal codes out of order
    rows[2] = rows[2].replace("1 Oak Ave", "9 Elm St").replace("62701", "10001")
    rows[5] = rows[5].replace("4 Oak Ave", "9 Elm St").replace("62701", "10001")
    rows[3] = rows[3].replace("62701", "00501")
    customers.write_text("\n".join(rows) + "\n", encoding="utf-8")
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed, rejects_dir=tmp_path, progress=False)
    engine.settings["ccm"]["chunk_size"] = 2
    engine.settings["production"]["stream_documents"] = 4
    assert runner.invoke(args=["run", "statement", "--cycle", CYCLE]).exit_code == 0

    production = engine.var_dir / "print" / "production-run1"
    with (production / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["postal_code"] for r in rows] == sorted(r["postal_code"] for r in rows)
    assert [r["customer"] for r in rows[:3]] == ["B-0002", "B-0001", "B-0004"]
    assert rows[1]["envelope"] == rows[2]["envelope"] != rows[0]["envelope"]  # one household, one envelope
    assert rows[1]["envelope_pages"] == str(int(rows[1]["pages"]) + int(rows[2]["pages"]))
    streams = sorted(production.glob("stream-*.pdf"))
    assert len(streams) == 2 and {r["stream"] for r in rows} == {s.name for s in streams}
    again = runner.invoke(args=["run", "statement", "--cycle", CYCLE])  # nothing new; production left as it is
    assert again.exit_code == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "a production folder is not a crashed batch"
    assert sum(len(PdfReader(s).pages) for s in streams) == sum(int(r["pages"]) for r in rows)


def test_a_segment_can_be_the_audience_of_a_run(loaded, runner):
    made = runner.invoke(args=["segments", "create", "chinese", 'locale == "zh_Hans_CN" or paperless == false'])
    assert made.exit_code == 0, made.output
    assert runner.invoke(args=["segments", "refresh"]).exit_code == 0
    unknown = runner.invoke(args=["run", "statement", "--cycle", CYCLE, "--audience", "nope"])
    assert unknown.exit_code == 1 and "audience: no such segment: nope" in unknown.output
    result = runner.invoke(args=["run", "statement", "--cycle", CYCLE, "--audience", "chinese", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    with loaded.db.session() as session:
        from ccm.models import Customer

        customers = set(session.scalars(select(Customer.external_id).join(Message).where(Message.purpose == "statement")))
    assert customers == {"C-PRINT", "C-ZH"} and report["records_in"] == 2 and report["complete"]


def test_pdfs_use_the_approved_stylesheet_not_an_unapproved_edit_on_disk(make_settings, tmp_path, customers_file, feed_file):
    """Editing a CSS file on disk changes nothing until a new version is approved: runs
    render with the versions pinned from the template store."""
    import shutil

    from app import create_app
    from ccm.imports import import_customers, import_feed
    from ccm.authoring.store import sync_library

    library = tmp_path / "library"
    shutil.copytree(Path(__file__).resolve().parents[3] / "templates", library)
    app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    with engine.db.session() as session:
        sync_library(session, library)  # version 1 of everything, approved by the library
    css = library / "assets" / "statement.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n@page { size: A6; }\n", encoding="utf-8")  # not approved
    import_customers(engine.db, customers_file, rejects_dir=tmp_path, progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path, progress=False)
    assert service.run_cycle(engine, "statement", CYCLE, progress=False).report.complete
    batch = next((engine.var_dir / "print").glob("run*/manifest.csv")).parent
    first = PdfReader(next(batch.glob("documents/*.pdf"))).pages[0]
    assert round(float(first.mediabox.width) / 72 * 25.4) == 210  # still A4, not the unapproved A6
    engine.close()


def draws_emoji(pdf: bytes) -> bool:
    """An emoji font's glyphs are in the PDF: WeasyPrint embeds Noto Color Emoji by name,
    Typst draws its colour glyphs as a Type 3 font (pictures, no name)."""
    type3 = any(font.get_object().get("/Subtype") == "/Type3" for page in PdfReader(io.BytesIO(pdf)).pages
                for font in (page.get("/Resources", {}).get("/Font") or {}).values())
    return any("Emoji" in font for font in pdf_fonts(pdf)) or type3


def test_static_pages_are_rendered_once_per_locale_and_merged_into_every_statement(loaded):
    from ccm.runs.deliver import Worker
    from ccm.runs.plan import plan_run

    html_statement(loaded)  # static pages are the HTML statement's (the Typst one lays its terms out itself)
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    worker = Worker(loaded, run_id)
    worker.run()
    assert worker.stats.sent == 7
    # five statements (print and e-mail) in three locales: the terms page laid out three times
    assert sorted(locale for _, _, locale in worker.composer._static) == ["en_GB", "en_US", "zh_Hans_CN"]
    rows = manifest_rows(loaded.var_dir)
    zh = next(r for r in rows if r["customer"] == "C-ZH")
    pages = PdfReader(loaded.var_dir / "print" / zh["batch"] / zh["file"]).pages
    assert int(zh["pages"]) == len(pages) and "条款和条件" in pdf_text_of_page(pages[-1])
    with loaded.db.session() as session:
        message = session.scalar(select(Message).where(Message.idempotency_key.endswith("ACC-3:statement")))
        assert "statement/terms.html" in message.template_versions  # the reprint record names it too


def pdf_text_of_page(page) -> str:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    return pdf_text(buffer.getvalue())

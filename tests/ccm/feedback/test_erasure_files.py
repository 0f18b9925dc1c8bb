"""Erasure from everything the engine wrote: a customer who got a printed statement, an
e-mail and an SMS, and a rejected import row, is erased; then every file under the
engine's data folder and the database files are searched for them (raw bytes, file names,
the text of every PDF, the decoded parts of every e-mail): nothing is left, except what
``[erasure] retain`` keeps on purpose. On PostgreSQL the touched tables are vacuumed."""
from __future__ import annotations

import csv
import email
import email.policy
import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from ccm.imports import import_customers, import_feed
from ccm.models import Customer, Message
from ccm.runs import service
from signed_in import as_user

CYCLE = "2026-11"
COLUMNS = ["external_id", "name", "email", "phone", "address_line1", "address_line2", "city", "region", "postal_code",
           "country", "timezone", "paperless", "consent_email", "consent_sms"]
# The customer to erase: every value distinctive, so that any hit is theirs.
ERASED = {"external_id": "C-ERASE", "name": "Zebulon Quartermaine", "email": "zebulon.q@example.org", "phone": "+14155550177",
          "address_line1": "77 Wisteria Lane", "address_line2": "Flat Nine", "city": "Quahogville", "region": "AK",
          "postal_code": "99577-4410", "country": "US", "timezone": "America/Chicago", "paperless": "no",
          "consent_email": "yes", "consent_sms": "yes"}
ACCOUNT = "ACC-ZQ-7781"
TRACES = [ERASED[key] for key in ("external_id", "name", "email", "address_line1", "address_line2", "city", "postal_code")]
TRACES += ["4155550177", ACCOUNT]  # the phone number with or without its +
OTHERS = [
    dict(ERASED, external_id="C-OTHER", name="Olga Other", email="olga@example.com", phone="+14155550188",
         address_line1="5 Elm Road", address_line2="", city="Springfield", postal_code="62701"),
    dict(ERASED, external_id="C-MAIL", name="Mila Mail", email="mila@example.com", phone="", paperless="yes",
         address_line1="9 Oak Street", address_line2="", city="Springfield", postal_code="62702"),
]


def write_rows(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_feed(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for external_id, account in (("C-ERASE", ACCOUNT), ("C-OTHER", "ACC-O-1"), ("C-MAIL", "ACC-M-1")):
            fh.write(json.dumps({
                "account": account, "customer_id": external_id, "period": CYCLE, "opening_balance": "10.00",
                "closing_balance": "22.34", "amount_due": "22.34", "due_date": "2026-12-15", "currency": "USD",
                "lines": [{"date": f"{CYCLE}-03", "description": "Usage", "amount": "12.34"}],
            }) + "\n")
    return path


def start(make_settings, folder: Path, **sections: dict):
    """The three customers imported, a rejected row of the one to erase (and one of someone
    else), the statement cycle (print, SMS reminders, e-mail) and the weekly deals (e-mail) sent."""
    app = create_app(make_settings(folder, **sections))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    rejects = engine.var_dir / "rejects"
    assert import_customers(engine.db, write_rows(folder / "customers.csv", [ERASED, *OTHERS]), rejects_dir=rejects,
                            progress=False).rejected == 0
    bad = [dict(ERASED, phone="12"), dict(OTHERS[0], external_id="C-BAD", phone="34")]
    assert import_customers(engine.db, write_rows(folder / "update.csv", bad), rejects_dir=rejects, progress=False).rejected == 2
    assert import_feed(engine.db, write_feed(folder / "feed.jsonl"), rejects_dir=rejects, progress=False).rejected == 0
    assert service.run_cycle(engine, "statement", CYCLE, progress=False).report.complete
    assert service.run_cycle(engine, "deals", "2026-11-30", progress=False).report.complete
    with engine.db.reader() as session:
        got = set(session.execute(select(Message.channel, Message.state).join(Customer).where(Customer.external_id == "C-ERASE")))
    assert got == {("print", "sent"), ("sms", "sent"), ("email", "sent")}
    return app, engine


def pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode("utf-8")


def readable(path: Path) -> list[bytes]:
    """The bytes of a file and what a reader sees in them: a PDF's text, an e-mail's decoded parts."""
    data = path.read_bytes()
    seen = [data, path.as_posix().encode("utf-8")]
    if data.startswith(b"%PDF"):
        seen.append(pdf_text(data).encode("utf-8"))
    if "maildir" in path.parts:
        for part in email.message_from_bytes(data, policy=email.policy.default).walk():
            payload = part.get_payload(decode=True) or b""
            seen.append(payload)
            if payload.startswith(b"%PDF"):
                seen.append(pdf_text(payload).encode("utf-8"))
    return seen


def hits(var: Path) -> dict[str, set[str]]:
    """Each trace of the customer -> the files (relative to ``var``) that hold it."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for p in var.rglob("*") if p.is_file()):
        texts = [text.lower() for text in readable(path)]
        for trace in TRACES:
            if any(trace.lower().encode("utf-8") in text for text in texts):
                found.setdefault(trace, set()).add(path.relative_to(var).as_posix())
    return found


def checkpoint(engine) -> None:
    raw = engine.db.engine.raw_connection()
    try:
        assert raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        raw.close()


def test_erasure_leaves_nothing_of_the_customer_in_the_engines_files(make_settings, tmp_path):
    app, engine = start(make_settings, tmp_path)
    var = engine.var_dir
    before = hits(var)
    checkpoint(engine)  # and now into the main file, as in a database that has run a while
    before = {trace: files | hits(var).get(trace, set()) for trace, files in before.items()}
    # The search finds them everywhere the engine wrote them (else "0 hits" would prove nothing).
    places = {place.split("/")[0] for files in before.values() for place in files}
    assert {"ccm.db", "ccm.db-wal", "archive", "print", "maildir", "sms", "rejects"} <= places, places
    assert any(place.startswith("print/production-run1/") for place in before[ERASED["name"]])
    assert any(place.startswith("print/run1-") and place.endswith("print-stream.pdf") for place in before[ERASED["name"]])

    result = app.test_cli_runner().invoke(args=["customers", "erase", "C-ERASE", "--yes"], env=as_user(engine, "sue", "service"))
    assert result.exit_code == 0, result.output
    assert hits(var) == {}
    assert (var / "ccm.db-wal").stat().st_size == 0  # checkpointed and emptied
    out = result.output
    for line in ("archive: 1 archived PDFs deleted", "print: 1 printed documents taken out of their print batches; "
                 "rebuilt without them: run1-000000001, production-run1", "email: 1 e-mails deleted from the maildir",
                 "sms: 1 SMS lines dropped from the SMS file; rebuilt without them: outbox.jsonl",
                 "rejects: 1 rows of rejects files dropped",
                 "write-ahead log checkpointed into the main file and emptied", "kept: nothing"):
        assert line in out, out
    assert "3 messages" in out and "1 statements" in out and "2 addresses kept only as keyed hashes" in out

    # Everyone else's documents, lines, e-mails and rejected rows are still there, and the print files still add up.
    batch = next((var / "print").glob("run1-*"))
    manifest = list(csv.DictReader((batch / "manifest.csv").read_text(encoding="utf-8").splitlines()))
    assert [row["customer"] for row in manifest] == ["C-OTHER"]
    assert pdf_text((batch / "print-stream.pdf").read_bytes()).count("Olga Other") >= 1
    production = list(csv.DictReader((var / "print" / "production-run1" / "manifest.csv").read_text(encoding="utf-8").splitlines()))
    assert [row["customer"] for row in production] == ["C-OTHER"]
    assert "Olga Other" in pdf_text((var / "print" / "production-run1" / "stream-0001.pdf").read_bytes())
    assert [json.loads(line)["to"] for line in (var / "sms" / "outbox.jsonl").read_text().splitlines()] == ["+14155550188"]
    assert len(list((var / "maildir" / "new").iterdir())) == 3  # Mila's statement, Olga's and Mila's deals
    (update_rejects,) = (var / "rejects").glob("update.customers.*.rejects.csv")
    assert "C-BAD" in update_rejects.read_text(encoding="utf-8-sig")


def test_what_retention_keeps_stays_and_the_output_says_why(make_settings, tmp_path):
    app, engine = start(make_settings, tmp_path, erasure={"retain": ["archive"]})
    var = engine.var_dir
    with engine.db.reader() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "C-ERASE"))
    archived = list((var / "archive").rglob("*.pdf"))
    result = app.test_cli_runner().invoke(args=["customers", "erase", "C-ERASE", "--yes"], env=as_user(engine, "sue", "service"))
    assert result.exit_code == 0, result.output
    assert "kept:\n  archive: 1 archived PDFs, kept by [erasure] retain" in result.output
    ours = [path for path in archived if ACCOUNT in path.as_posix()]
    assert len(ours) == 1 and ours[0].exists() and ERASED["name"] in pdf_text(ours[0].read_bytes())
    left = hits(var)
    assert all(place.startswith("archive/") for files in left.values() for place in files if "ccm.db" not in place), left
    # In the database only the archive's index keeps the account (for reprints); none of the rest.
    assert {trace for trace, files in left.items() if any("ccm.db" in place for place in files)} <= {ACCOUNT}
    dump = [line for line in engine.db.engine.raw_connection().iterdump() if ACCOUNT in line]
    assert dump and all(line.startswith('INSERT INTO "archived_documents"') for line in dump)
    with engine.db.reader() as session:
        assert session.get(Customer, customer_id).name == "(erased)"


def test_with_smtp_the_output_says_the_e_mail_is_out_of_reach_and_nothing_is_left_here(make_settings, tmp_path, smtp_server):
    server = smtp_server()
    app, engine = start(make_settings, tmp_path, channels={"email": server.url()})
    assert any(b"Zebulon Quartermaine" in message for message in server.handler.messages)
    result = app.test_cli_runner().invoke(args=["customers", "erase", "C-ERASE", "--yes"], env=as_user(engine, "sue", "service"))
    assert result.exit_code == 0, result.output
    assert f"kept:\n  email: 1 e-mails, delivered through smtp://127.0.0.1:{server.port}" in result.output
    assert "which keeps no copy here; what the recipient received is out of reach" in result.output
    assert hits(engine.var_dir) == {}


def test_retention_names_only_what_erasure_can_keep():
    from ccm.settings import SettingsError, load_settings

    assert load_settings({"erasure": {"retain": ["archive", "print"]}})["erasure"]["retain"] == ["archive", "print"]
    with pytest.raises(SettingsError, match="erasure.retain: no such kind 'archives' \\(one of: archive, print, email, sms, inbox, webhook, rejects\\)"):
        load_settings({"erasure": {"retain": ["archives"]}})


def test_an_erasure_with_a_message_being_delivered_is_refused(make_settings, tmp_path):
    app, engine = start(make_settings, tmp_path)
    with engine.db.session() as session:
        message = session.scalar(select(Message).join(Customer).where(Customer.external_id == "C-ERASE").limit(1))
        message.state = "claimed"
    result = app.test_cli_runner().invoke(args=["customers", "erase", "C-ERASE", "--yes"], env=as_user(engine, "sue", "service"))
    assert result.exit_code == 1 and "being delivered in run" in result.output
    assert hits(engine.var_dir)[ERASED["name"]]  # nothing touched


@pytest.mark.postgres
def test_on_postgresql_the_touched_tables_are_vacuumed(make_settings, tmp_path, postgres_url):
    app, engine = start(make_settings, tmp_path, ccm={"database_url": postgres_url})
    result = app.test_cli_runner().invoke(args=["customers", "erase", "C-ERASE", "--yes"], env=as_user(engine, "sue", "service"))
    assert result.exit_code == 0, result.output
    assert "PostgreSQL: VACUUM of" in result.output and "customers" in result.output
    assert hits(engine.var_dir) == {}
    with engine.db.engine.connect() as connection:
        vacuumed = dict(connection.exec_driver_sql(
            "SELECT relname, last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname IN ('customers', 'messages')").all())
    assert vacuumed == {"customers": True, "messages": True}
    engine.close()

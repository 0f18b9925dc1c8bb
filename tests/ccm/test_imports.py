"""Customer and billing feed imports: validation, rejects, upserts, hostile input, the CLI."""
from __future__ import annotations

import csv
import gzip
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ccm.db import Database
from ccm.imports import ImportFileError, import_customers, import_feed
from ccm.models import Consent, Customer, FeedRecord

HEADER = "external_id,name,email,phone,address_line1,postal_code,country,locale,timezone,consent_email,consent_sms,paperless,attr_plan"


@pytest.fixture()
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/ccm.db")
    database.upgrade()
    yield database
    database.dispose()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rejects(report) -> list[dict[str, str]]:
    if report.rejects_path is None:
        return []
    with open(report.rejects_path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def customers(db) -> dict[str, Customer]:
    with db.session() as session:
        rows = session.scalars(select(Customer)).all()
        for row in rows:
            _ = row.consents
        return {row.external_id: row for row in rows}


def run_customers(db, path, tmp_path):
    return import_customers(db, path, rejects_dir=tmp_path / "rejects", progress=False)


def run_feed(db, path, tmp_path):
    return import_feed(db, path, rejects_dir=tmp_path / "rejects", progress=False)


# --------------------------------------------------------------------------- customers


def test_customers_csv_import_normalises_and_stores(db, tmp_path):
    path = write(
        tmp_path / "customers.csv",
        HEADER + "\n"
        "C1,Ada Lovelace,Ada@Example.COM,(201) 555-0123,12 Main St.,62701,us,en-us,america/chicago,yes,service,yes,gold\n"
        "C2,张伟,zhang@example.cn,138 0013 8000,上海市浦东新区世纪大道100号,200120,CN,zh-CN,Asia/Shanghai,service;marketing,no,,basic\n",
    )
    report = run_customers(db, path, tmp_path)
    assert (report.rows, report.inserted, report.rejected, report.rejects_path) == (2, 2, 0, None)
    stored = customers(db)
    ada, zhang = stored["C1"], stored["C2"]
    assert (ada.email, ada.phone, ada.country, ada.locale, ada.timezone) == (
        "Ada@example.com", "+12015550123", "US", "en_US", "America/Chicago",
    )  # fmt: skip
    assert ada.paperless is True and ada.attributes == {"plan": "gold"}
    assert (zhang.phone, zhang.locale, zhang.paperless) == ("+8613800138000", "zh_Hans_CN", False)
    grants = {(c.channel, c.purpose): c.granted for c in ada.consents}
    assert grants == {("email", "service"): True, ("email", "marketing"): True, ("sms", "service"): True, ("sms", "marketing"): False}
    assert ada.has_consent("sms", "service") and not ada.has_consent("sms", "marketing")
    assert all(c.source == "import:customers.csv" for c in ada.consents)
    assert "1 " not in report.summary() or "2 rows" in report.summary()


def test_customers_jsonl_with_consent_objects_and_attributes(db, tmp_path):
    lines = [
        {"external_id": "J1", "name": "Jo", "email": "jo@example.com", "consent_email": {"service": True, "marketing": False},
         "consent_sms": ["service"], "consent_print": False, "consent_at": "2026-01-02T03:04:05+01:00",
         "consent_source": "web form", "attributes": {"plan": "plus", "score": 12.5, "vip": True, "visits": 3}},
        {"external_id": 42, "name": "Numeric id", "paperless": True},
    ]  # fmt: skip
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    report = run_customers(db, path, tmp_path)
    assert (report.inserted, report.rejected) == (2, 0)
    stored = customers(db)
    jo = stored["J1"]
    assert jo.attributes == {"plan": "plus", "score": 12.5, "vip": True, "visits": 3}
    grants = {(c.channel, c.purpose): c.granted for c in jo.consents}
    assert grants[("email", "service")] and not grants[("email", "marketing")]
    assert grants[("sms", "service")] and not grants[("print", "service")]
    assert {c.source for c in jo.consents} == {"import:c.jsonl: web form"}
    assert {c.recorded_at.isoformat() for c in jo.consents} == {"2026-01-02T02:04:05"}
    assert stored["42"].paperless is True and stored["42"].consents == []


def test_household_key_same_for_one_address(db, tmp_path):
    path = write(
        tmp_path / "h.csv",
        "external_id,name,address_line1,address_line2,postal_code,country\n"
        "H1,Ann,12 Main St.,Apt 4,62701,US\n"
        "H2,Bob,  12  MAIN st ,apt 4,62701,us\n"
        "H3,Cy,13 Main St,Apt 4,62701,US\n"
        "H4,Di,,,,\n",
    )
    run_customers(db, path, tmp_path)
    stored = customers(db)
    assert stored["H1"].household_key and stored["H1"].household_key == stored["H2"].household_key
    assert stored["H3"].household_key != stored["H1"].household_key
    assert stored["H4"].household_key is None


def test_reimport_changes_nothing_and_a_change_updates(db, tmp_path):
    body = HEADER + "\n" + "\n".join(
        f"C{n},Name {n},n{n}@example.com,+1201555{n:04d},{n} Main St,62701,US,en_US,UTC,yes,no,no,basic" for n in range(120)
    )  # fmt: skip
    path = write(tmp_path / "many.csv", body + "\n")
    first = run_customers(db, path, tmp_path)
    assert (first.rows, first.inserted) == (120, 120)
    before = {c.external_id: (c.updated_at, [(k.channel, k.purpose, k.recorded_at) for k in c.consents]) for c in customers(db).values()}
    again = run_customers(db, path, tmp_path)
    assert (again.unchanged, again.inserted, again.updated, again.rejected) == (120, 0, 0, 0)
    after = {c.external_id: (c.updated_at, [(k.channel, k.purpose, k.recorded_at) for k in c.consents]) for c in customers(db).values()}
    assert after == before
    changed = body.replace("C7,Name 7,n7@example.com", "C7,Name Seven,n7@example.com").replace(
        "C8,Name 8,n8@example.com,+12015550008,8 Main St,62701,US,en_US,UTC,yes,no", "C8,Name 8,n8@example.com,+12015550008,8 Main St,62701,US,en_US,UTC,yes,yes"
    )  # fmt: skip
    write(path, changed + "\n")
    third = run_customers(db, path, tmp_path)
    assert (third.updated, third.unchanged) == (2, 118)
    stored = customers(db)
    assert stored["C7"].name == "Name Seven" and stored["C7"].updated_at > before["C7"][0]
    c8 = {(k.channel, k.purpose): k for k in stored["C8"].consents}
    assert c8[("sms", "service")].granted is True
    old = {(ch, p): at for ch, p, at in before["C8"][1]}
    assert c8[("email", "service")].recorded_at == old[("email", "service")]  # unchanged grant keeps its date
    assert c8[("sms", "service")].recorded_at > old[("sms", "service")]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Consent)) == 120 * 4


def test_rejects_file_lines_and_the_rest_goes_on(db, tmp_path):
    path = write(
        tmp_path / "mixed.csv",
        "external_id,name,email,timezone,attr_note\n"  # line 1
        "R1,Good One,one@example.com,UTC,ok\n"  # line 2
        'R2,"Multi\nline\r\nname",two@example.com,UTC,"note\nover lines"\n'  # lines 3-6
        "R3,Bad Mail,not-an-email,UTC,x\n"  # line 7
        "\n"  # line 8, blank
        "R4,Bad Zone,four@example.com,Mars/Base,x\n"  # line 9
        "R1,Again,again@example.com,UTC,x\n"  # line 10: duplicate
        "R5,,five@example.com,Nowhere,x\n"  # line 11: two errors
        "R6,Too,many,values,here,extra\n"  # line 12
        "R7,Last Good,seven@example.com,UTC,=cmd|' /C calc'!A0\n",  # line 13
    )
    report = run_customers(db, path, tmp_path)
    assert (report.rows, report.inserted, report.rejected) == (8, 3, 5)
    assert report.rows == report.inserted + report.updated + report.unchanged + report.rejected
    assert re.fullmatch(r"mixed\.customers\.\d{8}T\d{6}Z\.rejects\.csv", Path(report.rejects_path).name)
    assert Path(report.rejects_path).parent == tmp_path / "rejects"
    assert {r["file"] for r in rejects(report)} == {str(path)}  # each row names its source file
    got = [(r["line"], r["field"], r["reason"]) for r in rejects(report)]
    assert got == [
        ("7", "email", got[0][2]),
        ("9", "timezone", got[1][2]),
        ("10", "external_id", "duplicate of line 2"),
        ("11", "name", "is required"),
        ("11", "timezone", got[4][2]),
        ("12", "", "has 6 values, the header has 5"),
    ]
    assert "not a valid e-mail address" in got[0][2]
    assert rejects(report)[0]["raw"] == "R3,Bad Mail,not-an-email,UTC,x"
    stored = customers(db)
    assert stored["R2"].name == "Multi line name"  # CR/LF folded in single-line fields
    assert stored["R2"].attributes == {"note": "note over lines"}
    assert stored["R7"].attributes == {"note": "=cmd|' /C calc'!A0"}  # stored as is; only the rejects file escapes
    assert "5 rejected" in report.summary() and report.rejects_path in report.summary()


def test_arabic_and_hebrew_are_accepted_other_right_to_left_locales_rejected_with_file_line_and_field(db, tmp_path):
    """Arabic and Hebrew documents are laid out right to left; Persian, Urdu... are not yet (issue 13)."""
    path = write(tmp_path / "rtl.csv", "external_id,name,email,locale\n"
                                       "L1,Lena,l1@example.com,en_GB\n"
                                       "L2,Layla,l2@example.com,ar_EG\n"
                                       "L3,Noa,l3@example.com,he-IL\n"
                                       "L4,Dina,l4@example.com,iw\n"
                                       "L5,Sara,l5@example.com,fa_IR\n"
                                       "L6,Amna,l6@example.com,ur\n")
    report = run_customers(db, path, tmp_path)
    assert (report.inserted, report.rejected) == (4, 2)
    assert Path(report.rejects_path).name.startswith("rtl.customers.")
    reason = "right-to-left locales other than Arabic and Hebrew are not supported yet: documents would print wrong"
    found = [(r["line"], r["field"], r["reason"]) for r in rejects(report)]
    assert found == [("6", "locale", reason), ("7", "locale", reason)]
    stored = customers(db)
    assert set(stored) == {"L1", "L2", "L3", "L4"}
    assert (stored["L2"].locale, stored["L3"].locale, stored["L4"].locale) == ("ar_EG", "he_IL", "he_IL")


def test_rejects_raw_is_escaped_against_formulas(db, tmp_path):
    path = write(tmp_path / "f.csv", "external_id,name,email\n=HYPERLINK(\"http://x\"),Evil,bad\n@SUM(1),Evil,bad\n")
    report = run_customers(db, path, tmp_path)
    raws = [r["raw"] for r in rejects(report)]
    assert raws == ["'=HYPERLINK(\"http://x\"),Evil,bad", "'@SUM(1),Evil,bad"]


def test_hostile_inputs_do_not_crash(db, tmp_path):
    huge = "A" * 1_000_000
    body = (
        "\ufeffexternal_id,Name,email,unknown_col,attr_blob\n"
        "X1,<script>alert(1)</script> & Co,x1@example.com,zzz,\n"
        "X2,😀 Émilie 张,x2@example.com,,\n"
        f"X3,{huge},x3@example.com,,\n"
        f"X4,Big attr,x4@example.com,,{huge}\n"
        "X5\n"
        ",,,,\n"
        "X6,\"quoted, comma\",,,\n"
    )
    path = write(tmp_path / "hostile.csv", body)
    report = run_customers(db, path, tmp_path)
    assert (report.rows, report.inserted, report.rejected) == (6, 3, 3)
    assert report.ignored_columns == ["unknown_col"]
    stored = customers(db)
    assert stored["X1"].name == "<script>alert(1)</script> & Co"
    assert stored["X2"].name == "😀 Émilie 张"
    assert stored["X6"].name == "quoted, comma"
    reasons = {(r["line"], r["field"]): r for r in rejects(report)}
    assert reasons[("4", "name")]["reason"] == "longer than 200 characters"
    assert reasons[("4", "name")]["raw"].endswith("[truncated]") and len(reasons[("4", "name")]["raw"]) < 20_000
    assert reasons[("5", "attributes.blob")]["reason"] == "longer than 1000 characters"
    assert ("6", "") in reasons


def test_hostile_jsonl(db, tmp_path):
    body = "\n".join(
        [
            '{"external_id": "J1", "name": "ok"}',
            "not json",
            "[1, 2]",
            '{"external_id": "J2", "name": "nan", "attributes": {"x": NaN}}',
            "[" * 100_000 + "]" * 100_000,
            '{"external_id": "J3", "name": ["list"]}',
            '{"external_id": "J4", "name": "nested", "attributes": {"x": {"y": 1}}}',
            "",
            '{"external_id": "J5", "name": "Line\\r\\nBreak", "extra": 1}',
        ]
    )
    path = write(tmp_path / "hostile.ndjson", body)
    report = run_customers(db, path, tmp_path)
    assert (report.rows, report.inserted, report.rejected) == (8, 2, 6)
    assert report.ignored_columns == ["extra"]
    assert [r["line"] for r in rejects(report)] == ["2", "3", "4", "5", "6", "7"]
    assert customers(db)["J5"].name == "Line Break"


def test_gzip_and_semicolons(db, tmp_path):
    path = tmp_path / "c.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("external_id;name;email\nG1;Gee;g@example.com\nG2;Bad;nope\n")
    report = run_customers(db, path, tmp_path)
    assert (report.inserted, report.rejected) == (1, 1)
    assert Path(report.rejects_path).name.startswith("c.customers.") and report.rejects_path.endswith(".rejects.csv")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "no such file"),
        ("latin1.csv", "external_id,name\nL1,Müller\n".encode("latin-1"), "not UTF-8 text (line 2)"),
        ("people.xlsx", b"PK", "not a .csv, .jsonl or .ndjson"),
        ("noheader.csv", b"external_id,email\nC1,a@example.com\n", "missing required column(s) name"),
        ("empty.csv", b"\n\n", "empty file"),
        ("dup.csv", b"external_id,name,name\n", "appears twice"),
        ("broken.csv.gz", b"not gzip at all", "cannot read"),
    ],
)
def test_unreadable_files(db, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError) as info:
        run_customers(db, path, tmp_path)
    text = str(info.value)
    assert message in text and name in text and "\n" not in text
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_every_rejects_file_is_kept_and_names_its_source(db, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = write(tmp_path / "a" / "customers.csv", "external_id,name,email\nA1,Ay,bad\n")
    second = write(tmp_path / "b" / "customers.csv", "external_id,name,email\nB1,Bee,worse\n")
    reports = [run_customers(db, first, tmp_path), run_customers(db, second, tmp_path)]
    paths = [report.rejects_path for report in reports]
    assert len(set(paths)) == 2 and all(Path(p).exists() for p in paths)  # the second did not overwrite the first
    assert [[row["file"] for row in rejects(report)] for report in reports] == [[str(first)], [str(second)]]
    write(first, "external_id,name,email\nA1,Ay,a@example.com\n")
    clean = run_customers(db, first, tmp_path)
    assert clean.rejects_path is None and all(Path(p).exists() for p in paths)  # a clean import removes none


def test_twenty_thousand_customers_in_one_file(db, tmp_path):
    body = "external_id,name,email,phone,country,consent_email\n" + "".join(
        f"P{n},Person {n},p{n}@example.com,+1201555{n % 10000:04d},US,yes\n" for n in range(20_000)
    )
    path = write(tmp_path / "big.csv", body)
    report = run_customers(db, path, tmp_path)
    assert report.inserted == 20_000 and report.rejected == 0


# --------------------------------------------------------------------------- feed

FEED_HEADER = "account,customer_id,period,opening_balance,closing_balance,amount_due,due_date,currency,line_date,line_description,line_amount"


@pytest.fixture()
def known_customers(db, tmp_path):
    path = write(tmp_path / "known.csv", "external_id,name\nK1,Kay\nK2,Kim\nK3,Kit\n")
    run_customers(db, path, tmp_path)


def statement(**overrides):
    data = {
        "account": "A1", "customer_id": "K1", "period": "2026-11", "opening_balance": "100.00",
        "closing_balance": "60.50", "amount_due": "60.50", "due_date": "2026-12-15", "currency": "USD",
        "lines": [{"date": "2026-11-02", "description": "Payment", "amount": "-100.00"},
                  {"date": "2026-11-20", "description": "Usage", "amount": "60.50"}],
    }  # fmt: skip
    data.update(overrides)
    return data


def test_feed_jsonl_checks_and_stores(db, tmp_path, known_customers):
    rows = [
        statement(),
        statement(account="A2", customer_id="NOPE"),
        statement(account="A3", closing_balance="61.00", amount_due="61.00"),
        statement(account="A4", amount_due="-1.00"),
        statement(account="A5", amount_due="70.00"),
        statement(account="A6", lines=[{"date": "2027-03-01", "description": "Late", "amount": "-39.50"}]),
        statement(account="A7", customer_id="K2", opening_balance="0", closing_balance="-5.00", amount_due="0",
                  lines=[{"date": "2026-11-03", "description": "Credit", "amount": -5}]),  # fmt: skip
        statement(account="A1"),  # duplicate
        statement(account="A8", currency="JPY"),  # decimals not allowed in yen
        statement(account="A9", opening_balance="1e20"),
        statement(account="A10", customer_id="K3", opening_balance="899999999999999", closing_balance="899999999999999",
                  amount_due="0", lines=[]),  # fmt: skip
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(json.dumps(row) for row in rows) + "\n")
    report = run_feed(db, path, tmp_path)
    assert (report.rows, report.inserted, report.rejected) == (11, 3, 8)
    got = [(r["line"], r["field"], r["reason"]) for r in rejects(report)]
    assert ("2", "customer_id", "unknown customer") in got
    assert ("3", "closing_balance", "is not opening balance + lines: expected 60.50") in got
    assert ("4", "amount_due", "negative amount due") in got
    assert ("5", "amount_due", "more than the closing balance") in got
    assert ("6", "lines[0].date", "line date more than 31 days outside the period 2026-11") in got
    assert ("8", "account", "statement for this account and period is a duplicate of line 1") in got
    assert ("9", "closing_balance", "more than 0 decimals for JPY") in got  # 100.00 yen is fine, 60.50 is not
    assert ("10", "opening_balance", "not a number (write it like 1234.56)") in got
    with db.session() as session:
        records = {r.account: r for r in session.scalars(select(FeedRecord))}
    a1 = records["A1"]
    assert (a1.opening_balance, a1.closing_balance, a1.amount_due) == (Decimal("100.00"), Decimal("60.50"), Decimal("60.50"))
    assert a1.lines == [{"date": "2026-11-02", "description": "Payment", "amount": "-100.00"},
                        {"date": "2026-11-20", "description": "Usage", "amount": "60.50"}]  # fmt: skip
    assert (a1.source_file, a1.source_line, a1.due_date.isoformat()) == ("feed.jsonl", 1, "2026-12-15")
    assert records["A7"].lines[0]["amount"] == "-5.00"
    again = run_feed(db, path, tmp_path)
    assert (again.unchanged, again.inserted, again.updated) == (3, 0, 0)


def test_feed_csv_groups_rows_of_a_statement(db, tmp_path, known_customers):
    s1 = "A1,K1,2026-11,10.00,25.00,25.00,2026-12-15,USD"
    s2 = "A2,K2,2026-11,0,7.5,7.5,2026-12-15,USD"
    s3 = "A3,K3,2026-11,0,5.00,5.00,2026-12-15,USD"
    body = (
        FEED_HEADER + "\n"
        f"{s1},2026-11-01,Usage,10.00\n"  # 2
        f'{s2},2026-11-02,"Two-line\ndescription",7.50\n'  # 3-4
        f"{s1},2026-11-05,Fee,5.00\n"  # 5: same statement as line 2, not adjacent
        f"{s3},2026-11-01,Usage,5.00\n"  # 6
        f"{s3.replace('5.00,5.00', '6.00,6.00')},2026-11-02,Usage,1.00\n"  # 7: header differs
        f"A4,K1,2026-11,0,0,0,2026-12-15,USD,,,\n"  # 8: statement without lines
        f"A5,K1,2026-11,0,1.00,1.00,2026-12-15,USD,2026-11-01,Usage,1.005\n"  # 9: too many decimals
        f"A5,K1,2026-11,0,1.00,1.00,2026-12-15,USD,2026-11-02,Usage,0\n"  # 10
    )
    path = write(tmp_path / "feed.csv", body)
    report = run_feed(db, path, tmp_path)
    assert (report.rows, report.inserted, report.rejected) == (5, 3, 2)
    got = [(r["line"], r["field"], r["reason"]) for r in rejects(report)]
    assert got == [
        ("7", "closing_balance", "differs from line 6 of the same statement"),
        ("7", "amount_due", "differs from line 6 of the same statement"),
        ("6", "", "part of a rejected statement (see line 7)"),
        ("9", "line_amount", "more than 2 decimals for USD"),
        ("10", "", "part of a rejected statement (see line 9)"),
    ]
    with db.session() as session:
        records = {r.account: r for r in session.scalars(select(FeedRecord))}
    assert [line["amount"] for line in records["A1"].lines] == ["10.00", "5.00"]
    assert records["A2"].lines[0]["description"] == "Two-line description"
    assert records["A4"].lines == [] and records["A1"].source_line == 2
    changed = body.replace(f"{s1},2026-11-05,Fee,5.00", f"{s1},2026-11-06,Fee,5.00")
    write(path, changed)
    again = run_feed(db, path, tmp_path)
    assert (again.updated, again.unchanged) == (1, 2)


def test_feed_missing_header_column(db, tmp_path):
    path = write(tmp_path / "f.csv", "account,customer_id,period\nA1,K1,2026-11\n")
    with pytest.raises(ImportFileError, match="f.csv: missing required column"):
        run_feed(db, path, tmp_path)


# --------------------------------------------------------------------------- CLI


@pytest.fixture()
def runner(tmp_path):
    from app import create_app

    app = create_app({"ccm": {"database_url": f"sqlite:///{tmp_path}/cli.db", "var_dir": str(tmp_path / "var")}})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    yield runner
    app.extensions["ccm"].close()


def test_cli_import_reports_and_exit_codes(runner, tmp_path):
    path = write(tmp_path / "people.csv", "external_id,name,email\nP1,Pat,p@example.com\nP2,Bad,nope\n")
    result = runner.invoke(args=["customers", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 rows: 1 inserted, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert len(list((tmp_path / "var" / "rejects").glob("people.customers.*.rejects.csv"))) == 1
    result = runner.invoke(args=["customers", "import", str(tmp_path / "absent.csv")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {tmp_path / 'absent.csv'}: no such file"]
    bad = write(tmp_path / "nohead.csv", "id,label\n1,x\n")
    result = runner.invoke(args=["customers", "import", str(bad)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    feed = write(tmp_path / "f.jsonl", json.dumps(statement(customer_id="P1")) + "\n")
    result = runner.invoke(args=["feed", "import", str(feed), "--rejects-dir", str(tmp_path / "rj")])
    assert result.exit_code == 0 and "1 statements: 1 inserted" in result.output


def test_cli_empty_database_is_one_line(tmp_path):
    from app import create_app

    app = create_app({"ccm": {"database_url": f"sqlite:///{tmp_path}/empty.db", "var_dir": str(tmp_path / "var")}})
    path = write(tmp_path / "people.csv", "external_id,name\nP1,Pat\n")
    result = app.test_cli_runner().invoke(args=["customers", "import", str(path)])
    app.extensions["ccm"].close()
    assert result.exit_code == 1 and "ccm db upgrade" in result.output


def test_a_reimport_withdraws_but_never_regrants_over_the_customers_own_choice(db, tmp_path):
    """The CRM's withdrawal applies; the CRM's stale grant does not undo an unsubscribe,
    unless its consent_at is later; kept rows keep when and how they were recorded."""
    import datetime as dt

    from sqlalchemy import select

    from ccm.feedback.events import withdraw_consent
    from ccm.models import Consent, Customer

    header = "external_id,name,email,consent_email,consent_source,consent_at\n"
    run_customers(db, write(tmp_path / "a.csv", header + "X1,Xena,x1@example.com,yes,crm,\nX2,Xavi,x2@example.com,yes,crm,\n"), tmp_path)
    with db.session() as session:
        for external_id in ("X1", "X2"):
            customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
            withdraw_consent(session, customer, "email", "marketing", "track: unsubscribe")

    def consent(external_id: str, purpose: str = "marketing") -> tuple[bool, str]:
        with db.session() as session:
            row = session.scalar(select(Consent).join(Customer).where(Customer.external_id == external_id, Consent.channel == "email",
                                                                      Consent.purpose == purpose))
            return row.granted, row.source

    # The same grant again, with a changed name (so the row is written): the unsubscribe stands.
    run_customers(db, write(tmp_path / "b.csv", header + "X1,Xena B,x1@example.com,yes,crm,\n"
                                                         "X2,Xavi B,x2@example.com,yes,crm,2999-01-01T00:00:00Z\n"), tmp_path)
    assert consent("X1") == (False, "track: unsubscribe")
    assert consent("X1", "service") == (True, "import:a.csv: crm")  # unchanged: when and how kept
    assert consent("X2") == (True, "import:b.csv: crm")  # an explicit consent later than the unsubscribe
    # A withdrawal in the file always applies, whatever was recorded before.
    run_customers(db, write(tmp_path / "c.csv", header + "X2,Xavi C,x2@example.com,no,crm,\n"), tmp_path)
    assert consent("X2") == (False, "import:c.csv: crm") and consent("X2", "service")[0] is False
    assert dt is not None

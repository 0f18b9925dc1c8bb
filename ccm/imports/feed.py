"""Billing feed import: statements grouped from CSV lines or JSONL, balances checked,
upsert by (account, period)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ccm import field_values as v
from ccm.db import Database
from ccm.imports.files import (
    CHUNK_ROWS,
    ImportReport,
    ProgressFactory,
    _check,
    _Import,
    _open_text,
    _read_csv,
    _read_jsonl,
    _Row,
    _row_hash,
)
from ccm.models import Customer, FeedRecord, utcnow
from ccm.field_values import FieldError

DESCRIPTION_LIMIT = 500
LINE_DATE_GRACE = dt.timedelta(days=31)  # statement lines may be dated this far outside the period

STATEMENT_COLUMNS = (
    "account", "customer_id", "period", "opening_balance", "closing_balance", "amount_due", "due_date", "currency",
)  # fmt: skip
LINE_COLUMNS = ("line_date", "line_description", "line_amount")
FEED_CSV_COLUMNS = STATEMENT_COLUMNS + LINE_COLUMNS
FEED_JSON_KEYS = STATEMENT_COLUMNS + ("lines",)


@dataclass
class _Statement:
    key: tuple[str, str]
    rows: list[_Row]  # CSV: one per line of the statement; JSONL: one
    errors: list[tuple[int, FieldError]] = field(default_factory=list)
    record: dict[str, Any] | None = None


def _statement_key(values: dict[str, Any]) -> tuple[str, str]:
    errors: list[FieldError] = []
    account = _check(errors, v.text, values.get("account"), "account", max_length=64, required=True)
    period = _check(errors, v.period, values.get("period"))
    if errors:
        raise errors[0]
    return account, period


def _statement_fields(values: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    record["account"] = _check(errors, v.text, values.get("account"), "account", max_length=64, required=True)
    record["customer_id"] = _check(errors, v.text, values.get("customer_id"), "customer_id", max_length=64, required=True)
    record["period"] = _check(errors, v.period, values.get("period"))
    code = _check(errors, v.currency, values.get("currency"), required=True)
    record["currency"] = code
    for name in ("opening_balance", "closing_balance", "amount_due"):
        record[name] = _check(errors, v.money, values.get(name), name, currency_code=code)
    due = _check(errors, v.date, values.get("due_date"), "due_date")
    record["due_date"] = due
    return record


def _period_bounds(period: str) -> tuple[dt.date, dt.date]:
    year, month = int(period[:4]), int(period[5:])
    start = dt.date(year, month, 1)
    end = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return start, end


def _statement_line(date: Any, description: Any, amount: Any, names: tuple[str, str, str], code: str | None,
                    errors: list[FieldError]) -> dict[str, Any]:  # fmt: skip
    return {
        "date": _check(errors, v.date, date, names[0]),
        "description": _check(errors, v.text, description, names[1], max_length=DESCRIPTION_LIMIT, required=True),
        "amount": _check(errors, v.money, amount, names[2], currency_code=code),
    }


def _check_statement(stmt: _Statement, header: dict[str, Any], lines: list[tuple[int, dict[str, Any]]],
                     names: Callable[[int], tuple[str, str, str]]) -> None:  # fmt: skip
    """Cross-field checks: line dates, balance, amount due. Adds to stmt.errors."""
    first = stmt.rows[0].line
    if any(value is None for key, value in header.items() if key != "customer_id") or any(
        value is None for _, line in lines for value in line.values()
    ):
        return  # a field is already invalid; the sums would mislead
    start, end = _period_bounds(header["period"])
    for index, (line_no, line) in enumerate(lines):
        if not (start - LINE_DATE_GRACE <= line["date"] <= end + LINE_DATE_GRACE):
            reason = f"line date more than {LINE_DATE_GRACE.days} days outside the period {header['period']}"
            stmt.errors.append((line_no, FieldError(names(index)[0], reason)))
    if header["due_date"] < start:
        stmt.errors.append((first, FieldError("due_date", "before the start of the period")))
    expected = header["opening_balance"] + sum((line["amount"] for _, line in lines), Decimal(0))
    if header["closing_balance"] != expected:
        shown = v.format_money(expected, header["currency"])
        stmt.errors.append((first, FieldError("closing_balance", f"is not opening balance + lines: expected {shown}")))
    if header["amount_due"] < 0:
        stmt.errors.append((first, FieldError("amount_due", "negative amount due")))
    elif header["amount_due"] > max(header["closing_balance"], Decimal(0)):
        stmt.errors.append((first, FieldError("amount_due", "more than the closing balance")))


def _csv_statement(stmt: _Statement) -> None:
    first = stmt.rows[0]
    assert first.values is not None
    for row in stmt.rows[1:]:
        assert row.values is not None
        for name in STATEMENT_COLUMNS:
            if str(row.values.get(name, "")).strip() != str(first.values.get(name, "")).strip():
                stmt.errors.append((row.line, FieldError(name, f"differs from line {first.line} of the same statement")))
    errors: list[FieldError] = []
    header = _statement_fields(first.values, errors)
    stmt.errors += [(first.line, error) for error in errors]
    lines: list[tuple[int, dict[str, Any]]] = []
    for row in stmt.rows:
        assert row.values is not None
        cells = [row.values.get(name) for name in LINE_COLUMNS]
        if all(not str(cell or "").strip() for cell in cells):
            continue
        errors = []
        lines.append((row.line, _statement_line(*cells, LINE_COLUMNS, header["currency"], errors)))
        stmt.errors += [(row.line, error) for error in errors]
    if not stmt.errors:
        _check_statement(stmt, header, lines, lambda _: LINE_COLUMNS)
    stmt.record = _feed_record(header, [line for _, line in lines])


def _json_statement(stmt: _Statement) -> None:
    row = stmt.rows[0]
    assert row.values is not None
    errors: list[FieldError] = []
    header = _statement_fields(row.values, errors)
    given = row.values.get("lines", [])
    lines: list[tuple[int, dict[str, Any]]] = []
    if not isinstance(given, list):
        errors.append(FieldError("lines", "must be a list of lines"))
        given = []

    def names(index: int) -> tuple[str, str, str]:
        return (f"lines[{index}].date", f"lines[{index}].description", f"lines[{index}].amount")

    for index, item in enumerate(given):
        if not isinstance(item, dict):
            errors.append(FieldError(f"lines[{index}]", "must be an object"))
            continue
        lines.append((row.line, _statement_line(item.get("date"), item.get("description"), item.get("amount"),
                                                 names(index), header["currency"], errors)))  # fmt: skip
    stmt.errors += [(row.line, error) for error in errors]
    if not stmt.errors:
        _check_statement(stmt, header, lines, names)
    stmt.record = _feed_record(header, [line for _, line in lines])


def _feed_record(header: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    code = header.get("currency")
    stored_lines = []
    for line in lines:
        amount = line["amount"]
        stored_lines.append(
            {
                "date": line["date"].isoformat() if line["date"] else None,
                "description": line["description"],
                "amount": v.format_money(amount, code) if amount is not None and code else None,
            }
        )
    record = dict(header)
    record["lines"] = stored_lines
    return record


def _stored_statement(record: dict[str, Any]) -> dict[str, Any]:
    code = record["currency"]
    return {
        "account": record["account"],
        "customer": record["customer_id"],
        "period": record["period"],
        "currency": code,
        "opening_balance": v.format_money(record["opening_balance"], code),
        "closing_balance": v.format_money(record["closing_balance"], code),
        "amount_due": v.format_money(record["amount_due"], code),
        "due_date": record["due_date"].isoformat(),
        "lines": record["lines"],
    }


def checked_statement(values: Any) -> FeedRecord:
    """One statement given as a line of a JSONL feed (an object with ``lines``), checked as
    ``ccm feed import`` checks it (fields, currency, line dates, balances): a FeedRecord not
    added to any session, as a run would read it; FieldError names the first problem.
    ``customer_id`` may be left out (a preview: the statement is nobody's)."""
    if not isinstance(values, dict):
        raise FieldError("statement", "must be an object, as a line of a JSONL feed")
    stmt = _Statement(("", ""), [_Row(1, "", {"customer_id": "preview", **values})])
    _json_statement(stmt)
    if stmt.errors:
        raise stmt.errors[0][1]
    record = stmt.record
    assert record is not None
    return FeedRecord(account=record["account"], period=record["period"], opening_balance=record["opening_balance"],
                      closing_balance=record["closing_balance"], amount_due=record["amount_due"], due_date=record["due_date"],
                      currency=record["currency"], lines=record["lines"], total_debits=_line_total(record["lines"], debits=True),
                      total_credits=_line_total(record["lines"], debits=False))


def _line_total(lines: list[dict[str, Any]], *, debits: bool) -> Decimal:
    """Sum of the charges (debits) or of the credits, as a positive amount, of stored lines."""
    amounts = [Decimal(line["amount"]) for line in lines if line.get("amount") is not None]
    return sum((a if debits else -a for a in amounts if (a > 0) == debits and a != 0), Decimal("0"))


def _collect_statements(job: _Import, rows: Iterator[_Row]) -> list[_Statement]:
    """Group the rows into statements; rows that cannot be grouped are rejected at once."""
    statements: dict[tuple[str, str], _Statement] = {}
    for row in rows:
        if row.values is None:
            job.report.rows += 1
            job.reject(row, [row.error] if row.error else [])
            continue
        try:
            key = _statement_key(row.values)
        except FieldError as exc:
            job.report.rows += 1
            job.reject(row, [exc])
            continue
        found = statements.get(key)
        if found is None:
            statements[key] = _Statement(key, [row])
            job.report.rows += 1
        elif job.format == "csv":
            found.rows.append(row)
        else:
            job.report.rows += 1
            job.reject(row, [FieldError("account", f"statement for this account and period is a duplicate of line {found.rows[0].line}")])
    return list(statements.values())


def _reject_statement(job: _Import, stmt: _Statement) -> None:
    job.report.rejected += 1
    lines_with_errors = set()
    rows_by_line = {row.line: row for row in stmt.rows}
    for line, error in sorted(stmt.errors, key=lambda item: item[0]):
        lines_with_errors.add(line)
        job.rejects.add(line, error.field, error.reason, rows_by_line[line].raw)
    first_error = min(lines_with_errors)
    for row in stmt.rows:
        if row.line not in lines_with_errors:
            job.rejects.add(row.line, "", f"part of a rejected statement (see line {first_error})", row.raw)


def _write_statements(session: Session, chunk: list[_Statement], report: ImportReport, source_file: str) -> None:
    now = utcnow()
    keys = {stmt.key for stmt in chunk}
    # account IN (...) uses the unique (account, period) index; a row-value IN would scan the table
    existing = {
        (account, period): (record_id, row_hash)
        for record_id, account, period, row_hash in session.execute(
            select(FeedRecord.id, FeedRecord.account, FeedRecord.period, FeedRecord.row_hash).where(
                FeedRecord.account.in_({account for account, _ in keys})
            )
        )
        if (account, period) in keys
    }
    inserts, updates = [], []
    for stmt in chunk:
        record = stmt.record
        assert record is not None
        row = {
            "account": record["account"],
            "customer_id": record["customer_pk"],
            "period": record["period"],
            "opening_balance": record["opening_balance"],
            "closing_balance": record["closing_balance"],
            "amount_due": record["amount_due"],
            "due_date": record["due_date"],
            "currency": record["currency"],
            "lines": record["lines"],
            "total_debits": _line_total(record["lines"], debits=True),
            "total_credits": _line_total(record["lines"], debits=False),
            "source_file": source_file,
            "source_line": stmt.rows[0].line,
            "row_hash": record["row_hash"],
            "imported_at": now,
        }
        found = existing.get(stmt.key)
        if found is None:
            inserts.append(row)
        elif found[1] == record["row_hash"]:
            report.unchanged += 1
        else:
            updates.append(dict(row, id=found[0]))
    if inserts:
        session.execute(insert(FeedRecord.__table__), inserts)
        report.inserted += len(inserts)
    if updates:
        session.execute(update(FeedRecord), updates)
        report.updated += len(updates)


def import_feed(db: Database, path: str | Path, *, rejects_dir: str | Path, progress: bool | ProgressFactory = True) -> ImportReport:
    """Import billing statements from a CSV or JSONL file; see the module docstring."""
    job = _Import(db, path, "feed", rejects_dir, progress)
    source_file = job.path.name[-255:]
    try:
        with _open_text(job.path, job.gz, job.format) as fh:
            if job.format == "csv":
                names, rows = _read_csv(job.path, fh, FEED_CSV_COLUMNS, job.advance)
                job.report.ignored_columns = [n for n in names if n not in FEED_CSV_COLUMNS]
            else:
                rows = _read_jsonl(fh, job.advance)
            statements = _collect_statements(job, rows)
        for stmt in statements:
            (_csv_statement if job.format == "csv" else _json_statement)(stmt)
        for start in range(0, len(statements), CHUNK_ROWS):
            chunk = statements[start : start + CHUNK_ROWS]
            with db.session() as session:
                customer_ids = {s.record["customer_id"] for s in chunk if s.record and s.record.get("customer_id")}
                query = select(Customer.external_id, Customer.id).where(Customer.external_id.in_(customer_ids))
                known = {external_id: customer_id for external_id, customer_id in session.execute(query)}
                good = []
                for stmt in chunk:
                    assert stmt.record is not None
                    customer = stmt.record.get("customer_id")
                    if customer is not None and customer not in known:
                        stmt.errors.append((stmt.rows[0].line, FieldError("customer_id", "unknown customer")))
                    if stmt.errors:
                        _reject_statement(job, stmt)
                        continue
                    stmt.record["customer_pk"] = known[customer]
                    stmt.record["row_hash"] = _row_hash(_stored_statement(stmt.record))
                    good.append(stmt)
                _write_statements(session, good, job.report, source_file)
    finally:
        report = job.finish()
    return report

"""Customers import: validation, consents, attributes, households, upsert by external_id."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
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
    _row_hash,
)
from ccm.models import CHANNEL_KINDS, PURPOSES, Consent, Customer, utcnow
from ccm.field_values import FieldError

ATTRIBUTE_TEXT_LIMIT = 1_000
ATTRIBUTES_JSON_LIMIT = 16_000
CUSTOMER_COLUMNS = (
    "external_id", "name", "email", "phone", "address_line1", "address_line2", "city", "region",
    "postal_code", "country", "locale", "timezone", "preferred_channel", "paperless",
    "consent_email", "consent_sms", "consent_print", "consent_inbox", "consent_webhook", "consent_at", "consent_source",
)  # fmt: skip
CUSTOMER_REQUIRED = ("external_id", "name")


_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TEXT_LIMITS = {
    "address_line1": 200, "address_line2": 200, "city": 100, "region": 100, "postal_code": 20,
}  # fmt: skip


def household_key(record: dict[str, Any]) -> str | None:
    """A short hash of the normalised postal address; None without an address line."""
    if not record.get("address_line1"):
        return None
    parts = [record.get(name) or "" for name in ("country", "postal_code", "address_line1", "address_line2")]
    folded = "|".join(v.fold_for_matching(part) for part in parts)
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:16]


def _attribute_value(value: Any, name: str) -> Any:
    field_name = f"attributes.{name}"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FieldError(field_name, "not a finite number")
        return int(value) if value == value.to_integral_value() and abs(value) < 2**63 else float(value)
    if isinstance(value, str):
        return v.text(value, field_name, max_length=ATTRIBUTE_TEXT_LIMIT)
    raise FieldError(field_name, "must be text, a number, true/false or null")


def _customer_attributes(values: dict[str, Any], fmt: str, errors: list[FieldError]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if fmt == "csv":
        items = [(key[5:], value) for key, value in values.items() if key.startswith("attr_")]
        items = [(key, value) for key, value in items if isinstance(value, str) and value.strip()]
    else:
        given = values.get("attributes")
        if given is None:
            return attributes
        if not isinstance(given, dict):
            errors.append(FieldError("attributes", "must be a JSON object"))
            return attributes
        items = list(given.items())
    for key, value in items:
        if not _ATTRIBUTE_NAME.fullmatch(str(key)):
            errors.append(FieldError("attributes", "attribute names are letters, digits and _ (up to 64)"))
            continue
        try:
            attributes[str(key)] = _attribute_value(value, str(key))
        except FieldError as exc:
            errors.append(exc)
    if len(json.dumps(attributes, ensure_ascii=False, default=str)) > ATTRIBUTES_JSON_LIMIT:
        errors.append(FieldError("attributes", f"larger than {ATTRIBUTES_JSON_LIMIT} characters in all"))
    return attributes



def _customer(values: dict[str, Any], fmt: str) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """Validate and normalise one customer row; the record or the errors."""
    errors: list[FieldError] = []
    get = values.get
    record: dict[str, Any] = {
        "external_id": _check(errors, v.text, get("external_id"), "external_id", max_length=64, required=True),
        "name": _check(errors, v.text, get("name"), "name", max_length=200, required=True),
    }
    for name, limit in _TEXT_LIMITS.items():
        record[name] = _check(errors, v.text, get(name), name, max_length=limit)
    record["country"] = _check(errors, v.country, get("country"))
    record["postal_code"] = _check(errors, v.postal_code, get("postal_code"), country_code=record["country"])
    record["email"] = _check(errors, v.email, get("email"))
    record["phone"] = _check(errors, v.phone, get("phone"), region=record["country"])
    record["locale"] = _check(errors, v.locale, get("locale"), default="en_US")
    record["timezone"] = _check(errors, v.timezone, get("timezone"), default="UTC")
    record["preferred_channel"] = _check(errors, v.channel, get("preferred_channel"))
    record["paperless"] = _check(errors, v.boolean, get("paperless"), "paperless", default=False)
    consents = {}
    for kind in CHANNEL_KINDS:
        given = _check(errors, v.consent, get(f"consent_{kind}"), f"consent_{kind}")
        if given is not None:
            consents[kind] = given
    record["consents"] = consents
    consent_at = _check(errors, v.datetime_utc, get("consent_at"), "consent_at")
    record["consent_at"] = consent_at.isoformat() if consent_at else None
    record["consent_source"] = _check(errors, v.text, get("consent_source"), "consent_source", max_length=100)
    record["attributes"] = _customer_attributes(values, fmt, errors)
    if errors:
        return None, errors
    return record, []


_CUSTOMER_FIELDS = (
    "external_id", "name", "email", "phone", "address_line1", "address_line2", "city", "region", "postal_code",
    "country", "locale", "timezone", "preferred_channel", "paperless", "attributes",
)  # fmt: skip


def _consent_rows(customer_id: int, record: dict[str, Any], now: dt.datetime, source: str,
                  previous: dict[tuple[str, str], tuple[bool, dt.datetime, str]]) -> list[dict[str, Any]]:  # fmt: skip
    """Consent rows for one customer from the file, against what was recorded before:

    - a value the file does not change keeps when and how it was recorded;
    - a withdrawal in the file always applies;
    - a grant in the file does not undo a withdrawal the customer made through the engine
      (an unsubscribe, a STOP, the preference centre: a source that is not an import),
      unless the file's explicit ``consent_at`` is later than that withdrawal. Billing data
      cannot re-subscribe anyone.

    Imported rows' source is ``import:<file>``, with the file's ``consent_source`` after it."""
    explicit_at = dt.datetime.fromisoformat(record["consent_at"]) if record["consent_at"] else None
    given = f"{source}: {record['consent_source']}"[:100] if record["consent_source"] else source
    rows = []
    for kind, purposes in record["consents"].items():
        for purpose in PURPOSES:
            granted = purposes[purpose]
            old = previous.get((kind, purpose))
            withdrawn_by_customer = old is not None and not old[0] and not old[2].startswith("import:")
            keep = old is not None and (old[0] == granted or (granted and withdrawn_by_customer and not (explicit_at and explicit_at > old[1])))
            if keep:
                rows.append({"customer_id": customer_id, "channel": kind, "purpose": purpose, "granted": old[0],
                             "recorded_at": old[1], "source": old[2]})
            else:
                rows.append({"customer_id": customer_id, "channel": kind, "purpose": purpose, "granted": granted,
                             "recorded_at": explicit_at or now, "source": given})
    return rows


def _write_customers(session: Session, chunk: list[tuple[int, dict[str, Any]]], report: ImportReport, source: str) -> None:
    now = utcnow()
    ids = [record["external_id"] for _, record in chunk]
    existing = {
        external_id: (customer_id, row_hash)
        for customer_id, external_id, row_hash in session.execute(
            select(Customer.id, Customer.external_id, Customer.row_hash).where(Customer.external_id.in_(ids))
        )
    }
    inserts, updates = [], []
    for _, record in chunk:
        found = existing.get(record["external_id"])
        if found is None:
            inserts.append(record)
        elif found[1] == record["row_hash"]:
            report.unchanged += 1
        else:
            updates.append((found[0], record))

    def columns(record: dict[str, Any]) -> dict[str, Any]:
        row = {name: record[name] for name in _CUSTOMER_FIELDS}
        row.update(household_key=record["household_key"], row_hash=record["row_hash"], updated_at=now)
        return row

    consent_rows: list[dict[str, Any]] = []
    if inserts:
        # Core executemany, then one query for the new ids: far faster than INSERT .. RETURNING per row
        session.execute(insert(Customer.__table__), [dict(columns(record), created_at=now) for record in inserts])
        query = select(Customer.external_id, Customer.id).where(Customer.external_id.in_([r["external_id"] for r in inserts]))
        new_ids = {external_id: customer_id for external_id, customer_id in session.execute(query)}
        for record in inserts:
            consent_rows += _consent_rows(new_ids[record["external_id"]], record, now, source, {})
        report.inserted += len(inserts)
    if updates:
        session.execute(update(Customer), [dict(columns(record), id=customer_id) for customer_id, record in updates])
        update_ids = [customer_id for customer_id, _ in updates]
        previous: dict[int, dict[tuple[str, str], tuple[bool, dt.datetime, str]]] = {}
        for consent in session.scalars(select(Consent).where(Consent.customer_id.in_(update_ids))):
            previous.setdefault(consent.customer_id, {})[(consent.channel, consent.purpose)] = (
                consent.granted, consent.recorded_at, consent.source,
            )  # fmt: skip
        session.execute(delete(Consent).where(Consent.customer_id.in_(update_ids)))
        for customer_id, record in updates:
            consent_rows += _consent_rows(customer_id, record, now, source, previous.get(customer_id, {}))
        report.updated += len(updates)
    if consent_rows:
        session.execute(insert(Consent.__table__), consent_rows)


def import_customers(db: Database, path: str | Path, *, rejects_dir: str | Path, progress: bool | ProgressFactory = True) -> ImportReport:
    """Import customers from a CSV or JSONL file; see the module docstring for the columns.

    A later row with the external_id of an earlier row of the same file is rejected
    ("duplicate of line N"), whether the earlier row was valid or not.
    """
    job = _Import(db, path, "customers", rejects_dir, progress)
    source = f"import:{job.path.name}"[:100]
    first_line: dict[str, int] = {}
    chunk: list[tuple[int, dict[str, Any]]] = []
    pending_lines = 0

    def flush() -> None:
        nonlocal pending_lines
        if chunk:
            with db.session() as session:
                _write_customers(session, chunk, job.report, source)
            chunk.clear()
        job.advance(pending_lines)
        pending_lines = 0

    def count_lines(n: int) -> None:
        nonlocal pending_lines
        pending_lines += n

    try:
        with _open_text(job.path, job.gz, job.format) as fh:
            if job.format == "csv":
                names, rows = _read_csv(job.path, fh, CUSTOMER_REQUIRED, count_lines)
                known = set(CUSTOMER_COLUMNS)
                job.report.ignored_columns = [n for n in names if n not in known and not n.startswith("attr_")]
            else:
                rows = _read_jsonl(fh, count_lines)
            for row in rows:
                job.report.rows += 1
                if row.values is None:
                    job.reject(row, [row.error] if row.error else [])
                    continue
                if job.format == "jsonl":
                    extra = [key for key in row.values if key not in CUSTOMER_COLUMNS and key != "attributes"]
                    for key in extra:
                        if key[:40] not in job.report.ignored_columns and len(job.report.ignored_columns) < 20:
                            job.report.ignored_columns.append(key[:40])
                record, errors = _customer(row.values, job.format)
                external_id = record["external_id"] if record else _safe_id(row.values)
                if external_id is not None:
                    if external_id in first_line:
                        errors = errors + [FieldError("external_id", f"duplicate of line {first_line[external_id]}")]
                        record = None
                    else:
                        first_line[external_id] = row.line
                if record is None:
                    job.reject(row, errors)
                    continue
                record["household_key"] = household_key(record)
                record["row_hash"] = _row_hash(record)
                chunk.append((row.line, record))
                if len(chunk) >= CHUNK_ROWS:
                    flush()
            flush()
    finally:
        report = job.finish()
    return report


def _safe_id(values: dict[str, Any]) -> str | None:
    try:
        return v.text(values.get("external_id"), "external_id", max_length=64)
    except FieldError:
        return None




class CustomerRejected(ValueError):
    """One customer given to ``upsert_customer`` is invalid; ``errors`` name the fields."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


def upsert_customer(db: Database, values: dict[str, Any], *, source: str) -> str:
    """Insert or update one customer (the keys of a JSONL row), with the checks and the
    consent rules of an import; ``source`` is how its consents are recorded (e.g.
    ``api:crm``). Returns "inserted", "updated" or "unchanged"; an invalid customer
    raises CustomerRejected with every field at fault."""
    record, errors = _customer(values, "jsonl")
    if record is None:
        raise CustomerRejected(errors)
    record["household_key"] = household_key(record)
    record["row_hash"] = _row_hash(record)
    report = ImportReport(file=source, kind="customers")
    with db.session() as session:
        _write_customers(session, [(1, record)], report, source[:100])
    return "inserted" if report.inserted else "updated" if report.updated else "unchanged"

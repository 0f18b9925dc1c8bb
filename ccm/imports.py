"""Import customers and the billing feed from CSV or JSONL files.

Every row is validated (``ccm.validation``). A bad row goes to a rejects file with its
physical line number, the field, the reason and the raw text, and the rest of the file
goes on. Good rows are upserted in chunks (one transaction per chunk): by ``external_id``
for customers, by ``(account, period)`` for statements. Each stored row keeps a hash of
its normalised content, so importing the same data again writes nothing.

A file that cannot be read at all (missing, not UTF-8, unknown extension, missing header
columns) raises ImportFileError with one line naming the file; nothing is imported.

File formats (column names are case-insensitive; a UTF-8 BOM is fine; ``.gz`` is read):

Customers, CSV with a header row, or JSONL (one object per line, same keys):
  external_id (required), name (required), email, phone, address_line1, address_line2,
  city, region, postal_code, country, locale (default en_US), timezone (default UTC),
  preferred_channel, paperless, consent_email, consent_sms, consent_print, consent_at,
  consent_source; CSV: ``attr_<name>`` columns become attributes (as text);
  JSONL: an ``attributes`` object (text, numbers, true/false, null).

Billing feed, JSONL: one statement per line:
  {"account", "customer_id", "period", "opening_balance", "closing_balance",
   "amount_due", "due_date", "currency", "lines": [{"date", "description", "amount"}]}
Billing feed, CSV: one row per statement line, the statement columns repeated:
  account, customer_id, period, opening_balance, closing_balance, amount_due, due_date,
  currency, line_date, line_description, line_amount
  (a row whose three line_ columns are all empty adds no line: a statement without lines).
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ccm import validation as v
from ccm.db import Database
from ccm.models import CHANNEL_KINDS, PURPOSES, Consent, Customer, FeedRecord, utcnow
from ccm.progress import Progress
from ccm.validation import FieldError

__all__ = [
    "ImportFileError",
    "ImportReport",
    "import_customers",
    "import_feed",
    "CUSTOMER_COLUMNS",
    "FEED_CSV_COLUMNS",
    "FEED_JSON_KEYS",
]

CHUNK_ROWS = 500
RAW_LIMIT = 10_000  # characters of a rejected row kept in the rejects file
ATTRIBUTE_TEXT_LIMIT = 1_000
ATTRIBUTES_JSON_LIMIT = 16_000
DESCRIPTION_LIMIT = 500
LINE_DATE_GRACE = dt.timedelta(days=31)  # statement lines may be dated this far outside the period

CUSTOMER_COLUMNS = (
    "external_id", "name", "email", "phone", "address_line1", "address_line2", "city", "region",
    "postal_code", "country", "locale", "timezone", "preferred_channel", "paperless",
    "consent_email", "consent_sms", "consent_print", "consent_at", "consent_source",
)  # fmt: skip
CUSTOMER_REQUIRED = ("external_id", "name")
STATEMENT_COLUMNS = (
    "account", "customer_id", "period", "opening_balance", "closing_balance", "amount_due", "due_date", "currency",
)  # fmt: skip
LINE_COLUMNS = ("line_date", "line_description", "line_amount")
FEED_CSV_COLUMNS = STATEMENT_COLUMNS + LINE_COLUMNS
FEED_JSON_KEYS = STATEMENT_COLUMNS + ("lines",)

# A 1 MB field must be read (and rejected for its length), not crash the reader.
csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))


class ImportFileError(Exception):
    """The file cannot be read at all; the message is one line naming the file."""


@dataclass
class ImportReport:
    file: str
    kind: str  # "customers" | "feed"
    rows: int = 0  # customers: data rows; feed: statements (a CSV statement spans several rows)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        noun = "statements" if self.kind == "feed" else "rows"
        text = (
            f"{Path(self.file).name}: {self.rows} {noun}: {self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )
        if self.rejects_path:
            text += f" (see {self.rejects_path})"
        if self.ignored_columns:
            text += f"; ignored unknown columns: {', '.join(self.ignored_columns)}"
        return text


# --------------------------------------------------------------------------- reading files


@dataclass
class _Row:
    """One record of the source: its first physical line, raw text and values (or why not)."""

    line: int
    raw: str
    values: dict[str, Any] | None
    error: FieldError | None = None


def _file_format(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last == ".csv":
        return "csv", gz
    if last in (".jsonl", ".ndjson"):
        return "jsonl", gz
    raise ImportFileError(f"{path}: not a .csv, .jsonl or .ndjson file (optionally .gz)")


def _open_binary(path: Path, gz: bool):  # type: ignore[no-untyped-def]
    return gzip.open(path, "rb") if gz else path.open("rb")


def _check_readable(path: Path, gz: bool) -> int:
    """Check the whole file is readable UTF-8 text; return its number of lines."""
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if path.is_dir():
        raise ImportFileError(f"{path}: is a directory, not a file")
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    last = b""
    try:
        with _open_binary(path, gz) as fh:
            while chunk := fh.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = lines + chunk[: exc.start].count(b"\n") + 1
                    raise ImportFileError(f"{path}: not UTF-8 text (line {at}); save the file as UTF-8") from None
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ImportFileError(f"{path}: not UTF-8 text (line {lines + 1}); save the file as UTF-8") from None
    except OSError as exc:  # includes gzip.BadGzipFile
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ImportFileError(f"{path}: cannot read: {reason}") from None
    except (EOFError, zlib.error) as exc:
        raise ImportFileError(f"{path}: cannot read: damaged gzip file ({exc})") from None
    return lines + (1 if last not in (b"", b"\n") else 0)


def _open_text(path: Path, gz: bool, fmt: str) -> TextIO:
    """CSV: the csv module handles line ends itself; JSONL: lines end at LF only."""
    newline = "" if fmt == "csv" else "\n"
    if gz:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline=newline)  # type: ignore[return-value]
    return path.open("r", encoding="utf-8-sig", newline=newline)


class _LineTap:
    """Iterate the lines of a file, remembering those read since the last ``take()``."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines, self.buffer, self.count = lines, [], 0

    def __iter__(self) -> "_LineTap":
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.buffer.append(line)
        self.count += 1
        return line

    def take(self) -> str:
        raw = "".join(self.buffer)
        self.buffer.clear()
        return raw


def _header_names(row: list[str], path: Path) -> list[str]:
    names = [name.strip().lstrip("\ufeff").casefold() for name in row]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ImportFileError(f"{path}: column {name[:40]!r} appears twice in the header")
        if not name:
            raise ImportFileError(f"{path}: the header has an empty column name")
        seen.add(name)
    return names


def _read_csv(path: Path, fh: TextIO, required: tuple[str, ...], on_lines: Callable[[int], None]) -> tuple[list[str], Iterator[_Row]]:
    tap = _LineTap(iter(fh))
    first = next(tap, None)
    while first is not None and not first.strip():
        tap.take()
        first = next(tap, None)
    if first is None:
        raise ImportFileError(f"{path}: empty file, expected a header row")
    delimiter = "," if "," in first or not (";" in first or "\t" in first) else (";" if ";" in first else "\t")
    reader = csv.reader(_Replay(first, tap), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ImportFileError(f"{path}: cannot read the header: {exc}") from None
    tap.take()
    names = _header_names(header, path)
    missing = [name for name in required if name not in names]
    if missing:
        found = ", ".join(names)[:200]
        raise ImportFileError(f"{path}: missing required column(s) {', '.join(missing)} in the header (found: {found})")
    consumed = [tap.count]

    def rows() -> Iterator[_Row]:
        while True:
            start = consumed[0] + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield _Row(start, tap.take(), None, FieldError("", f"unreadable CSV: {exc}"))
                on_lines(tap.count - consumed[0])
                consumed[0] = tap.count
                continue
            raw = tap.take()
            on_lines(tap.count - consumed[0])
            consumed[0] = tap.count
            if not cells or all(not cell.strip() for cell in cells):
                continue  # blank lines and rows of empty cells (spreadsheet exports) are skipped
            if len(cells) != len(names):
                reason = f"has {len(cells)} values, the header has {len(names)}"
                yield _Row(start, raw, None, FieldError("", reason))
                continue
            yield _Row(start, raw, dict(zip(names, cells)))

    return names, rows()


class _Replay:
    """Yield one line already taken from the tap, then the tap's lines."""

    def __init__(self, first: str, tap: _LineTap) -> None:
        self.first: str | None = first
        self.tap = tap

    def __iter__(self) -> "_Replay":
        return self

    def __next__(self) -> str:
        if self.first is not None:
            line, self.first = self.first, None
            return line
        return next(self.tap)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _read_jsonl(fh: TextIO, on_lines: Callable[[int], None]) -> Iterator[_Row]:
    for number, line in enumerate(fh, start=1):
        on_lines(1)
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            yield _Row(number, line, None, FieldError("", f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]
            yield _Row(number, line, None, FieldError("", f"invalid JSON: {reason}"))
            continue
        if not isinstance(value, dict):
            yield _Row(number, line, None, FieldError("", "not a JSON object"))
            continue
        yield _Row(number, line, {str(key).casefold(): item for key, item in value.items()})


# --------------------------------------------------------------------------- rejects


def _escape_cell(value: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    if value and value[0] in "=+-@\t\r\n":
        return "'" + value
    return value


class _Rejects:
    """The rejects file of one import, created on the first reject."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: TextIO | None = None
        self.writer: Any = None
        if path.exists():
            path.unlink()  # a stale file from an earlier import would mislead

    def add(self, line: int, field_name: str, reason: str, raw: str) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = self.path.open("w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.fh)
            self.writer.writerow(["line", "field", "reason", "raw"])
        raw = raw.rstrip("\r\n")
        if len(raw) > RAW_LIMIT:
            raw = raw[:RAW_LIMIT] + " [truncated]"
        self.writer.writerow([line, _escape_cell(field_name), _escape_cell(reason), _escape_cell(raw)])

    def close(self) -> str | None:
        if self.fh is None:
            return None
        self.fh.close()
        return str(self.path)


def _rejects_path(path: Path, rejects_dir: str | Path, kind: str) -> Path:
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(rejects_dir) / f"{Path(name).stem}.{kind}.rejects.csv"


def _row_hash(record: dict[str, Any]) -> str:
    data = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class _Import:
    """The shared frame of one import: source, rejects, report and progress."""

    def __init__(self, db: Database, path: str | Path, kind: str, rejects_dir: str | Path, progress: bool) -> None:
        self.db, self.path, self.kind = db, Path(path), kind
        self.format, self.gz = _file_format(self.path)
        self.total_lines = _check_readable(self.path, self.gz)
        self.report = ImportReport(file=str(path), kind=kind)
        self.rejects = _Rejects(_rejects_path(self.path, rejects_dir, kind))
        self.progress = Progress(self.total_lines, f"import {kind}") if progress else None

    def advance(self, lines: int) -> None:
        if self.progress is not None and lines:
            self.progress.advance(lines)

    def reject(self, row: _Row, errors: list[FieldError]) -> None:
        self.report.rejected += 1
        for error in errors:
            self.rejects.add(row.line, error.field, error.reason, row.raw)

    def finish(self) -> ImportReport:
        if self.progress is not None:
            self.progress.close()
        self.report.rejects_path = self.rejects.close()
        return self.report


# --------------------------------------------------------------------------- customers

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


def _check(errors: list[FieldError], func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except FieldError as exc:
        errors.append(exc)
        return None


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
    """Consent rows for one customer; unchanged grants keep when and how they were recorded."""
    explicit_at = dt.datetime.fromisoformat(record["consent_at"]) if record["consent_at"] else None
    rows = []
    for kind, purposes in record["consents"].items():
        for purpose in PURPOSES:
            granted = purposes[purpose]
            old = previous.get((kind, purpose))
            kept = old is not None and old[0] == granted
            rows.append(
                {
                    "customer_id": customer_id,
                    "channel": kind,
                    "purpose": purpose,
                    "granted": granted,
                    "recorded_at": explicit_at or (old[1] if kept and old else now),
                    "source": record["consent_source"] or (old[2] if kept and old else source),
                }
            )
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


def import_customers(db: Database, path: str | Path, *, rejects_dir: str | Path, progress: bool = True) -> ImportReport:
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


# --------------------------------------------------------------------------- billing feed


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


def import_feed(db: Database, path: str | Path, *, rejects_dir: str | Path, progress: bool = True) -> ImportReport:
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

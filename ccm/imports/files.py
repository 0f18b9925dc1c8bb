"""Reading import files (CSV, JSONL, gzipped), the rejects file and the shared import
bookkeeping; the formats are described in ``ccm.imports``."""
from __future__ import annotations

import codecs
import datetime as dt
import csv
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from ccm.db import Database
from ccm.progress import Progress
from ccm.field_values import FieldError

CHUNK_ROWS = 500
RAW_LIMIT = 10_000  # characters of a rejected row kept in the rejects file
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
    """The rejects file of one import, created on the first reject; every row names the
    file it came from (``file``) with its line and field. Each import writes a file of its
    own: importing ``a/customers.csv`` and then ``b/customers.csv`` keeps both."""

    def __init__(self, folder: Path, source: Path, kind: str) -> None:
        self.folder, self.source, self.kind = folder, source, kind
        self.path: Path | None = None
        self.fh: TextIO | None = None
        self.writer: Any = None

    def add(self, line: int, field_name: str, reason: str, raw: str) -> None:
        if self.writer is None:
            self.path, self.fh = _new_rejects_file(self.folder, self.source, self.kind)
            self.writer = csv.writer(self.fh)
            self.writer.writerow(["file", "line", "field", "reason", "raw"])
        raw = raw.rstrip("\r\n")
        if len(raw) > RAW_LIMIT:
            raw = raw[:RAW_LIMIT] + " [truncated]"
        self.writer.writerow([_escape_cell(str(self.source)), line, _escape_cell(field_name), _escape_cell(reason), _escape_cell(raw)])

    def close(self) -> str | None:
        if self.fh is None:
            return None
        self.fh.close()
        return str(self.path)


def _new_rejects_file(folder: Path, source: Path, kind: str) -> tuple[Path, TextIO]:
    """``<folder>/<file>.<kind>.<UTC time>.rejects.csv``, made exclusively (a second import
    in the same second gets ``-2``, ``-3`` ...): an earlier import's file is never replaced."""
    name = source.name[:-3] if source.name.lower().endswith(".gz") else source.name
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = folder / f"{Path(name).stem}.{kind}.{stamp}{suffix}.rejects.csv"
        try:
            return path, path.open("x", encoding="utf-8-sig", newline="")
        except FileExistsError:
            continue
    raise ImportFileError(f"{folder}: cannot make a new rejects file for {source.name}")


def _row_hash(record: dict[str, Any]) -> str:
    data = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# Given the file's count of lines, something with advance(lines) and close(): the import's progress.
ProgressFactory = Callable[[int], Any]


class _Import:
    """The shared frame of one import: source, rejects, report and progress."""

    def __init__(self, db: Database, path: str | Path, kind: str, rejects_dir: str | Path, progress: bool | ProgressFactory) -> None:
        self.db, self.path, self.kind = db, Path(path), kind
        self.format, self.gz = _file_format(self.path)
        self.total_lines = _check_readable(self.path, self.gz)
        self.report = ImportReport(file=str(path), kind=kind)
        self.rejects = _Rejects(Path(rejects_dir), self.path, kind)
        if callable(progress):  # someone else shows it (an import job keeps it in the database)
            self.progress = progress(self.total_lines)
        else:
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

def _check(errors: list[FieldError], func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except FieldError as exc:
        errors.append(exc)
        return None

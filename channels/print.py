"""Print files for a print shop: one folder per batch, a manifest and a print stream.

``print:///var/ccm/print`` or ``print://var/print`` (relative to the current folder).

    <folder>/<batch_id>/documents/000001-<message_id>.pdf
    <folder>/<batch_id>/manifest.csv      sequence, message_id, customer, pages, ...
    <folder>/<batch_id>/print-stream.pdf  every document, in sequence order

``send`` is idempotent on ``message_id`` across batches: a marker under
``<folder>/.delivered/`` names the batch a message went to, so a message sent again after
a crash (in another batch) is not printed twice. ``close_batch`` writes the stream; a batch
left with a manifest but no stream (a crashed worker) gets its stream built when the next
batch is opened in the same folder. A batch open in a live process is locked
(``<batch>/.lock``), so recovery never touches it; the kernel drops the lock of a process
that dies. ``forget`` takes documents out of batches again and rebuilds their streams and
manifests (erasure of a customer; ``channels.print_forget``).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

from pypdf import PdfReader

from .base import Channel, Delivered, DeliveryResult, Forgotten, Outbound
from .files import DeliveryMarkers, fsync_folder, safe_filename, write_new_file
from .redact import os_error_detail
from .urls import folder_from_url, folder_url, split_url

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
STREAM = "print-stream.pdf"
LOCK = ".lock"
MARKERS = ".delivered"
DOCUMENTS = "documents"
COLUMNS = ("sequence", "message_id", "customer", "pages", "household_key", "postal_code", "file")
DEFAULT_BATCH = "default"
BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """Neutralise spreadsheet formulas (OWASP CSV injection): prefix ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class PrintChannel(Channel):
    name: ClassVar[str] = "print"
    kind: ClassVar[str] = "print"
    schemes: ClassVar[tuple[str, ...]] = ("print",)
    max_body: ClassVar[int | None] = 50 * 1024 * 1024

    def __init__(self, url: str) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.folder = folder_from_url(parts, self.name)
        self._batch: str | None = None
        self._sent: dict[str, str] = {}  # message_id -> file, for the open batch
        self._next_sequence = 1
        self._lock_fd: int | None = None
        self.markers = DeliveryMarkers(os.path.join(self.folder, MARKERS))

    def url(self, privacy: bool = True) -> str:
        return folder_url("print", self.folder)

    @property
    def batch_folder(self) -> str | None:
        return None if self._batch is None else os.path.join(self.folder, self._batch)

    def open_batch(self, batch_id: str) -> None:
        """Start (or resume) ``batch_id``; build the streams crashed batches left out.

        Raises ``ValueError`` for a batch id that is not a plain name and ``OSError``
        if the folder cannot be made.
        """
        if not BATCH_ID.fullmatch(batch_id):
            raise ValueError(f"print batch id {batch_id!r} must match {BATCH_ID.pattern}")
        self._unlock()
        self._batch = batch_id
        os.makedirs(os.path.join(self.folder, batch_id, DOCUMENTS), exist_ok=True)
        self._lock_fd = lock_batch(os.path.join(self.folder, batch_id), blocking=True)
        self._load_manifest()
        self._recover(except_batch=batch_id)

    def close_batch(self) -> None:
        """Write the open batch's print stream; raises ``OSError`` if it cannot."""
        if self._batch is None:
            return
        try:
            build_stream(os.path.join(self.folder, self._batch))
        finally:
            self._unlock()
            self._batch = None
            self._sent = {}

    def close(self) -> None:
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def send(self, out: Outbound) -> DeliveryResult:
        if not isinstance(out.content, bytes) or not out.content.startswith(b"%PDF"):
            return DeliveryResult("permanent", detail="content is not a PDF")
        if self.max_body is not None and len(out.content) > self.max_body:
            return DeliveryResult("permanent", detail=f"PDF larger than {self.max_body} bytes")
        try:
            if self._batch is None:
                self.open_batch(DEFAULT_BATCH)
            if out.message_id in self._sent:
                return DeliveryResult("sent", provider_id=self._sent[out.message_id])
            earlier = self._delivered_before(out.message_id)
            if earlier:
                return DeliveryResult("sent", provider_id=earlier)
            pages = _pages(out.content, out.meta)
            if pages is None:
                return DeliveryResult("permanent", detail="content is not a readable PDF")
            file = self._write(out, pages)
        except OSError as exc:
            detail = os_error_detail(exc, "cannot write print batch")
            log.warning("print %s: %s (message %s)", self.url(), detail, out.message_id)
            return DeliveryResult("transient", detail=detail)
        return DeliveryResult("sent", provider_id=file)

    def _write(self, out: Outbound, pages: int) -> str:
        assert self.batch_folder is not None and isinstance(out.content, bytes)
        sequence = int(out.meta.get("sequence") or self._next_sequence)
        name = f"{sequence:06d}-{safe_filename(out.message_id)}.pdf"
        file = f"{DOCUMENTS}/{name}"
        self.markers.put(out.message_id, self._batch or "")
        documents = os.path.join(self.batch_folder, DOCUMENTS)
        if not write_new_file(documents, name, out.content):
            log.info("print: %s already written, adding its manifest row", file)
        row = (
            sequence,
            out.message_id,
            str(out.meta.get("customer", "")),
            pages,
            str(out.meta.get("household_key", out.to)),
            str(out.meta.get("postal_code", "")),
            file,
        )
        self._append_row(row)
        self._sent[out.message_id] = file
        self._next_sequence = max(self._next_sequence, sequence + 1)
        return file

    def _append_row(self, row: tuple[object, ...]) -> None:
        assert self.batch_folder is not None
        path = os.path.join(self.batch_folder, MANIFEST)
        stale_stream = os.path.join(self.batch_folder, STREAM)
        with open(path, "a", newline="", encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            start = fh.tell()
            try:
                writer = csv.writer(fh)
                if start == 0:
                    writer.writerow(COLUMNS)
                writer.writerow([csv_safe(cell) for cell in row])
                fh.flush()
                os.fsync(fh.fileno())
            except OSError:
                _truncate_quietly(fh, start)
                raise
        if os.path.exists(stale_stream):  # the batch grew after its stream was written
            os.unlink(stale_stream)

    def _delivered_before(self, message_id: str) -> str | None:
        """The file of this message in an earlier batch, if it really got there."""
        batch = self.markers.get(message_id)
        if not batch or batch == self._batch or not BATCH_ID.fullmatch(batch):
            return None
        for row in read_manifest(os.path.join(self.folder, batch)):
            if row["message_id"] == message_id:
                return f"{batch}/{row['file']}"
        return None

    def _load_manifest(self) -> None:
        assert self.batch_folder is not None
        rows = read_manifest(self.batch_folder)
        self._sent = {row["message_id"]: row["file"] for row in rows}
        self._next_sequence = max((int(row["sequence"]) for row in rows), default=0) + 1

    def forget(self, delivered: Collection[Delivered]) -> Forgotten:
        """Take these documents out of their batches and production folders (see
        ``channels.print_forget``)."""
        from .print_forget import forget

        return forget(self.folder, delivered)

    def produce(self, batch_ids: list[str], name: str, *, max_documents: int = 500) -> str:
        """Postal production of finished batches (see ``channels.print_production``)."""
        from .print_production import produce

        return produce(self.folder, batch_ids, name, max_documents=max_documents)

    def recover(self) -> None:
        """Build the stream of every batch left without one by a stopped worker."""
        self._recover(except_batch="")

    def _recover(self, except_batch: str) -> None:
        if not os.path.isdir(self.folder):
            return
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if entry.name == except_batch or not entry.is_dir() or not os.path.isdir(os.path.join(entry.path, DOCUMENTS)):
                continue  # not a worker batch (e.g. a production folder, which has streams of its own)
            has_manifest = os.path.exists(os.path.join(entry.path, MANIFEST))
            if has_manifest and not os.path.exists(os.path.join(entry.path, STREAM)):
                lock = lock_batch(entry.path, blocking=False)
                if lock is None:
                    continue  # a live worker has this batch open
                try:
                    if not os.path.exists(os.path.join(entry.path, STREAM)):
                        build_stream(entry.path)
                        log.info("print: built the missing stream of batch %s", entry.name)
                except Exception as exc:  # one broken old batch must not stop new ones
                    log.error("print: cannot rebuild stream of batch %s: %r", entry.name, exc)
                finally:
                    os.close(lock)


def lock_batch(batch_folder: str, *, blocking: bool) -> int | None:
    """An exclusive lock on a batch, held by an open file descriptor; None if busy."""
    fd = os.open(os.path.join(batch_folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def read_manifest(batch_folder: str) -> list[dict[str, str]]:
    """The manifest rows of a batch (empty if it has none yet)."""
    try:
        with open(os.path.join(batch_folder, MANIFEST), newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def build_stream(batch_folder: str) -> str:
    """Merge a batch's documents in sequence order into ``print-stream.pdf``."""
    rows = sorted(read_manifest(batch_folder), key=lambda row: int(row["sequence"]))
    target = os.path.join(batch_folder, STREAM)
    tmp = f"{target}.{os.getpid()}.tmp"
    merge_pdfs([os.path.join(batch_folder, row["file"]) for row in rows], tmp)
    os.replace(tmp, target)
    fsync_folder(batch_folder)
    return target


def merge_pdfs(sources: Sequence[str], target: str) -> None:
    """Write the pages of ``sources``, in order, as one PDF at ``target`` (fsynced).

    qpdf (pikepdf) copies the pages' objects as they are: about 0.8 ms a statement here,
    where pypdf, parsing every object in Python, took about 7 ms. The sources are read into
    memory (one batch, or one production stream of ``[production] stream_documents``), not held open
    as files, because qpdf reads their streams only when the target is written."""
    import pikepdf

    with contextlib.ExitStack() as open_sources, pikepdf.new() as merged:
        for source in sources:
            with open(source, "rb") as fh:
                pdf = open_sources.enter_context(pikepdf.open(io.BytesIO(fh.read())))
            merged.pages.extend(pdf.pages)
        with open(target, "wb") as fh:
            merged.save(fh)
            fh.flush()
            os.fsync(fh.fileno())


def _pages(pdf: bytes, meta: Mapping[str, Any]) -> int | None:
    if isinstance(meta.get("pages"), int):
        return int(meta["pages"])
    try:
        return len(PdfReader(io.BytesIO(pdf)).pages)
    except Exception:  # pypdf raises many kinds for a broken file
        return None


def _truncate_quietly(fh: io.TextIOBase, size: int) -> None:
    try:
        fh.truncate(size)
    except OSError:
        pass

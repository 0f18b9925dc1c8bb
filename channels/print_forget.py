"""Taking documents out of print batches again (erasure of a customer).

Each document is deleted from its batch; the batch's manifest and print stream are written
again without it (under the batch's lock, so never while a worker has the batch open), and
so is every production folder (``channels.print_production``) that held it, cut into
streams no larger than its largest one was. A batch left with no documents keeps neither a
manifest nor a stream. Delivery markers (``.delivered/``) hold only message ids and batch
names, and stay.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Collection, Iterable

from .base import Delivered, Forgotten
from .files import fsync_folder
from .print import BATCH_ID, DOCUMENTS, MANIFEST, STREAM, build_stream, lock_batch, read_manifest
from .print_production import produce

PRODUCTION = "production-"
_DOCUMENT = re.compile(rf"{DOCUMENTS}/[A-Za-z0-9][A-Za-z0-9._-]*\.pdf")


def forget(folder: str, delivered: Collection[Delivered]) -> Forgotten:
    files_by_batch: dict[str, set[str]] = {}
    for item in delivered:
        batch, file = _located(item)
        if batch is not None:
            files_by_batch.setdefault(batch, set()).add(file)
    removed: set[str] = set()  # "<batch>/documents/<file>"
    rebuilt: list[str] = []
    for batch, files in sorted(files_by_batch.items()):
        taken = _forget_in_batch(os.path.join(folder, batch), files)
        if taken:
            removed |= {f"{batch}/{file}" for file in taken}
            rebuilt.append(batch)
    rebuilt += _produce_again(folder, removed)
    return Forgotten(messages=len(removed), rebuilt=tuple(rebuilt))


def _located(item: Delivered) -> tuple[str | None, str]:
    """(batch, ``documents/<file>``) of a delivery; the provider id is the file in the batch
    it was written to, or ``<batch>/documents/<file>`` when a re-send found it in an earlier
    batch. (None, "") for anything that does not name a document of a batch."""
    batch, file = item.batch_id, item.provider_id
    if f"/{DOCUMENTS}/" in file:
        batch, rest = file.split(f"/{DOCUMENTS}/", 1)
        file = f"{DOCUMENTS}/{rest}"
    if not batch or not BATCH_ID.fullmatch(batch) or not _DOCUMENT.fullmatch(file):
        return None, ""
    return batch, file


def _forget_in_batch(batch_folder: str, files: set[str]) -> set[str]:
    """Delete ``files`` from the batch and write its manifest and stream again; returns
    the files that were there (as a document or a manifest row)."""
    if not os.path.isdir(batch_folder):
        return set()
    lock = lock_batch(batch_folder, blocking=True)
    try:
        rows = read_manifest(batch_folder)
        kept = [row for row in rows if row["file"] not in files]
        taken = {row["file"] for row in rows if row["file"] in files}
        for file in files:
            path = os.path.join(batch_folder, file)
            if os.path.exists(path):
                os.unlink(path)
                taken.add(file)
        if taken:
            _write_manifest(batch_folder, kept, fieldnames=rows[0].keys() if rows else ())
            if kept:
                build_stream(batch_folder)
            else:
                _unlink_quietly(os.path.join(batch_folder, STREAM))
            fsync_folder(os.path.join(batch_folder, DOCUMENTS))
        return taken
    finally:
        os.close(lock)


def _write_manifest(batch_folder: str, rows: list[dict[str, str]], fieldnames: Iterable[str]) -> None:
    """The rows as they were read (cells already made safe for spreadsheets); no rows: no manifest."""
    target = os.path.join(batch_folder, MANIFEST)
    if not rows:
        _unlink_quietly(target)
        return
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _produce_again(folder: str, removed: set[str]) -> list[str]:
    """Make every production folder that held a removed document again from its batches."""
    if not removed or not os.path.isdir(folder):
        return []
    made = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_dir() or not entry.name.startswith(PRODUCTION) or entry.name.endswith(".tmp"):
            continue
        rows = read_manifest(entry.path)
        if not any(row["source"] in removed for row in rows):
            continue
        batches = sorted({row["source"].split(f"/{DOCUMENTS}/", 1)[0] for row in rows})
        per_stream: dict[str, int] = {}
        for row in rows:
            per_stream[row["stream"]] = per_stream.get(row["stream"], 0) + 1
        produce(folder, batches, entry.name.removeprefix(PRODUCTION), max_documents=max(per_stream.values()))
        made.append(entry.name)
    return made


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

"""Postal production of print batches: what the print shop receives once a run is done.

Workers write documents to batches as they go (in whatever order the outbox hands them
out). Production re-orders them for the post: sorted by postal code, the documents of one
household (same address) next to each other in one envelope, cut into print streams of a
bounded number of documents (never splitting an envelope), each merged one at a time so
memory stays flat, with a manifest:

    <folder>/production-<name>/stream-0001.pdf ...
    <folder>/production-<name>/manifest.csv   stream, sequence, envelope, envelope_pages,
                                              message_id, customer, pages, household_key,
                                              postal_code, source
"""
from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Sequence
from itertools import groupby

from .files import fsync_folder
from .print import csv_safe, merge_pdfs, read_manifest

COLUMNS = ("stream", "sequence", "envelope", "envelope_pages", "message_id", "customer", "pages",
           "household_key", "postal_code", "source")


def _envelopes(rows: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    rows.sort(key=lambda r: (r["postal_code"], r["household_key"], r["customer"], r["message_id"]))
    return [list(group) for _, group in groupby(rows, key=lambda r: (r["postal_code"], r["household_key"]))]


def _streams(envelopes: list[list[dict[str, str]]], max_documents: int) -> list[list[list[dict[str, str]]]]:
    streams: list[list[list[dict[str, str]]]] = [[]]
    count = 0
    for envelope in envelopes:
        if streams[-1] and count + len(envelope) > max_documents:
            streams.append([])
            count = 0
        streams[-1].append(envelope)
        count += len(envelope)
    return streams if streams[0] else []


def produce(folder: str, batch_ids: Sequence[str], name: str, *, max_documents: int = 500) -> str:
    """Build the production folder for ``batch_ids`` (again from scratch if it exists)."""
    rows: dict[str, dict[str, str]] = {}
    for batch in batch_ids:
        for row in read_manifest(os.path.join(folder, batch)):
            rows.setdefault(row["message_id"], dict(row, source=f"{batch}/{row['file']}"))
    target = os.path.join(folder, f"production-{name}")
    staging = f"{target}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    sequence = envelope_no = 0
    with open(os.path.join(staging, "manifest.csv"), "w", newline="", encoding="utf-8") as fh:
        manifest = csv.writer(fh)
        manifest.writerow(COLUMNS)
        for number, stream in enumerate(_streams(_envelopes(list(rows.values())), max_documents), start=1):
            stream_name = f"stream-{number:04d}.pdf"
            sources = []
            for envelope in stream:
                envelope_no += 1
                envelope_pages = sum(int(r["pages"]) for r in envelope)
                for row in envelope:
                    sequence += 1
                    sources.append(os.path.join(folder, row["source"]))
                    manifest.writerow([csv_safe(cell) for cell in (
                        stream_name, sequence, envelope_no, envelope_pages, row["message_id"], row["customer"],
                        row["pages"], row["household_key"], row["postal_code"], row["source"])])
            merge_pdfs(sources, os.path.join(staging, stream_name))
    fsync_folder(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target

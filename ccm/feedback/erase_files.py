"""Erasure from the files the engine wrote under ``var_dir``.

- the archive: the customer's statement PDFs (their index rows go with the database part);
- each channel's own copies (``Channel.forget``): documents in print batches and the
  production folders made of them (streams and manifests rebuilt without them), e-mails in
  the maildir, lines of the SMS file. A channel that hands messages to a server (SMTP, an
  SMS gateway) keeps no copy, and what it delivered is out of reach;
- the rejects files under ``<var_dir>/rejects``: rows that name the customer (external id,
  e-mail address, phone number, account or full name as a whole word).

A kind named in ``[erasure] retain`` is kept as it is, and the erasure says so.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import Delivered, channel_from_url
from ccm.settings import RETAINABLE
from ccm.models import CHANNEL_KINDS, ArchivedDocument, Customer, FeedRecord, Message
from ccm.runs import archive_root

if TYPE_CHECKING:
    from ccm.wiring import Engine

RETAINED = "kept by [erasure] retain"
_WHAT = {
    "archive": ("archived PDFs", "deleted"),
    "print": ("printed documents", "taken out of their print batches"),
    "email": ("e-mails", "deleted from the maildir"),
    "sms": ("SMS lines", "dropped from the SMS file"),
    "inbox": ("inbox messages", "deleted from the inbox folder"),
    "webhook": ("webhook messages", "removed"),
    "rejects": ("rows of rejects files", "dropped"),
}


@dataclass(frozen=True)
class Removed:
    kind: str  # one of RETAINABLE
    count: int
    detail: str = ""  # what was made again without them

    @property
    def what(self) -> str:
        return " ".join(_WHAT[self.kind])


@dataclass(frozen=True)
class Kept:
    kind: str
    count: int
    why: str

    @property
    def what(self) -> str:
        return _WHAT[self.kind][0]


@dataclass(frozen=True)
class Trail:
    """What the engine wrote about one customer, read before anything is erased."""

    deliveries: dict[str, list[Delivered]]  # channel kind -> what its messages were delivered as
    archive: list[Path]
    names: tuple[str, ...]  # what names them in a line of a rejects file

    @classmethod
    def of(cls, session: Session, customer: Customer, var_dir: Path) -> "Trail":
        deliveries: dict[str, list[Delivered]] = {kind: [] for kind in CHANNEL_KINDS}
        for channel, provider_id, batch_id in session.execute(
            select(Message.channel, Message.provider_id, Message.batch_id)
            .where(Message.customer_id == customer.id, Message.provider_id.is_not(None))
        ):
            deliveries.setdefault(channel, []).append(Delivered(provider_id, batch_id))
        root = archive_root(var_dir)
        archive = [root / path for path in session.scalars(select(ArchivedDocument.path).where(ArchivedDocument.customer_id == customer.id))]
        accounts = session.scalars(select(FeedRecord.account).where(FeedRecord.customer_id == customer.id))
        names = (customer.external_id, customer.email, customer.phone, customer.name, *accounts)
        return cls(deliveries, archive, tuple(sorted({name.strip() for name in names if name and name.strip()})))


def erase_files(engine: "Engine", trail: Trail, retain: set[str]) -> tuple[list[Removed], list[Kept]]:
    removed: list[Removed] = []
    kept: list[Kept] = []
    if "archive" in retain:
        kept.append(Kept("archive", len(trail.archive), RETAINED))
    else:
        removed.append(Removed("archive", _delete_archived(trail.archive, archive_root(engine.var_dir))))
    for kind in CHANNEL_KINDS:
        delivered = trail.deliveries.get(kind, [])
        if not delivered and not engine.settings["channels"].get(kind):
            continue  # an optional channel not set up, and nothing went through it
        if kind in retain:
            kept.append(Kept(kind, len(delivered), RETAINED))
        else:
            outcome = _forget(engine, kind, delivered)
            (kept if isinstance(outcome, Kept) else removed).append(outcome)
    if "rejects" in retain:
        kept.append(Kept("rejects", _scrub_rejects(engine.var_dir / "rejects", trail.names, dry_run=True), RETAINED))
    else:
        removed.append(Removed("rejects", _scrub_rejects(engine.var_dir / "rejects", trail.names)))
    return removed, kept


def _forget(engine: "Engine", kind: str, delivered: list[Delivered]) -> Removed | Kept:
    """The channel of ``kind`` takes these deliveries out of its own files, if it keeps any."""
    if not delivered:
        return Removed(kind, 0)
    if not engine.settings["channels"].get(kind):
        return Kept(kind, len(delivered), f"[channels] {kind} is not set any more: what it delivered is out of reach here")
    with channel_from_url(engine.settings["channels"][kind]) as channel:
        forgotten = channel.forget(delivered)
        if forgotten is None:
            return Kept(kind, len(delivered), f"delivered through {channel.url()}, which keeps no copy here; "
                                              "what the recipient received is out of reach")
    return Removed(kind, forgotten.messages, f"rebuilt without them: {', '.join(forgotten.rebuilt)}" if forgotten.rebuilt else "")


def _delete_archived(files: list[Path], root: Path) -> int:
    deleted = 0
    for path in files:
        if path.exists():
            path.unlink()
            deleted += 1
        _prune(path.parent, root)  # the folder is named after the account
    return deleted


def _prune(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _scrub_rejects(folder: Path, names: tuple[str, ...], *, dry_run: bool = False) -> int:
    """Drop the rows of the rejects files that name the customer; a file left without rows
    goes. Returns the number of rows (that would be) dropped."""
    if not names or not folder.is_dir():
        return 0
    pattern = re.compile(r"(?<![\w.@+-])(?:" + "|".join(map(re.escape, names)) + r")(?![\w@-])", re.IGNORECASE)

    def names_them(row: list[str]) -> bool:
        return any(pattern.search(cell) for cell in row)

    dropped = 0
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.reader(fh)
            next(rows, None)  # the header
            found = left = 0
            for row in rows:
                if names_them(row):
                    found += 1
                else:
                    left += 1
        dropped += found
        if dry_run or not found:
            continue
        if not left:
            path.unlink()
            continue
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with path.open(encoding="utf-8-sig", newline="") as fh, tmp.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerows(row for number, row in enumerate(csv.reader(fh)) if number == 0 or not names_them(row))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    return dropped

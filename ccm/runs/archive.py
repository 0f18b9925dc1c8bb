"""The document archive: every statement PDF a message delivered (by post or attached to
an e-mail), kept byte for byte and indexed by customer, account and cycle. A reprint
returns the archived file after checking its hash; it never renders again.

Files live under ``<var_dir>/archive/<communication>/<cycle>/<account>/<message file id>.pdf``;
the file is written (atomically, fsynced) before the send, and indexed in the same
transaction that records the message as sent.
"""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import ArchivedDocument, Message, Run

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class ArchiveError(Exception):
    """A document cannot be found in the archive, or is not what was sent."""


@dataclass(frozen=True)
class Archived:
    path: str  # relative to the archive root
    sha256: str
    pages: int
    size: int


def archive_root(var_dir: Path) -> Path:
    return Path(var_dir) / "archive"


def _part(value: str) -> str:
    return _UNSAFE.sub("_", value)[:80] or "_"


def store(root: Path, *, communication: str, cycle: str, account: str | None, file_id: str, data: bytes, pages: int) -> Archived:
    relative = Path(_part(communication)) / _part(cycle) / _part(account or "no-account") / f"{_part(file_id)}.pdf"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return Archived(path=relative.as_posix(), sha256=hashlib.sha256(data).hexdigest(), pages=pages, size=len(data))


def index_entry(message: Message, run: Run, communication: str, archived: Archived, pdf_a: bool) -> dict:
    record = message.feed_record
    return {
        "message_id": message.id,
        "customer_id": message.customer_id,
        "account": record.account if record else None,
        "cycle": run.cycle,
        "communication": communication,
        "path": archived.path,
        "sha256": archived.sha256,
        "pages": archived.pages,
        "size": archived.size,
        "pdf_a": pdf_a,
    }


def reprint(session: Session, root: Path, message_id: int) -> tuple[ArchivedDocument, bytes]:
    """The archived document of a message, byte for byte, after checking its hash."""
    entry = session.scalar(select(ArchivedDocument).where(ArchivedDocument.message_id == message_id))
    if entry is None:
        exists = session.get(Message, message_id) is not None
        raise ArchiveError(
            f"message {message_id} has no archived document" if exists else f"no such message: {message_id}"
        )
    path = root / entry.path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArchiveError(f"archived document of message {message_id} cannot be read ({path}): {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ArchiveError(f"archived document of message {message_id} does not match its recorded hash: it was altered")
    return entry, data

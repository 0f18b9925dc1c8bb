"""Messages kept for the customer to read in their inbox on the company's website.

``inbox:///var/ccm/inbox`` or ``inbox://var/inbox`` (relative to the current folder).
Each message is one JSON file, ``<folder>/<kk>/<key>/<message>.json``: ``key`` is the
SHA-256 (hex) of the recipient, the customer's external id, which is neither in the path
nor in the file; ``kk`` its first two digits; ``<message>`` the message id made safe as a
file name. The file holds ``{"message_id", "content", "meta", "stored_at"}`` (compact
UTF-8 JSON, ``stored_at`` in ISO 8601 UTC). It is written to a temporary file beside it,
fsynced and linked into place, so a reader never sees half of it and a second delivery of
the same message keeps the first file (and its ``stored_at``).

The provider id is the file's path relative to the folder. :meth:`InboxChannel.read` gives
a message back (the engine's inbox pages call it); ``forget`` deletes messages (erasure).
A folder that cannot be made or written is a transient failure, as for ``maildir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from .base import Channel, Delivered, DeliveryResult, Forgotten, Outbound
from .files import fsync_folder, safe_filename, write_new_file
from .redact import os_error_detail
from .rendered import encoded, rendered_problem
from .urls import folder_from_url, folder_url, split_url

log = logging.getLogger(__name__)

_PROVIDER_ID = re.compile(r"([0-9a-f]{2})/(\1[0-9a-f]{62})/[A-Za-z0-9_-][A-Za-z0-9._-]{0,150}\.json")


def message_path(to: str, message_id: str) -> str:
    """Where the message is kept, relative to the inbox folder (its provider id)."""
    key = hashlib.sha256(to.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{key[:2]}/{key}/{safe_filename(message_id)}.json"


class InboxChannel(Channel):
    name: ClassVar[str] = "inbox"
    kind: ClassVar[str] = "inbox"
    schemes: ClassVar[tuple[str, ...]] = ("inbox",)
    max_body: ClassVar[int | None] = 1024 * 1024  # bytes of one message's file

    def __init__(self, url: str) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.folder = folder_from_url(parts, self.name)

    def url(self, privacy: bool = True) -> str:
        return folder_url("inbox", self.folder)

    def send(self, out: Outbound) -> DeliveryResult:
        problem = rendered_problem(out)
        if problem:
            return DeliveryResult("permanent", detail=problem)
        assert isinstance(out.content, Mapping)
        stored_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        record = {"message_id": out.message_id, "content": dict(out.content), "meta": dict(out.meta), "stored_at": stored_at}
        data = encoded(record, self.max_body, "message")
        if isinstance(data, DeliveryResult):
            return data
        provider_id = message_path(out.to, out.message_id)
        folder, name = os.path.split(os.path.join(self.folder, provider_id))
        try:
            _make_folders(folder)
            write_new_file(folder, name, data)  # False: delivered before, the first copy stays
        except OSError as exc:
            detail = os_error_detail(exc, "cannot write to inbox")
            log.warning("inbox %s: %s (message %s)", self.url(), detail, out.message_id)
            return DeliveryResult("transient", detail=detail)
        return DeliveryResult("sent", provider_id=provider_id)

    def read(self, provider_id: str) -> dict[str, Any] | None:
        """The message ``send`` kept under ``provider_id``: ``{"message_id", "content",
        "meta", "stored_at"}``; None when it is not there (forgotten). A provider id that
        is not one this channel gives out (another path, ``..``) raises ValueError."""
        path = self._path(provider_id)
        if path is None:
            raise ValueError(f"inbox: {str(provider_id)[:80]!r} is not an inbox message's provider id")
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        record = json.loads(data)
        if not isinstance(record, dict):
            raise ValueError(f"inbox: {provider_id} does not hold a message")
        return record

    def forget(self, delivered: Collection[Delivered]) -> Forgotten:
        """Delete these messages (``provider_id``: their path), and what a crash left of
        their temporary files; a customer's folder goes once it is empty. Provider ids that
        are not this channel's are skipped."""
        paths = {path for item in delivered if (path := self._path(item.provider_id))}
        removed = 0
        folders: set[str] = set()
        for path in sorted(paths):
            folder, name = os.path.split(path)
            try:
                os.unlink(path)
                removed += 1
                folders.add(folder)
            except FileNotFoundError:
                pass
            if _remove_temporary(folder, name):
                folders.add(folder)
        for folder in folders:
            try:
                os.rmdir(folder)  # named after the customer's key: not kept once empty
            except OSError:
                fsync_folder(folder)
            else:
                fsync_folder(os.path.dirname(folder))
        return Forgotten(messages=removed)

    def _path(self, provider_id: object) -> str | None:
        if not isinstance(provider_id, str) or not _PROVIDER_ID.fullmatch(provider_id):
            return None
        return os.path.join(self.folder, provider_id)


def _make_folders(folder: str) -> None:
    """``folder`` and its missing parents, each new one made durable in its parent."""
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    if parent != folder:
        _make_folders(parent)
    try:
        os.mkdir(folder)
    except FileExistsError:
        return  # made meanwhile; or a file in the way, which the next mkdir or write reports
    fsync_folder(parent)


def _remove_temporary(folder: str, name: str) -> bool:
    """Delete ``.<name>.*.tmp`` files (``write_new_file``'s, left by a crash); whether any were."""
    try:
        with os.scandir(folder) as entries:
            doomed = [e.path for e in entries if e.name.startswith(f".{name}.") and e.name.endswith(".tmp")]
    except (FileNotFoundError, NotADirectoryError):
        return False
    for path in doomed:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return bool(doomed)

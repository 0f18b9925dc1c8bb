"""SMS into a JSON Lines file (the embedded default's SMS sink).

``file:///var/ccm/sms.jsonl`` or ``file://var/sms.jsonl`` (relative to the current
folder). One line per message: ``{"id", "to", "text", "encoding", "segments", "at"}``.
Appends hold an exclusive ``flock`` and are fsynced, so several processes can share
the file. ``encoding`` and ``segments`` come from ``Outbound.meta`` (``documents``
computes them) and are ``null`` when not given.

Idempotent on the message id: a marker (``<file>.delivered/<id>``) is written before the
line; a message sent again whose marker exists is appended only if its line is missing
(a process killed between the two), so a resumed run never texts a customer twice.
``forget`` drops the lines of given messages (erasure of a customer).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from datetime import datetime, timezone
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from .base import Channel, Delivered, DeliveryResult, Forgotten, Outbound
from .sms_checks import sms_problem
from .callback_events import parse_events
from .files import DeliveryMarkers, fsync_folder
from .redact import os_error_detail
from .urls import folder_from_url, folder_url, split_url

log = logging.getLogger(__name__)



class SmsFileChannel(Channel):
    name: ClassVar[str] = "sms-file"
    kind: ClassVar[str] = "sms"
    schemes: ClassVar[tuple[str, ...]] = ("file",)
    max_body: ClassVar[int | None] = 1600

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Callbacks in the engine's JSON format (``channels.callback_events``)."""
        return parse_events(payload, "sms")

    def __init__(self, url: str) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.path = folder_from_url(parts, self.name)
        self.markers = DeliveryMarkers(self.path + ".delivered")

    def url(self, privacy: bool = True) -> str:
        return folder_url("file", self.path)

    def send(self, out: Outbound) -> DeliveryResult:
        problem = sms_problem(out, self.max_body)
        if problem:
            return DeliveryResult("permanent", detail=problem)
        line = json.dumps(
            {
                "id": out.message_id,
                "to": out.to,
                "text": out.content,
                "encoding": out.meta.get("encoding"),
                "segments": out.meta.get("segments"),
                "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            },
            ensure_ascii=False,
        )
        try:
            regular = not os.path.exists(self.path) or os.path.isfile(self.path)
            if regular:  # (markers make no sense beside a device such as /dev/full)
                if self.markers.get(out.message_id) is not None and self._holds(out.message_id):
                    return DeliveryResult("sent", provider_id=out.message_id)
                self.markers.put(out.message_id, "sent")
            self._append(line.encode("utf-8") + b"\n")
        except OSError as exc:
            detail = os_error_detail(exc, "cannot append to SMS file")
            log.warning("sms-file %s: %s (message %s)", self.url(), detail, out.message_id)
            return DeliveryResult("transient", detail=detail)
        return DeliveryResult("sent", provider_id=out.message_id)

    def _holds(self, message_id: str) -> bool:
        """Whether the file already has a line for this message (only read on a re-send)."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                return any(_line_id(line) == message_id for line in fh)
        except FileNotFoundError:
            return False

    def forget(self, delivered: Collection[Delivered]) -> Forgotten:
        """Drop the lines of these messages (``provider_id``: the line's ``id``). The file
        is written again beside it and put in its place under the lock appends take."""
        ids = {item.provider_id for item in delivered}
        if not ids or not os.path.isfile(self.path):
            return Forgotten()
        fd = self._open_locked(os.O_RDONLY)
        try:
            with open(fd, "rb", closefd=False) as fh:
                lines = fh.readlines()
            kept = [line for line in lines if _line_id(line.decode("utf-8", errors="replace")) not in ids]
            if len(kept) == len(lines):
                return Forgotten()
            tmp = f"{self.path}.{os.getpid()}.forget.tmp"
            with open(tmp, "wb") as out:
                out.writelines(kept)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            fsync_folder(os.path.dirname(self.path) or ".")
        finally:
            os.close(fd)  # releases the lock: waiting appends find the new file (``_open_locked``)
        return Forgotten(messages=len(lines) - len(kept), rebuilt=(os.path.basename(self.path),))

    def _open_locked(self, flags: int) -> int:
        """The file, opened and locked; opened again if ``forget`` replaced it meanwhile."""
        while True:
            fd = os.open(self.path, flags, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            opened = os.fstat(fd)
            try:
                current = os.stat(self.path)
                if (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino):
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _append(self, data: bytes) -> None:
        folder = os.path.dirname(self.path)
        if not os.path.exists(folder):
            os.makedirs(folder, exist_ok=True)
        fd = self._open_locked(os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                _truncate_quietly(fd, start)  # no half line for the next writer
                raise
        finally:
            os.close(fd)  # closing releases the lock


def _line_id(line: str) -> object:
    """The id of one JSONL line; None for a blank, torn or foreign line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("id") if isinstance(record, dict) else None


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass

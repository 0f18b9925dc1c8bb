"""E-mail into a local Maildir (the embedded default's e-mail sink).

``maildir:///var/ccm/mail`` or ``maildir://var/mail`` (relative to the current folder).
Each message lands in ``new/<name from message_id>``, written in ``tmp/`` first, so a
second delivery of the same message is a no-op and mail readers (``mailbox.Maildir``)
never see half a file. ``forget`` deletes messages from ``new/`` and ``cur/``.
"""

from __future__ import annotations

import logging
import os
from email.message import EmailMessage
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from .base import Channel, Delivered, DeliveryResult, Forgotten, Outbound
from .callback_events import parse_events
from .files import fsync_folder, safe_filename, write_new_file
from .redact import os_error_detail
from .urls import folder_from_url, folder_url, split_url

log = logging.getLogger(__name__)


class MaildirChannel(Channel):
    name: ClassVar[str] = "maildir"
    kind: ClassVar[str] = "email"
    schemes: ClassVar[tuple[str, ...]] = ("maildir",)
    max_body: ClassVar[int | None] = 25 * 1024 * 1024

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Callbacks in the engine's JSON format (``channels.callback_events``)."""
        return parse_events(payload, "email")

    def __init__(self, url: str) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.folder = folder_from_url(parts, self.name)

    def url(self, privacy: bool = True) -> str:
        return folder_url("maildir", self.folder)

    def send(self, out: Outbound) -> DeliveryResult:
        if isinstance(out.content, EmailMessage):
            data = out.content.as_bytes()
        elif isinstance(out.content, bytes):
            data = out.content
        else:
            return DeliveryResult("permanent", detail="content is not an e-mail message")
        if self.max_body is not None and len(data) > self.max_body:
            return DeliveryResult("permanent", detail=f"message larger than {self.max_body} bytes")
        name = safe_filename(out.message_id)
        try:
            self._make_folders()
            if not self._already_delivered(name):
                new = os.path.join(self.folder, "new")
                write_new_file(new, name, data, tmp_folder=os.path.join(self.folder, "tmp"))
        except OSError as exc:
            detail = os_error_detail(exc, "cannot write to maildir")
            log.warning("maildir %s: %s (message %s)", self.url(), detail, out.message_id)
            return DeliveryResult("transient", detail=detail)
        return DeliveryResult("sent", provider_id=name)

    def forget(self, delivered: Collection[Delivered]) -> Forgotten:
        """Delete these messages (``provider_id``: their file name) from ``new/`` and ``cur/``."""
        names = {item.provider_id for item in delivered if item.provider_id == safe_filename(item.provider_id)}
        doomed = [path for name in names if os.path.exists(path := os.path.join(self.folder, "new", name))]
        cur = os.path.join(self.folder, "cur")
        if names and os.path.isdir(cur):
            with os.scandir(cur) as entries:  # a reader moved them here, adding ":2,FLAGS"
                doomed += [e.path for e in entries if e.name.split(":", 1)[0] in names]
        for path in doomed:
            os.unlink(path)
        for folder in {os.path.dirname(path) for path in doomed}:
            fsync_folder(folder)
        return Forgotten(messages=len(doomed))

    def _make_folders(self) -> None:
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.folder, sub), exist_ok=True)

    def _already_delivered(self, name: str) -> bool:
        """In ``new/``, or moved to ``cur/`` by a reader (``name:2,FLAGS``)."""
        if os.path.exists(os.path.join(self.folder, "new", name)):
            return True
        with os.scandir(os.path.join(self.folder, "cur")) as entries:
            return any(e.name == name or e.name.startswith(name + ":") for e in entries)

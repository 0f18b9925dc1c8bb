"""Helpers shared by the channels that write files: safe names and durable writes."""

from __future__ import annotations

import hashlib
import os
import re
import uuid

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME = 120


def safe_filename(message_id: str) -> str:
    """A file name made from ``message_id``: stable, distinct per id, no path tricks.

    Characters outside ``[A-Za-z0-9._-]`` (slashes, colons, angle brackets) are
    replaced, and a short hash of the original is appended whenever anything had to
    change, so two ids never share a name.
    """
    cleaned = _UNSAFE.sub("_", message_id).lstrip(".")
    if cleaned == message_id and 0 < len(cleaned) <= MAX_NAME:
        return cleaned
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:12]
    return f"{cleaned[:MAX_NAME] or 'message'}-{digest}"


def write_new_file(folder: str, name: str, data: bytes, tmp_folder: str | None = None) -> bool:
    """Write ``folder/name`` atomically and durably; ``False`` if it already existed.

    The data goes to a unique temporary file first (fsynced), then is linked into
    place, so readers never see a half-written file and two writers of the same name
    never both win.
    """
    tmp = os.path.join(tmp_folder or folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    target = os.path.join(folder, name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        fsync_folder(folder)
        return True
    finally:
        _unlink_quietly(tmp)


def fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class DeliveryMarkers:
    """One small file per delivered message id, written *before* the delivery itself.

    A process killed between delivering and reporting the delivery leaves the marker, so
    when the message is sent again the channel checks whether the delivery really
    happened (``delivered`` is given by the channel: a manifest row, a line in a file)
    instead of delivering twice. Markers survive batches and process restarts.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _path(self, message_id: str) -> str:
        return os.path.join(self.folder, safe_filename(message_id))

    def get(self, message_id: str) -> str | None:
        """What the marker recorded for ``message_id`` (e.g. where it went), or None."""
        try:
            with open(self._path(message_id), encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def put(self, message_id: str, where: str) -> None:
        os.makedirs(self.folder, exist_ok=True)
        path = self._path(message_id)
        tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(where)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

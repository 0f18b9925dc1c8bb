"""The engine's secret and the keys derived from it.

The secret is ``[web] secret_key``; where it is empty (the embedded default), a random
secret is made once in ``<var_dir>/secret.key`` (mode 0600). Every process that shares a
database (web servers, schedulers, Celery workers on other machines) must use the same
secret: set ``CCM_WEB__SECRET_KEY`` on all of them.

Each use gets its own key, ``HMAC-SHA256(secret, "ccm.<purpose>")``, so that one key
tells nothing about another. The suppression list's key hashes the addresses of erased
customers (``ccm.runs.policy.hashed_address``); sessions of an :class:`ccm.wiring.Engine`
carry its settings, so the lookups at planning and send time find it.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy.orm import Session

SESSION_SETTINGS = "ccm.settings"  # Session.info key: the settings of the engine that made the session


def secret_key(settings: dict) -> str:
    configured = settings["web"]["secret_key"]
    if configured:
        return configured
    return _file_key(str((Path(settings["ccm"]["var_dir"]) / "secret.key").resolve()))


@functools.lru_cache(maxsize=8)
def _file_key(name: str) -> str:
    """The key in ``<var_dir>/secret.key``, made once (read once per process)."""
    path = Path(name)
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def derived_key(settings: dict, purpose: str) -> bytes:
    return hmac.new(secret_key(settings).encode("utf-8"), f"ccm.{purpose}".encode("ascii"), hashlib.sha256).digest()


def suppression_key(session: Session) -> bytes:
    """The key of the suppression list's hashes, for a session made by an engine."""
    settings = session.info.get(SESSION_SETTINGS)
    if settings is None:
        raise RuntimeError("this database session was not made by an Engine: the suppression list's key is unknown")
    return derived_key(settings, "suppressions")

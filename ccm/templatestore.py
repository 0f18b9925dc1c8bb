"""The template store: versions of every template in the database.

The file library under ``templates/`` (listed in ``templates/library.toml``) seeds the
store: a file whose source differs from the latest stored version becomes a new version.
A run pins the versions it uses when it is planned and renders from those exact sources,
so a message can always say which version it was made with.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import Template, TemplateVersion, utcnow

MANIFEST = "library.toml"
LIBRARY_AUTHOR = "library"
TEXT_SUFFIXES = (".html", ".txt", ".css", ".svg", ".po")


class TemplateStoreError(Exception):
    """The library or the store is inconsistent; the message names the template."""


@dataclass(frozen=True)
class LibraryEntry:
    name: str
    kind: str
    title: str
    meta: dict[str, Any]


def read_manifest(templates_dir: Path) -> list[LibraryEntry]:
    path = templates_dir / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateStoreError(f"{path}: cannot read the template library manifest: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateStoreError(f"{path}: {exc}") from None
    entries = []
    for raw in data.get("template", data.get("templates", [])):
        name = raw["name"]
        meta = {k: v for k, v in raw.items() if k not in ("name", "kind", "title")}
        entries.append(LibraryEntry(name=name, kind=raw.get("kind", "partial"), title=raw.get("title", ""), meta=meta))
    return entries


def _library_files(templates_dir: Path, entries: Iterable[LibraryEntry]) -> dict[str, LibraryEntry]:
    """Every text file of the library: the manifest's entries and the assets they include."""
    files = {entry.name: entry for entry in entries}
    for path in sorted(templates_dir.rglob("*")):
        name = path.relative_to(templates_dir).as_posix()
        if path.is_file() and path.suffix in TEXT_SUFFIXES and name not in files:
            files[name] = LibraryEntry(name=name, kind="asset" if name.startswith("assets/") else "partial", title="", meta={})
    return files


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def sync_library(session: Session, templates_dir: Path) -> list[TemplateVersion]:
    """Store every library file whose source changed as a new approved version; return them."""
    entries = read_manifest(templates_dir)
    known = {t.name: t for t in session.scalars(select(Template))}
    created = []
    for name, entry in _library_files(templates_dir, entries).items():
        path = templates_dir / name
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateStoreError(f"{path}: listed in {MANIFEST} but cannot be read: {exc.strerror}") from None
        template = known.get(name)
        if template is None:
            template = Template(name=name, kind=entry.kind, title=entry.title)
            session.add(template)
            session.flush()
        latest = template.versions[-1] if template.versions else None
        digest = source_hash(source)
        if latest is not None and latest.source_hash == digest and latest.meta == entry.meta:
            continue
        now = utcnow()
        version = TemplateVersion(
            template=template,
            version=(latest.version + 1) if latest else 1,
            source=source,
            source_hash=digest,
            state="approved",
            meta=entry.meta,
            author=LIBRARY_AUTHOR,
            approved_by=LIBRARY_AUTHOR,
            approved_at=now,
            effective_from=now,
        )
        session.add(version)
        created.append(version)
    session.flush()
    return created


def effective_versions(session: Session) -> dict[str, int]:
    """Template name -> id of the approved version in effect now (the latest approved)."""
    now = utcnow()
    rows = session.execute(
        select(Template.name, TemplateVersion.id)
        .join(TemplateVersion)
        .where(TemplateVersion.state == "approved")
        .where((TemplateVersion.effective_from.is_(None)) | (TemplateVersion.effective_from <= now))
        .order_by(Template.name, TemplateVersion.version)
    )
    pinned: dict[str, int] = {}
    for name, version_id in rows:
        pinned[name] = version_id  # the last row per name is the newest version
    return pinned


@dataclass(frozen=True)
class PinnedTemplates:
    """The exact sources a run renders with, keyed by template name."""

    sources: dict[str, str]
    version_ids: dict[str, int]
    meta: dict[str, dict[str, Any]]

    def loader(self, name: str) -> str | None:
        return self.sources.get(name)


def load_pinned(session: Session, version_ids: dict[str, int]) -> PinnedTemplates:
    rows = session.execute(
        select(Template.name, TemplateVersion.source, TemplateVersion.meta)
        .join(TemplateVersion)
        .where(TemplateVersion.id.in_(list(version_ids.values())))
    )
    sources, meta = {}, {}
    for name, source, version_meta in rows:
        sources[name], meta[name] = source, version_meta or {}
    missing = set(version_ids) - set(sources)
    if missing:
        raise TemplateStoreError(f"pinned template versions are missing from the store: {', '.join(sorted(missing))}")
    return PinnedTemplates(sources=sources, version_ids=dict(version_ids), meta=meta)

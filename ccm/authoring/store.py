"""The template store: versions of every template and content block in the database.

The file library under ``templates/`` (listed in ``templates/library.toml``) seeds the
store: the first import into an empty store is version 1 of everything, approved by the
``library`` system user, so a fresh installation can run at once. After that, a library
file whose source is not yet stored becomes a new *draft* that goes through review like
any edit; an approved version is never overwritten. Every file is checked as a save is
(``ccm.authoring.checks``); a file with errors is not imported.

Approved versions are immutable: the engine refuses it here (an ORM event on every flush)
and the database refuses it too (a trigger, migration 0002). A version takes effect at
its ``effective_from``; a run pins the versions in effect when it is planned and renders
from those exact sources, so a message can always say which version it was made with.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from ccm.authoring.audit import record
from ccm.authoring.checks import Library, validate
from ccm.authoring.problems import errors
from ccm.models import Template, TemplateVersion, utcnow
from documents.typst_pdf import typst_references
from ccm.settings import load_settings

log = logging.getLogger(__name__)

MANIFEST = "library.toml"
LIBRARY_AUTHOR = "library"  # the system user that imports the file library
STATES = ("draft", "in_review", "approved", "retired")
# Content blocks: included by name from templates and filled into slots.
BLOCK_KINDS = ("insert", "legal", "offer")
# Once a version is approved, only its state may change, and only to retired.
FROZEN_FIELDS = ("template_id", "version", "source", "source_hash", "meta", "author", "approved_by", "approved_at", "effective_from")
TRANSITIONS = {
    "draft": ("draft", "in_review"),
    "in_review": ("in_review", "draft", "approved"),
    "approved": ("approved", "retired"),
    "retired": ("retired",),
}
TEXT_SUFFIXES = (".html", ".txt", ".css", ".svg", ".po")


class TemplateStoreError(Exception):
    """The library or the store is inconsistent; the message names the template."""


class ImmutableVersionError(TemplateStoreError):
    """Something tried to change an approved (or retired) version."""


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


@dataclass(frozen=True)
class SyncResult:
    created: list[TemplateVersion]
    refused: dict[str, list[Any]]  # file name -> its errors (``ccm.authoring.Problem``); nothing stored


def sync_library(session: Session, templates_dir: Path, settings: Mapping[str, Any] | None = None) -> list[TemplateVersion]:
    """Import library files whose source is not stored yet; return the new versions.

    Files that fail the save-time checks are not imported (a warning names each); see
    :func:`sync_library_checked` for the problems.
    """
    result = sync_library_checked(session, templates_dir, settings)
    for name, problems in result.refused.items():
        log.warning("%s: not imported from the template library, %d error(s): %s", name, len(problems), problems[0])
    return result.created


def sync_library_checked(session: Session, templates_dir: Path, settings: Mapping[str, Any] | None = None) -> SyncResult:
    """Import library files whose source is not stored yet, each checked as a save is.

    Into an empty store (the initial seed) every file goes in as version 1, approved by
    the ``library`` user and in effect at once. Later, a changed or new file becomes a
    new draft authored by ``library`` (it needs review and approval like any edit); a
    file identical to any stored version of its template is skipped, so syncing again,
    or after a marketer's edit, adds nothing. Every file to import is validated first,
    exactly as ``ccm templates edit`` validates (against the store and the other library
    files); a file with errors is refused and nothing of it is stored. ``settings``:
    the engine's (default: those of the session's engine, else the configured ones).
    """
    entries = read_manifest(templates_dir)
    known = {t.name: t for t in session.scalars(select(Template))}
    seeding = not known
    pending = _changed_files(templates_dir, entries, known)
    refused = _library_problems(session, pending, known, _settings(session, settings))
    created = []
    for name, (entry, source) in pending.items():
        if name in refused:
            continue
        template = known.get(name)
        if template is None:
            template = Template(name=name, kind=entry.kind, title=entry.title)
            session.add(template)
            session.flush()
        latest = template.versions[-1] if template.versions else None
        version = TemplateVersion(
            template=template,
            version=(latest.version + 1) if latest else 1,
            source=source,
            source_hash=source_hash(source),
            state="draft",
            meta=entry.meta,
            author=LIBRARY_AUTHOR,
        )
        if seeding:
            now = utcnow()
            version.state, version.approved_by, version.approved_at, version.effective_from = "approved", LIBRARY_AUTHOR, now, now
        session.add(version)
        session.flush()
        record(session, LIBRARY_AUTHOR, "seed" if seeding else "sync", name, version.version, state=version.state)
        created.append(version)
    session.flush()
    return SyncResult(created, refused)


def _changed_files(templates_dir: Path, entries: list[LibraryEntry],
                   known: dict[str, Template]) -> dict[str, tuple[LibraryEntry, str]]:
    """Library files whose source (and meta) no stored version of their template has."""
    changed = {}
    for name, entry in _library_files(templates_dir, entries).items():
        path = templates_dir / name
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise TemplateStoreError(f"{path}: listed in {MANIFEST} but cannot be read: {reason}") from None
        template = known.get(name)
        digest = source_hash(source)
        if template and any(v.source_hash == digest and (v.meta or {}) == entry.meta for v in template.versions):
            continue
        changed[name] = (entry, source)
    return changed


def _library_problems(session: Session, pending: dict[str, tuple[LibraryEntry, str]], known: dict[str, Template],
                      settings: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The errors of each pending file, validated against the store with all pending files in it."""
    kinds = {name: known[name].kind if name in known else entry.kind for name, (entry, _) in pending.items()}
    candidates = library(session)
    for name, (entry, source) in pending.items():
        candidates = candidates.with_version(name, kinds[name], source, entry.meta)
    key = _checked_key(candidates, sorted(pending), settings)
    if key not in _CHECKED:
        _CHECKED[key] = {}
        for name, (entry, source) in pending.items():
            if found := errors(validate(name, kinds[name], source, entry.meta, candidates, settings)):
                _CHECKED[key][name] = found
        while len(_CHECKED) > 16:
            _CHECKED.pop(next(iter(_CHECKED)))
    return dict(_CHECKED[key])


# Validation is a function of the files, the library they are checked against and the
# settings it reads: a process that seeds the same library again (each test, each
# worker) checks it once.
_CHECKED: dict[str, dict[str, list[Any]]] = {}


def _checked_key(candidates: Any, names: list[str], settings: Mapping[str, Any]) -> str:
    inputs = [candidates.sources, candidates.kinds, candidates.meta, names,
              settings.get("company"), settings.get("authoring")]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _settings(session: Session, settings: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if settings is not None:
        return settings
    if (engine_settings := session.info.get("ccm.settings")) is not None:  # set by the Engine for its sessions
        return engine_settings
    return load_settings()


def effective_versions(session: Session, at: dt.datetime | None = None) -> dict[str, int]:
    """Template name -> id of the approved version in effect at ``at`` (default: now).

    In effect is the approved version with the latest ``effective_from`` not after
    ``at`` (ties: the higher version). So a version approved to take effect on the 1st
    replaces the current one on the 1st, even if a fix of the current one was approved
    in between; retire a scheduled version to cancel it.
    """
    at = at or utcnow()
    rows = session.execute(
        select(Template.name, TemplateVersion.id)
        .join(TemplateVersion)
        .where(TemplateVersion.state == "approved")
        .where((TemplateVersion.effective_from.is_(None)) | (TemplateVersion.effective_from <= at))
        .order_by(Template.name, TemplateVersion.effective_from.is_not(None), TemplateVersion.effective_from, TemplateVersion.version)
    )
    pinned: dict[str, int] = {}
    for name, version_id in rows:
        pinned[name] = version_id  # the last row per name is the one in effect
    return pinned


@dataclass(frozen=True)
class PinnedTemplates:
    """The exact sources a run renders with, keyed by template name."""

    sources: dict[str, str]
    version_ids: dict[str, int]
    meta: dict[str, dict[str, Any]]
    kinds: dict[str, str] = field(default_factory=dict)

    def loader(self, name: str) -> str | None:
        return self.sources.get(name)

    def used_by(self, name: str) -> dict[str, int]:
        """Template name -> version id of ``name`` and of everything it includes, imports or
        extends by a constant name, recursively (for the per-message reprint record)."""
        found: dict[str, int] = {}
        pending = [name]
        while pending:
            current = pending.pop()
            if current in found or current not in self.sources:
                continue
            found[current] = self.version_ids[current]
            source = self.sources[current]
            pending.extend(typst_references(source, current) if current.endswith(".typ") else referenced_templates(source))
        return found


@functools.lru_cache(maxsize=512)
def referenced_templates(source: str) -> tuple[str, ...]:
    """Names a template includes, imports or extends by a constant string (syntax errors: none).
    Cached: it runs for every message rendered."""
    from jinja2 import Environment, TemplateSyntaxError, nodes

    try:
        tree = Environment().parse(source)
    except TemplateSyntaxError:
        return ()
    names = []
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        if isinstance(node.template, nodes.Const) and isinstance(node.template.value, str):
            names.append(node.template.value)
    return tuple(names)


def load_pinned(session: Session, version_ids: dict[str, int]) -> PinnedTemplates:
    rows = session.execute(
        select(Template.name, Template.kind, TemplateVersion.source, TemplateVersion.meta)
        .join(TemplateVersion)
        .where(TemplateVersion.id.in_(list(version_ids.values())))
    )
    sources, meta, kinds = {}, {}, {}
    for name, kind, source, version_meta in rows:
        sources[name], meta[name], kinds[name] = source, version_meta or {}, kind
    missing = set(version_ids) - set(sources)
    if missing:
        raise TemplateStoreError(f"pinned template versions are missing from the store: {', '.join(sorted(missing))}")
    return PinnedTemplates(sources=sources, version_ids=dict(version_ids), meta=meta, kinds=kinds)


def get_template(session: Session, name: str) -> Template:
    template = session.scalar(select(Template).where(Template.name == name))
    if template is None:
        raise LookupError(f"no such template: {name} (see: ccm templates list)")
    return template


def get_version(session: Session, name: str, version: int | None = None) -> TemplateVersion:
    """Version ``version`` of template ``name``; without a number, the newest one."""
    template = get_template(session, name)
    if not template.versions:
        raise LookupError(f"template {name} has no versions")
    if version is None:
        return template.versions[-1]
    for candidate in template.versions:
        if candidate.version == version:
            return candidate
    raise LookupError(f"template {name} has no version {version} (versions 1 to {template.versions[-1].version})")


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_approved_versions(session: Session, _context: object, _instances: object) -> None:
    """The engine's guard (the database has a trigger as well): approved versions are
    immutable, states move only along ``TRANSITIONS``, approved versions are never deleted."""
    for obj in session.dirty:
        if not isinstance(obj, TemplateVersion):
            continue
        state = inspect(obj)
        old_state = _committed(state, "state")
        if old_state is None:
            continue
        if obj.state not in TRANSITIONS.get(old_state, ()):
            raise ImmutableVersionError(f"{obj.template.name} v{obj.version} is {old_state}; it cannot become {obj.state}")
        if old_state in ("approved", "retired"):
            changed = [name for name in FROZEN_FIELDS if state.attrs[name].history.has_changes()]
            if changed:
                raise ImmutableVersionError(
                    f"{obj.template.name} v{obj.version} is {old_state} and immutable ({', '.join(changed)}); a change is a new draft")
    for obj in session.deleted:
        if isinstance(obj, TemplateVersion) and obj.state in ("approved", "retired"):
            raise ImmutableVersionError(f"{obj.template.name} v{obj.version} is {obj.state}; it cannot be deleted")


def _committed(state: Any, attribute: str) -> Any:
    history = state.attrs[attribute].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return None


def library(session: Session) -> Library:
    """What templates may refer to: per name the version in effect, else the newest one not retired."""
    effective = set(effective_versions(session).values())
    sources, kinds, meta = {}, {}, {}
    for template in session.scalars(select(Template)):
        live = [v for v in template.versions if v.state != "retired"]
        chosen = next((v for v in reversed(live) if v.id in effective), live[-1] if live else None)
        if chosen is not None:
            sources[template.name], kinds[template.name], meta[template.name] = chosen.source, template.kind, dict(chosen.meta or {})
    return Library(sources, kinds, meta)

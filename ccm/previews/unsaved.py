"""Previews of an unsaved source (what an editor shows as the author types): rendered
through the same sandboxed composition as ``render_bundle``, nothing stored in the template
store. A rendered preview can be kept for a while under an unguessable token, so that its
parts (the e-mail's HTML, the PDF and its pages as PNG) are served as responses of their own."""
from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm.authoring.store import get_template
from ccm.previews.preview import Bundle, PreviewError, compose, render_version, sms_json
from ccm.wiring import Engine

KEEP_SECONDS = 3600  # a kept preview is removed after an hour
PNG_RESOLUTION = 60


@dataclass
class _Template:
    name: str
    kind: str


@dataclass
class _Unsaved:
    template: _Template
    version: int
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


def render_source(engine: Engine, name: str, source: str, *, customer: str | None = None, cycle: str | None = None,
                  sample: bool = False, all_variants: bool = False, kind: str | None = None,
                  given: dict[str, Any] | None = None) -> Bundle:
    """Render ``source`` as if it were a new draft of template ``name`` (its kind and meta as
    the newest version has them); the bundle's version is that newest version's number. For
    a template not made yet, as its first draft of ``kind`` (version 0; LookupError without one)."""
    with engine.db.session() as session:
        try:
            stored = get_template(session, name)
        except LookupError:
            if kind is None:
                raise
            draft = _Unsaved(_Template(name, kind), 0, source)
        else:
            latest = stored.versions[-1] if stored.versions else None
            draft = _Unsaved(_Template(stored.name, stored.kind), latest.version if latest else 0, source,
                             dict(latest.meta or {}) if latest else {})
        return render_version(engine, session, draft, customer=customer, cycle=cycle, sample=sample, all_variants=all_variants,
                              given=given)


def pdf_pages(pdf: bytes, resolution: int = PNG_RESOLUTION) -> list[bytes]:
    """The pages of ``pdf`` as PNG images (poppler's pdftoppm; none when it is not installed)."""
    if not shutil.which("pdftoppm"):
        return []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-png", "-r", str(resolution), str(path), str(Path(folder) / "page")],
                       check=True, capture_output=True, timeout=120)
        return [page.read_bytes() for page in sorted(Path(folder).glob("page-*.png"), key=lambda p: int(p.stem.split("-")[-1]))]


def pdf_text(pdf: bytes) -> str:
    """The text of ``pdf`` (poppler's pdftotext; empty when it is not installed): what its
    pages say, for those who do not see the images."""
    if not shutil.which("pdftotext"):
        return ""
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, check=True, capture_output=True, timeout=120)
    return done.stdout.decode("utf-8", "replace")


def email_html(bundle: Bundle, settings: dict[str, Any]) -> str:
    """The e-mail's HTML part as the customer receives it (styles inlined)."""
    message = compose(bundle, to_addr="customer@preview.invalid", pdf=None, settings=settings)
    return str(message.get_body(("html",)).get_content())


def keep_preview(engine: Engine, bundle: Bundle, *, pages: bool = True) -> dict[str, Any]:
    """Keep the parts of ``bundle`` under a new token; returns what a page shows of it: the
    token, the subject and text of an e-mail, the SMS with its encoding and segments, the
    number of PDF pages kept as images, and per slot the variants (block -> kept page count)."""
    _forget_old(engine)
    token = secrets.token_urlsafe(18)
    folder = _folder(engine) / token
    folder.mkdir(parents=True)
    summary: dict[str, Any] = {"token": token, "name": bundle.name, "version": bundle.version, "kind": bundle.kind,
                               "pages": bundle.pages, "images": 0, "pdf": bundle.pdf is not None, "variants": {}}
    if bundle.email is not None:
        (folder / "email.html").write_text(email_html(bundle, engine.settings), encoding="utf-8")
        summary["email"] = {"subject": bundle.email["subject"], "text": bundle.email["text"]}
    if bundle.sms is not None:
        summary["sms"] = sms_json(bundle.sms)
    if bundle.pdf is not None:
        (folder / "document.pdf").write_bytes(bundle.pdf)
        images = pdf_pages(bundle.pdf) if pages else []
        for number, image in enumerate(images, 1):
            (folder / f"page-{number}.png").write_bytes(image)
        summary["images"] = len(images)
        summary["text"] = pdf_text(bundle.pdf)
    for index, (slot, blocks) in enumerate(bundle.variants.items()):
        shown = []
        for number, (block, pdf) in enumerate(blocks.items()):
            first = (pdf_pages(pdf) or [b""])[0] if pages else b""
            if first:
                (folder / f"variant-{index}-{number}.png").write_bytes(first)
            (folder / f"variant-{index}-{number}.pdf").write_bytes(pdf)
            shown.append({"block": block, "file": f"variant-{index}-{number}", "image": bool(first)})
        summary["variants"][slot] = shown
    (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    return summary


def kept_part(engine: Engine, token: str, part: str) -> bytes:
    """A part of a kept preview (``email.html``, ``document.pdf``, ``page-N.png``,
    ``variant-I-N.png|pdf``); LookupError when it is unknown or expired."""
    if not token.replace("-", "").replace("_", "").isalnum() or "/" in part or part.startswith("."):
        raise LookupError("no such preview")
    path = _folder(engine) / token / part
    if not path.is_file() or time.time() - path.stat().st_mtime > KEEP_SECONDS:
        raise LookupError("no such preview")
    return path.read_bytes()


def _folder(engine: Engine) -> Path:
    return engine.var_dir / "studio-previews"


def _forget_old(engine: Engine) -> None:
    root = _folder(engine)
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.is_dir() and time.time() - folder.stat().st_mtime > KEEP_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)


__all__ = ["PreviewError", "email_html", "keep_preview", "kept_part", "pdf_pages", "pdf_text", "render_source"]

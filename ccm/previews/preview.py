"""Preview: what a customer would receive from a template version, on real or sample data.

The version under preview (any state: drafts are what previews are for) renders with
the versions in effect of everything else. Documents become a PDF (and PNG pages when
poppler's ``pdftoppm`` is installed), e-mails an ``.eml`` and the inlined ``.html``,
SMS texts a ``.txt`` with encoding and segments. ``all_variants`` renders the document
once per content block each slot could hold, side by side in ``variants.html``.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.authoring import (BLOCK_KINDS, renderer_for, SAMPLE_EVENT, SAMPLE_HELPERS, SAMPLE_LINKS, Library, check, email_parts, errors, get_version,
                           library, sample_context)
from ccm.communications import ensure_built_in
from ccm.wiring import Engine
from ccm.models import Communication, Customer, FeedRecord, Template, TemplateVersion
from ccm.runs import customer_context, statement_context, typst_block
from ccm.decisions import compiled_decisions
from documents import Attachment, TemplateEnvironment, WeasyPrintRenderer, compose_email, make_message_id, sms_info

DOCUMENT_KINDS = ("statement", "bill", "letter")
SLOT_KINDS = ("insert", "offer")  # blocks that fill content slots (legal texts are included by name or are pages)
EMAIL_KINDS = ("email_subject", "email_html", "email_text")


class PreviewError(Exception):
    pass


@dataclass
class Bundle:
    """The rendered parts of one preview (kept apart so a proof can re-address them)."""

    name: str
    version: int
    kind: str
    pdf: bytes | None = None
    pages: int | None = None
    email: dict[str, str] | None = None  # subject, html, text
    sms: str | None = None
    pdf_name: str = "document.pdf"  # the attachment's file name, as a run names it
    variants: dict[str, dict[str, bytes]] = field(default_factory=dict)  # slot -> block -> pdf


@dataclass
class Source:
    """Everything a preview renders from: templates, context, the communication's slots."""

    library: Library
    context: dict[str, Any]
    slots: dict[str, dict[str, str]]  # slot -> channel -> block (the communication's defaults)
    document: str | None
    locale: str
    timezone: str
    decided: dict[str, list[str]] = field(default_factory=dict)  # slot -> every content its decision can choose


def render_bundle(engine: Engine, name: str, *, version: int | None = None, customer: str | None = None,
                  cycle: str | None = None, sample: bool = False, all_variants: bool = False,
                  given: dict[str, Any] | None = None) -> Bundle:
    with engine.db.session() as session:
        chosen = get_version(session, name, version)
        return render_version(engine, session, chosen, customer=customer, cycle=cycle, sample=sample, all_variants=all_variants,
                              given=given)


def render_version(engine: Engine, session: Session, chosen: Any, *, customer: str | None = None, cycle: str | None = None,
                   sample: bool = False, all_variants: bool = False, given: dict[str, Any] | None = None) -> Bundle:
    """Render ``chosen`` (a stored version, or anything with its ``template.name``,
    ``template.kind``, ``version``, ``source`` and ``meta``: an unsaved draft) as ``render_bundle`` does."""
    name = chosen.template.name
    kind = chosen.template.kind
    if kind in ("partial", "asset"):
        raise PreviewError(f"{name} is a {kind}: preview a document, block, e-mail or SMS template that uses it")
    _refuse_invalid(session, engine, chosen)
    source = _source(session, engine, chosen, customer=customer, cycle=cycle, sample=sample, given=given)
    renderer = _Renderer(engine, source)
    bundle = Bundle(name=name, version=chosen.version, kind=kind)
    if kind in EMAIL_KINDS:
        parts = email_parts(name if kind == "email_html" else _html_of(name))
        source.context.update(channel="email")
        bundle.email = {part: renderer.text(template) for part, template in parts.items()}
        bundle.email["subject"] = " ".join(bundle.email["subject"].split())
        if source.document and engine.settings["email"]["attach_pdf"]:
            bundle.pdf, bundle.pages = renderer.pdf(source.document, channel="email")
            period = source.context["statement"].get("period")
            bundle.pdf_name = f"statement-{period}.pdf" if period else "document.pdf"
    elif kind == "sms":
        source.context.update(channel="sms")
        bundle.sms = renderer.text(name).strip()
    else:
        document = name if kind in DOCUMENT_KINDS else same_engine(source.document, name, source.library)
        if document is None:
            raise PreviewError(f"{name}: no communication puts this block into a document; cannot preview it")
        forced = {slot: name for slot in source.slots} if kind in BLOCK_KINDS else {}
        bundle.pdf, bundle.pages = renderer.pdf(document, forced=forced)
        if all_variants:
            for slot in renderer.document_slots(document):
                bundle.variants[slot] = {block: renderer.pdf(document, forced={slot: block})[0]
                                         for block in slot_candidates(source, slot, document)}
    return bundle


def _refuse_invalid(session: Session, engine: Engine, chosen: TemplateVersion) -> None:
    """A version that fails the save-time checks is never rendered, previewed or sent as a proof
    (a draft stored before a check existed, or whose included templates changed since)."""
    found = errors(check(session, engine.settings, chosen))
    if found:
        raise PreviewError(f"{chosen.template.name} v{chosen.version} fails validation and is not rendered: {found[0]}"
                           + (f" (and {len(found) - 1} more: ccm templates validate)" if len(found) > 1 else ""))


def write_preview(bundle: Bundle, out: Path, settings: dict[str, Any]) -> list[Path]:
    """Write the bundle into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    stem = _slug(bundle.name)
    written: list[Path] = []
    if bundle.pdf is not None:
        written += _write_pdf(out / f"{stem}.pdf", bundle.pdf)
    if bundle.email is not None:
        message = compose(bundle, to_addr="customer@preview.invalid", pdf=bundle.pdf, settings=settings)
        (out / f"{stem}.eml").write_bytes(bytes(message))
        html_part = message.get_body(("html",))
        (out / f"{stem}.html").write_text(html_part.get_content(), encoding="utf-8")
        written += [out / f"{stem}.eml", out / f"{stem}.html"]
    if bundle.sms is not None:
        (out / f"{stem}.sms.txt").write_text(bundle.sms + "\n", encoding="utf-8")
        (out / f"{stem}.sms.json").write_text(json.dumps(sms_json(bundle.sms), indent=2, ensure_ascii=False), encoding="utf-8")
        written += [out / f"{stem}.sms.txt", out / f"{stem}.sms.json"]
    if bundle.variants:
        written += _write_variants(out / "variants", bundle.variants)
    return written


def sms_json(text: str) -> dict[str, Any]:
    info = sms_info(text)
    return {"text": text, "encoding": info.encoding, "segments": info.segments, "characters": info.units}


def slot_candidates(source: Source, slot: str, document: str | None = None) -> list[str]:
    """Every block that could fill ``slot`` of ``document``: what the slot's decision can
    choose (each rule's output, each experiment variant, the hold-out's and the default),
    then the blocks the communication names for the slot, then every other approved or
    draft block of the same kind; each in the document's engine (a Typst document shows
    the ``.typ`` form of a block a decision names)."""
    named = list(dict.fromkeys([*source.decided.get(slot, []), *source.slots.get(slot, {}).values()]))
    kinds = {source.library.kinds.get(n) for n in named} & set(SLOT_KINDS) or set(SLOT_KINDS)  # inserts for an insert slot
    typst = bool(document and document.endswith(".typ"))
    if typst:
        named = [typst_block(n) for n in named if typst_block(n) in source.library.sources]
    others = sorted(n for n, k in source.library.kinds.items()
                    if k in kinds and n not in named and n.endswith(".typ") == typst)
    return list(dict.fromkeys(named)) + others


def same_engine(document: str | None, block: str, library: Library) -> str | None:
    """The document a block is previewed in: the communication's, or its form in the
    block's engine (a ``.typ`` block in ``statement/statement.typ``) when the library has it."""
    if document is None or document.endswith(".typ") == block.endswith(".typ"):
        return document
    other = document.rsplit(".", 1)[0] + (".typ" if block.endswith(".typ") else ".html")
    return other if other in library.sources else document


def _source(session: Session, engine: Engine, chosen: TemplateVersion, *, customer: str | None, cycle: str | None,
            sample: bool, given: dict[str, Any] | None = None) -> Source:
    lib = library(session).with_version(chosen.template.name, chosen.template.kind, chosen.source, chosen.meta or {})
    ensure_built_in(session)
    communication = _communication_for(session, chosen.template)
    document = communication.config.get("document") if communication else None
    slots = dict(communication.config.get("slots", {})) if communication else {}
    decided = decided_contents(session, communication)
    company = dict(engine.settings["company"])
    if sample or customer is None:
        if not sample:
            raise PreviewError("give a customer (--customer EXTERNAL_ID) or --sample")
        context = _sample_given(company, given or {})
        return Source(lib, context, slots, document, context["customer"]["locale"], context["customer"]["timezone"], decided)
    person = session.scalar(select(Customer).where(Customer.external_id == customer))
    if person is None:
        raise PreviewError(f"no such customer: {customer}")
    query = select(FeedRecord).where(FeedRecord.customer_id == person.id)
    query = query.where(FeedRecord.period == cycle) if cycle else query.order_by(FeedRecord.period.desc())
    record = session.scalars(query).first()
    if record is None and cycle:
        raise PreviewError(f"customer {customer} has no billing data for cycle {cycle}")
    context = {
        "customer": customer_context(person),
        "statement": statement_context(record, dt.date.today()) if record else {},
        "company": company, "channel": "print", "attachment": bool(engine.settings["email"]["attach_pdf"]),
        "links": dict(SAMPLE_LINKS), "slots": {}, "event": dict(SAMPLE_EVENT), "reminder": {"date": dt.date.today() + dt.timedelta(days=30), "days": 30},
        **SAMPLE_HELPERS,
    }
    return Source(lib, context, slots, document, person.locale, person.timezone, decided)


def _sample_given(company: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The sample data, with what the caller gave laid over it: the customer's fields (its
    address and attributes merged), the triggering event's fields (values used as given:
    text, numbers, true/false), and a statement in place of the sample's (a FeedRecord
    checked as the feed import checks one: ``ccm.imports.checked_statement``), issued the
    day after its period."""
    person = dict(given.get("customer") or {})
    context = sample_context(company, locale=person.get("locale") or "en_US")
    record = given.get("statement")
    if record is not None:
        year, month = (int(part) for part in record.period.split("-"))
        context["statement"] = statement_context(record, dt.date(year + month // 12, month % 12 + 1, 1))
    customer = context["customer"]
    customer["address"] = {**customer["address"], **(person.pop("address", None) or {})}
    customer["attributes"] = {**customer["attributes"], **(person.pop("attributes", None) or {})}
    customer.update(person)
    context["event"] = {**context["event"], **(given.get("event") or {})}
    return context


def _communication_for(session: Session, template: Template) -> Communication | None:
    """The first communication that renders ``template`` (or the first one at all)."""
    communications = list(session.scalars(select(Communication).order_by(Communication.id)))
    for communication in communications:
        config = communication.config
        names = [config.get("document"), *config.get("email", {}).values(), *config.get("sms", {}).values()]
        for per_channel in config.get("slots", {}).values():
            names.extend(per_channel.values())
        if template.name in names:
            return communication
    return communications[0] if communications else None


def decided_contents(session: Session, communication: Communication | None) -> dict[str, list[str]]:
    if communication is None:
        return {}
    return {slot: sorted(decision.spec.contents()) for slot, decision in compiled_decisions(session, communication).items()}


class _Renderer:
    def __init__(self, engine: Engine, source: Source) -> None:
        self.engine, self.source = engine, source
        self.env = TemplateEnvironment(source.library.loader, translations=source.library.translations())
        self._pdf_renderer: WeasyPrintRenderer | None = None

    def text(self, name: str) -> str:
        return self.env.render(name, self.source.context, locale=self.source.locale, timezone=self.source.timezone)

    def document_slots(self, document: str) -> list[str]:
        return list(self.source.library.meta.get(document, {}).get("slots") or [])

    def pdf(self, document: str, *, channel: str = "print", forced: dict[str, str] | None = None) -> tuple[bytes, int]:
        forced = forced or {}
        self.source.context["channel"] = channel
        typst = document.endswith(".typ")
        slots: dict[str, str | None] = {}
        for slot in self.document_slots(document):
            per_channel = self.source.slots.get(slot, {})
            block = forced.get(slot) or per_channel.get(channel) or per_channel.get("default")
            if typst:
                block = typst_block(block) if block else None
                block = block if block in self.source.library.sources else next(iter(slot_candidates(self.source, slot, document)), None)
                slots[slot] = block
                continue
            block = block or next(iter(slot_candidates(self.source, slot)), None)
            slots[slot] = self.text(block) if block else ""
        self.source.context["slots"] = slots
        if typst:
            return self.typst_pdf(document)
        html_text = self.text(document)
        if self._pdf_renderer is None:
            # the previewed versions of stylesheets and SVGs, drafts included, as the store has them
            self._pdf_renderer = WeasyPrintRenderer([self.engine.templates_dir],
                                                    allow_network=self.engine.settings["pdf"]["allow_network"],
                                                    assets=self.source.library.loader)
        stylesheets = self.source.library.meta.get(document, {}).get("stylesheets", [])
        rendered = self._pdf_renderer.render(html_text, stylesheets=stylesheets)
        return rendered.data, rendered.pages


    def typst_pdf(self, document: str) -> tuple[bytes, int]:
        """A Typst document of the previewed library (drafts included), its slots naming blocks."""
        library = self.source.library
        data = self.env.typst_data(self.source.context, locale=self.source.locale, timezone=self.source.timezone, name=document)
        rendered = renderer_for(self.engine.settings, library.sources, library.kinds).render(
            library.sources[document], data, template=document)
        return rendered.data, rendered.pages


def compose(bundle: Bundle, *, to_addr: str, pdf: bytes | None, subject_prefix: str = "",
             headers: dict[str, str] | None = None, settings: dict[str, Any] | None = None) -> Any:
    email_cfg = (settings or {}).get("email", {})
    parts = bundle.email or {"subject": f"{bundle.name} v{bundle.version}", "html": "", "text": _proof_text(bundle)}
    attachments = [Attachment(filename=bundle.pdf_name, data=pdf)] if pdf else []
    key = f"preview:{bundle.name}:{bundle.version}:{to_addr}:{dt.datetime.now().timestamp()}"
    return compose_email(
        subject=subject_prefix + parts["subject"], html=parts["html"] or f"<pre>{html.escape(parts['text'])}</pre>",
        text=parts["text"], from_addr=email_cfg.get("from", "preview@preview.invalid"),
        from_name=email_cfg.get("from_name") or None, to_addr=to_addr,
        message_id=make_message_id(key, email_cfg.get("message_id_domain", "preview.invalid")),
        attachments=attachments, headers=headers, inliner=email_cfg.get("inliner", "css-inline"))


def _proof_text(bundle: Bundle) -> str:
    if bundle.sms is not None:
        info = sms_json(bundle.sms)
        return f"SMS ({info['encoding']}, {info['segments']} segment(s)):\n\n{bundle.sms}\n"
    return f"{bundle.name} v{bundle.version}: the document is attached ({bundle.pages or 0} page(s)).\n"


def _write_pdf(path: Path, data: bytes) -> list[Path]:
    path.write_bytes(data)
    written = [path]
    if shutil.which("pdftoppm"):
        prefix = path.with_suffix("")
        subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(prefix)], check=True, capture_output=True, timeout=120)
        written += sorted(path.parent.glob(f"{prefix.name}-*.png"))
    return written


def _write_variants(folder: Path, variants: dict[str, dict[str, bytes]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = []
    for slot, blocks in variants.items():
        cells = []
        for block, data in blocks.items():
            files = _write_pdf(folder / f"{_slug(slot)}--{_slug(block)}.pdf", data)
            written += files
            first = next((f.name for f in files if f.suffix == ".png"), None)
            image = f'<img src="{html.escape(first)}" width="300">' if first else ""
            cells.append(f'<td><a href="{html.escape(files[0].name)}">{html.escape(block)}</a><br>{image}</td>')
        rows.append(f"<h2>slot {html.escape(slot)}</h2><table><tr>{''.join(cells)}</tr></table>")
    index = folder / "variants.html"
    index.write_text("<!DOCTYPE html><meta charset='utf-8'><title>variants</title>" + "".join(rows), encoding="utf-8")
    return [*written, index]


def _html_of(name: str) -> str:
    for suffix in (".subject.txt", ".txt"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".html"
    return name


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__"))

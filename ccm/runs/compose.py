"""Composing one message: the render context from the engine's records, then the
document, e-mail or SMS from the run's pinned template versions.

Customer data goes to templates as plain dicts, never ORM objects (safer in the sandbox,
and faster). A template error fails that one message with the reason; the run goes on.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from channels import Outbound
from ccm.keys import derived_key
from ccm.links import MessageLinks, Tracker
from ccm.models import Communication, Customer, FeedRecord, Message
from ccm.authoring import PinnedTemplates, renderer_for
from documents import (
    Attachment,
    RenderError,
    StaticPages,
    TemplateProblem,
    TemplateEnvironment,
    WeasyPrintRenderer,
    compose_email,
    make_message_id,
    parse_po,
    sms_info,
)
from documents.typst_pdf import TypstRenderer

log = logging.getLogger(__name__)

DIGITAL = ("inbox", "webhook")  # channels given the message as a mapping (subject, html, text), not MIME


@dataclass
class Composed:
    outbound: Outbound
    artifact_sha256: str
    pages: int | None
    templates_used: dict[str, int] = field(default_factory=dict)
    document: bytes | None = None  # the PDF (printed or attached), for the archive
    links: list[str] = field(default_factory=list)  # the URLs its tracked links redirect to, recorded when sent
    decisions: dict[str, Any] | None = None  # the message's trace with the block each slot showed, when another form of it


def customer_context(customer: Customer) -> dict[str, Any]:
    return {
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "locale": customer.locale,
        "timezone": customer.timezone,
        "paperless": customer.paperless,
        "address": {
            "line1": customer.address_line1 or "",
            "line2": customer.address_line2 or "",
            "city": customer.city or "",
            "region": customer.region or "",
            "postal_code": customer.postal_code or "",
            "country": customer.country or "",
        },
        "attributes": dict(customer.attributes or {}),
    }


def statement_context(record: FeedRecord, issue_date: dt.date) -> dict[str, Any]:
    year, month = (int(part) for part in record.period.split("-"))
    period_start = dt.date(year, month, 1)
    period_end = (dt.date(year + month // 12, month % 12 + 1, 1)) - dt.timedelta(days=1)
    lines = [
        {"date": dt.date.fromisoformat(line["date"]), "description": line["description"], "amount": Decimal(line["amount"])}
        for line in record.lines
    ]
    return {
        "account": record.account,
        "period": record.period,
        "period_start": period_start,
        "period_end": period_end,
        "issue_date": issue_date,
        "opening_balance": record.opening_balance,
        "closing_balance": record.closing_balance,
        "amount_due": record.amount_due,
        "due_date": record.due_date,
        "currency": record.currency,
        "lines": lines,
        "total_debits": record.total_debits,
        "total_credits": record.total_credits,
    }


# A web address given literally to the Typst helpers that track it (templates/typst/ccm.typ).
TRACKED_IN_TYPST = re.compile(r'(short-link|tracked-link|tracked-qr)\(\s*"(https?://[^"\\\s]+)"')


def typst_block(name: str) -> str:
    """The Typst form of a content block a decision names: ``inserts/x.html`` is shown in a
    Typst document as ``inserts/x.typ`` (decisions name blocks once, for both engines)."""
    return name if name.endswith(".typ") else name.rsplit(".", 1)[0] + ".typ"


def configured_block(per_channel: dict[str, str], channel: str) -> str | None:
    """The block a slot's configuration gives a channel without a decision: the channel's own,
    the e-mail's for the inbox and a webhook, or the default."""
    return per_channel.get(channel) or (per_channel.get("email") if channel in DIGITAL else None) or per_channel.get("default")


def event_context(data: dict[str, Any]) -> dict[str, Any]:
    """What a triggered message's event and a reminder's date give the templates."""
    reminder = dict(data.get("reminder") or {})
    if isinstance(reminder.get("date"), str):
        reminder["date"] = dt.date.fromisoformat(reminder["date"])
    return {"event": dict(data.get("event") or {}), "reminder": reminder}


def templates_of(config: dict[str, Any]) -> list[str]:
    """Every template a communication renders: document, e-mail parts, SMS texts, slot blocks."""
    names = [*([config["document"]] if config.get("document") else []), *config.get("static_pages", []), *config.get("email", {}).values(), *config.get("sms", {}).values()]
    for per_channel in config.get("slots", {}).values():
        names.extend(per_channel.values())
    return sorted(set(names))


def check_templates(pinned: PinnedTemplates, config: dict[str, Any]) -> list[str]:
    """Problems found before anything is rendered: missing templates and syntax errors, with lines."""
    env = TemplateEnvironment(pinned.loader)
    problems = []
    for name in templates_of(config):
        if name not in pinned.sources:
            problems.append(f"{name}: no approved version in the template store")
            continue
        try:
            env.check(name)
        except TemplateProblem as exc:
            problems.append(str(exc))
    return problems


def load_translations(pinned: PinnedTemplates) -> dict[str, dict[str, str]]:
    """Catalogs shipped as ``i18n/<locale>.po`` in the template store, pinned like templates."""
    translations: dict[str, dict[str, str]] = {}
    for name, source in pinned.sources.items():
        if name.startswith("i18n/") and name.endswith(".po"):
            translations[Path(name).stem] = parse_po(source)
    return translations


class Composer:
    """Renders messages of one run in one worker process (one renderer, one font config)."""

    def __init__(self, settings: dict, pinned: PinnedTemplates, communication: Communication, issue_date: dt.date) -> None:
        self.settings = settings
        self.pinned = pinned
        self.config = communication.config
        self.communication = communication.name
        self.marketing = communication.kind == "marketing"
        self.document_name = "bill" if communication.kind == "bill" else "statement"  # of the attached PDF's file name
        self.tracker = Tracker.from_settings(settings)
        if self.marketing and not self.tracker.public_url.startswith("https://"):
            log.warning("[web] public_url is not https: mail programs ignore one-click unsubscribe (RFC 8058) over http")
        self.env = TemplateEnvironment(pinned.loader, translations=load_translations(pinned))
        templates_dir = Path(settings["ccm"]["templates_dir"])
        self.asset_dirs = [templates_dir]
        self._renderer: WeasyPrintRenderer | None = None
        self._typst: TypstRenderer | None = None
        self._static: dict[tuple, StaticPages] = {}
        self.company = dict(settings["company"])
        self.issue_date = issue_date  # the run's date, so a resumed run issues the same date
        self._outside: dict[str, tuple[list[str], list[str]]] = {}
        self._inbox_key: bytes | None = None

    @property
    def renderer(self) -> WeasyPrintRenderer:
        """Made on the first PDF (loading WeasyPrint takes a second; e-mail-only runs skip it)."""
        if self._renderer is None:
            # Stylesheets and SVGs come from the run's pinned (approved) versions in the template
            # store, not from whatever the files on disk say now; fonts and images from disk.
            self._renderer = WeasyPrintRenderer(
                self.asset_dirs, allow_network=self.settings["pdf"]["allow_network"], assets=self.pinned.loader
            )
        return self._renderer

    @property
    def typst(self) -> TypstRenderer:
        """The Typst renderer of the run's pinned versions (a root of their own, made once)."""
        if self._typst is None:
            self._typst = renderer_for(self.settings, self.pinned.sources, self.pinned.kinds)
        return self._typst

    def inbox_owner(self, external_id: str) -> str:
        """The pseudonym the inbox files a customer's messages under: keyed with the engine's
        secret, so that the folder of a known customer id cannot be found by hashing it."""
        if self._inbox_key is None:
            self._inbox_key = derived_key(self.settings, "inbox")
        return hmac.new(self._inbox_key, external_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def outside_links(self, names: list[str]) -> tuple[list[str], list[str]]:
        """The web addresses Typst sources give ``short-link``, ``tracked-link`` (first) and
        ``tracked-qr`` (second), in the order they appear: each becomes a short tracked link
        of the message, as an HTML document's ``<a href>`` does. Read once per source."""
        shorts: list[str] = []
        codes: list[str] = []
        for name in names:
            if name not in self._outside:
                found = TRACKED_IN_TYPST.findall(self.pinned.sources.get(name, ""))
                self._outside[name] = ([url for helper, url in found if helper != "tracked-qr"],
                                       [url for helper, url in found if helper == "tracked-qr"])
            shorts.extend(url for url in self._outside[name][0] if url not in shorts)
            codes.extend(url for url in self._outside[name][1] if url not in codes)
        return shorts, codes

    def static_page(self, name: str, locale: str) -> StaticPages:
        """A page that does not vary per customer (terms, a back page): laid out once per
        pinned version and locale, then drawn into every document. It sees only
        ``company`` and the locale: a customer field in it is an error, not a leak."""
        key = (name, self.pinned.version_ids.get(name), locale)
        if key not in self._static:
            context = {"company": self.company, "channel": "print", "slots": {}}
            html = self.env.render(name, context, locale=locale)
            stylesheets = self.pinned.meta.get(name, {}).get("stylesheets", [])
            self._static[key] = self.renderer.static_pages(html, stylesheets=stylesheets, archive=bool(self.settings["pdf"]["archive"]))
        return self._static[key]

    def compose(self, message: Message) -> Composed:
        customer, record = message.customer, message.feed_record
        links = self.tracker.for_message(message.id)
        context = {
            "customer": customer_context(customer),
            "statement": statement_context(record, self.issue_date) if record else {},
            "company": self.company,
            "channel": message.channel,
            "attachment": bool(self.settings["email"]["attach_pdf"]),
            "links": links.context(),
            "short_link": links.short,  # short_link(url), qr(url): a short tracked link, and its QR code, for paper
            "qr": links.qr,
            "slots": {},
            "decisions": message.decisions or {},  # what the decisions chose for each slot, at planning
            **event_context(message.data or {}),
        }
        render = _Render(self, context, customer, links)
        if message.channel == "print":
            return render.print_document(message)
        if message.channel == "email":
            return render.email(message)
        if message.channel == "sms":
            return render.sms(message)
        if message.channel in DIGITAL:
            return render.digital(message)
        raise ValueError(f"message {message.id}: no composer for channel {message.channel!r}")


class _Render:
    """One message's rendering: keeps track of every template version it used."""

    def __init__(self, composer: Composer, context: dict[str, Any], customer: Customer, links: MessageLinks) -> None:
        self.c, self.context, self.customer, self.links = composer, context, customer, links
        self.used: dict[str, int] = {}
        self.shown: dict[str, str] = {}  # slot -> the block shown, where not the one its decision names (its Typst form)

    def text(self, name: str) -> str:
        self.used.update(self.c.pinned.used_by(name))
        return self.c.env.render(name, self.context, locale=self.customer.locale, timezone=self.customer.timezone)

    def fill_slots(self, channel: str) -> None:
        decided = self.context.get("decisions") or {}  # the message's trace (ccm.decisions.decide_run)
        slots = self.c.config.get("slots", {})
        for slot in sorted({*slots, *decided}):
            per_channel = slots.get(slot, {})
            block = decided[slot].get("content") if slot in decided else configured_block(per_channel, channel)
            self.context["slots"][slot] = self.text(block) if block else ""  # a decision may leave a slot empty

    def pdf(self) -> tuple[bytes, int]:
        name = self.c.config["document"]
        if name.endswith(".typ"):
            return self.typst_pdf(name)
        self.fill_slots(self.context["channel"])
        html = self.links.pdf_html(self.text(name))  # outside links become short tracked ones, recorded with the message
        stylesheets = self.c.pinned.meta.get(name, {}).get("stylesheets", [])
        static = []
        for page in self.c.config.get("static_pages", []):
            static.append(self.c.static_page(page, self.customer.locale))
            self.used.update(self.c.pinned.used_by(page))
        document = self.c.renderer.render(html, stylesheets=stylesheets, archive=bool(self.c.settings["pdf"]["archive"]), append=static)
        return document.data, document.pages

    def typst_pdf(self, name: str) -> tuple[bytes, int]:
        """A Typst document: its data made from the context by the engine (formatted for the
        customer), each slot naming the block its decision chose; the document includes what
        else it shows (its terms page) itself."""
        channel = self.context["channel"]
        decided = self.context.get("decisions") or {}
        slots = self.c.config.get("slots", {})
        chosen = {}
        for slot in sorted({*slots, *decided}):
            per_channel = slots.get(slot, {})
            block = decided[slot].get("content") if slot in decided else configured_block(per_channel, channel)
            chosen[slot] = typst_block(block) if block else None
            if chosen[slot] and chosen[slot] not in self.c.pinned.sources:
                raise RenderError(f"slot {slot}: {block} has no Typst form {chosen[slot]} for {name}", template=name)
            if chosen[slot]:
                self.used.update(self.c.pinned.used_by(chosen[slot]))
                if slot in decided and chosen[slot] != block:
                    self.shown[slot] = chosen[slot]
        self.used.update(self.c.pinned.used_by(name))
        shorts, codes = self.c.outside_links([name, *(block for block in chosen.values() if block)])
        qr_codes = {url: self.links.qr(url) for url in codes}  # SVG, made Typst's by typst_data
        data = self.c.env.typst_data({**self.context, "slots": chosen, "qr_codes": qr_codes}, locale=self.customer.locale,
                                     timezone=self.customer.timezone, name=name)
        data["short_links"] = {url: self.links.short(url) for url in shorts}  # as they are: a link's target is never isolated
        document = self.c.typst.render(self.c.pinned.sources[name], data, template=name,
                                       archive=bool(self.c.settings["pdf"]["archive"]))
        return document.data, document.pages

    def traced(self) -> dict[str, Any] | None:
        """The message's trace with ``shown`` where a slot showed its block's Typst form (the
        decision names ``inserts/x.html``, the Typst statement showed ``inserts/x.typ``)."""
        if not self.shown:
            return None
        decided = self.context.get("decisions") or {}
        return {**decided, **{slot: {**decided[slot], "shown": block} for slot, block in self.shown.items()}}

    def print_document(self, message: Message) -> Composed:
        data, pages = self.pdf()
        meta = {
            "customer": self.customer.external_id,
            "pages": pages,
            "household_key": self.customer.household_key or f"customer-{self.customer.id}",
            "postal_code": self.customer.postal_code or "",
        }
        outbound = Outbound(message_id=file_id(message), to=meta["household_key"], content=data, meta=meta)
        return Composed(outbound, hashlib.sha256(data).hexdigest(), pages, self.used, document=data, links=self.links.urls,
                        decisions=self.traced())

    def email(self, message: Message) -> Composed:
        email_cfg = self.c.settings["email"]
        names = self.c.config["email"]
        # The statement PDF: attached, or kept in the archive; neither wanted, not rendered.
        wanted = "document" in self.c.config and (email_cfg["attach_pdf"] or self.c.settings["archive"]["enabled"])
        data, pages = self.pdf() if wanted else (None, None)
        attachments = []
        if email_cfg["attach_pdf"] and data is not None:
            record = message.feed_record
            filename = f"{self.c.document_name}-{record.period}.pdf" if record else "document.pdf"
            attachments.append(Attachment(filename=filename, data=data))
        self.context["channel"] = "email"
        if self.c.pinned.meta.get(names["html"], {}).get("slots"):  # an e-mail with slots of its own (a campaign's offer)
            self.fill_slots("email")
        subject = " ".join(self.text(names["subject"]).split())
        headers = {}
        if self.c.marketing:  # RFC 8058: one click in the mail program unsubscribes, without a visit
            headers = {"List-Unsubscribe": f"<{self.links.unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        html = self.links.html(self.text(names["html"]))
        text = self.links.text(self.text(names["text"]))
        mime = compose_email(
            subject=subject,
            html=html,
            text=text,
            headers=headers,
            from_addr=email_cfg["from"],
            from_name=email_cfg["from_name"] or None,
            to_addr=self.customer.email or "",
            to_name=self.customer.name,
            reply_to=email_cfg["reply_to"] or None,
            message_id=make_message_id(message.idempotency_key, email_cfg["message_id_domain"], ref=file_id(message)),
            attachments=attachments,
            inliner=email_cfg["inliner"],
        )
        outbound = Outbound(message_id=file_id(message), to=self.customer.email or "", content=mime)
        # Without a PDF the artifact is the content as rendered (serialising the MIME only to hash it cost a fifth of composing)
        artifact = data if data is not None else "\0".join((subject, html, text)).encode("utf-8")
        return Composed(outbound, hashlib.sha256(artifact).hexdigest(), pages, self.used, document=data, links=self.links.urls,
                        decisions=self.traced())

    def sms_text(self, message: Message) -> str:
        # sms.payment_due -> the payment_due text; a statement sent by SMS -> "statement ready";
        # a campaign -> its "campaign" text
        if "." in message.purpose:
            purpose = message.purpose.split(".", 1)[1]
        else:
            purpose = "statement_ready" if message.purpose == "statement" else message.purpose
        return self.links.text(self.text(self.c.config["sms"][purpose]).strip())

    def digital(self, message: Message) -> Composed:
        """A message for the customer's inbox or for a webhook: the e-mail's subject, HTML and
        text as they would be mailed (links tracked), without MIME; the SMS text where the
        communication has no e-mail. A statement's PDF is not sent: it is kept in the
        archive, where the inbox offers it (``meta["document"]``)."""
        wanted = "document" in self.c.config and self.c.settings["archive"]["enabled"]
        data, pages = self.pdf() if wanted else (None, None)
        self.context.update(channel=message.channel, attachment=False)
        names = self.c.config.get("email")
        if names:
            if self.c.pinned.meta.get(names["html"], {}).get("slots"):
                self.fill_slots(message.channel)
            subject: str | None = " ".join(self.text(names["subject"]).split())
            html: str | None = self.links.html(self.text(names["html"]))
            text = self.links.text(self.text(names["text"]))
        else:
            subject, html, text = None, None, self.sms_text(message)
        content = {"subject": subject, "html": html, "text": text}
        meta = {"communication": self.c.communication, "purpose": message.purpose, "document": data is not None, "pages": pages}
        # The other system is told whose it is; the inbox only files it, under a keyed pseudonym
        # of the customer (their messages are found through the outbox, never by the name).
        to = self.customer.external_id if message.channel == "webhook" else self.c.inbox_owner(self.customer.external_id)
        outbound = Outbound(message_id=file_id(message), to=to, content=content, meta=meta)
        artifact = data if data is not None else json.dumps(content, sort_keys=True).encode("utf-8")
        return Composed(outbound, hashlib.sha256(artifact).hexdigest(), pages, self.used, document=data, links=self.links.urls,
                        decisions=self.traced())

    def sms(self, message: Message) -> Composed:
        text = self.sms_text(message)
        info = sms_info(text)
        meta = {"encoding": info.encoding, "segments": info.segments}
        outbound = Outbound(message_id=file_id(message), to=self.customer.phone or "", content=text, meta=meta)
        return Composed(outbound, hashlib.sha256(text.encode("utf-8")).hexdigest(), None, self.used, links=self.links.urls)


def file_id(message: Message) -> str:
    """A stable id for the channel: the same message always gets the same file and Message-ID."""
    digest = hashlib.sha256(message.idempotency_key.encode("utf-8")).hexdigest()[:12]
    return f"m{message.id:09d}-{digest}"

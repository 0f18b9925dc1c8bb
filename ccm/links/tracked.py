"""Tracked links, made when a message is composed.

Every ``http(s)`` link of an HTML e-mail (``<a href>``), of its plain-text part and of an
SMS is replaced by ``<public_url>/t/c/<token>``; every ``<a href>`` of a PDF (a printed
statement, an attached one) by a short code, ``<public_url>/s/<code>``, that a reader can
type, and where the link's text is the URL itself, the printed text too. The original
URLs are kept with the message (``messages.links``) and the redirect goes only there, so
the endpoint can never be used to send someone elsewhere. HTML e-mail gets a 1x1 open
pixel; every message gets its signed unsubscribe and preference-centre links for the
templates (``links.*``), and the helpers ``short_link(url)`` and ``qr(url)`` (a QR code of
the short link) for any other URL. Links to the engine's own pages are left as they are.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import lxml.html

from ccm.links.tokens import ShortCodes, Signer

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'()]+[^\s<>\"'().,;:!?]")
_OUTSIDE_LINK = re.compile(r"<a\b[^>]*\bhref\s*=\s*[\"']?\s*https?:", re.I)  # (a cheap test before parsing)


@dataclass
class Tracker:
    """What the composer of one process needs: the signer and the switches."""

    signer: Signer
    public_url: str
    open_tracking: bool = True
    click_tracking: bool = True
    pay_url: str = ""

    @property
    def short_codes(self) -> ShortCodes:
        return ShortCodes(self.signer.secret)

    @classmethod
    def from_settings(cls, settings: dict) -> "Tracker":
        feedback = settings["feedback"]
        return cls(Signer.from_settings(settings), settings["web"]["public_url"].rstrip("/"),
                   bool(feedback["open_tracking"]), bool(feedback["click_tracking"]), settings["company"]["pay_url"])

    def for_message(self, message_id: int) -> "MessageLinks":
        return MessageLinks(self, message_id)


@dataclass
class MessageLinks:
    """The links of one message; ``urls`` is what is recorded with it when it is sent."""

    tracker: Tracker
    message_id: int
    urls: list[str] = field(default_factory=list)

    def _url(self, purpose: str, payload: object, path: str, suffix: str = "") -> str:
        return f"{self.tracker.public_url}/{path}/{self.tracker.signer.dumps(purpose, payload)}{suffix}"

    @property
    def unsubscribe(self) -> str:
        return self._url("unsubscribe", [self.message_id], "u")

    @property
    def preferences(self) -> str:
        return self._url("preferences", [self.message_id], "p")

    @property
    def pixel(self) -> str:
        return self._url("open", [self.message_id], "t/o", ".gif")

    def context(self) -> "TemplateLinks":
        """``links`` for the templates (each signed only if the template uses it)."""
        return TemplateLinks(self)

    def short(self, url: str) -> str:
        """A short tracked URL for ``url``, for paper (``<public_url>/s/<code>``); the
        template helper ``short_link(url)``. Other schemes and the engine's own links stay."""
        url = str(url).strip()
        if not self.tracker.click_tracking or not url.lower().startswith(("http://", "https://")) or self._own(url):
            return url
        if url not in self.urls:
            self.urls.append(url)
        return f"{self.tracker.public_url}/s/{self.tracker.short_codes.make(self.message_id, self.urls.index(url))}"

    def qr(self, url: str) -> str:
        """The template helper ``qr(url)``: a QR code of the short tracked link to ``url``, as an
        SVG ``data:`` URL for an ``<img>`` (a scan is recorded like a click)."""
        return qr_data_uri(self.short(url))

    def track(self, url: str) -> str:
        """The tracked URL for ``url`` (the same URL twice gets the same position)."""
        if not self.tracker.click_tracking or not url.lower().startswith(("http://", "https://")) or self._own(url):
            return url
        if url not in self.urls:
            self.urls.append(url)
        return self._url("click", [self.message_id, self.urls.index(url)], "t/c")

    def _own(self, url: str) -> bool:
        return url.startswith(self.tracker.public_url + "/")

    def html(self, html: str) -> str:
        """The e-mail's HTML with tracked links and the open pixel."""
        if not (self.tracker.click_tracking or self.tracker.open_tracking):
            return html
        document = lxml.html.document_fromstring(html)
        for element in document.iter("a"):
            href = element.get("href")
            if href:
                element.set("href", self.track(href.strip()))
        if self.tracker.open_tracking:
            body = document.find("body")
            if body is not None:
                pixel = lxml.html.Element("img", src=self.pixel, width="1", height="1", alt="",
                                          style="display:block;width:1px;height:1px;border:0")
                body.append(pixel)
        return lxml.html.tostring(document, encoding="unicode", doctype="<!DOCTYPE html>")

    def pdf_html(self, html: str) -> str:
        """A PDF's HTML with every outside ``<a href>`` pointing to its short tracked link;
        a link whose text is its URL (printed for a reader to type) shows the short one."""
        if not self.tracker.click_tracking or not _OUTSIDE_LINK.search(html):
            return html
        document = lxml.html.document_fromstring(html)
        for element in document.iter("a"):
            href = (element.get("href") or "").strip()
            short = self.short(href) if href else href
            if short == href:
                continue
            element.set("href", short)
            if len(element) == 0 and (element.text or "").strip() == href:
                element.text = short
        return lxml.html.tostring(document, encoding="unicode", doctype="<!DOCTYPE html>")

    def text(self, text: str) -> str:
        """Plain text (an e-mail's text part, an SMS) with its URLs tracked."""
        if not self.tracker.click_tracking:
            return text
        return _URL_IN_TEXT.sub(lambda match: self.track(match.group(0)), text)


class TemplateLinks(Mapping):
    """``links.*`` for one message, each made only when a template reads it:
    ``unsubscribe`` and ``preferences`` (signed links to those pages), ``pay`` (a short
    tracked link to ``[company] pay_url``, for paper) and ``pay_qr`` (its QR code as an SVG
    ``data:`` URL, for an ``<img>``)."""

    KEYS = ("statement", "unsubscribe", "preferences", "pay", "pay_qr")

    def __init__(self, links: MessageLinks) -> None:
        self._links = links

    def __getitem__(self, key: str) -> str | None:
        if key == "statement":
            return None
        if key in ("unsubscribe", "preferences"):
            return getattr(self._links, key)
        if key == "pay":
            return self._links.short(self._links.tracker.pay_url) if self._links.tracker.pay_url else None
        if key == "pay_qr":
            return self._links.qr(self._links.tracker.pay_url) if self._links.tracker.pay_url else None
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)


QR_MASK = 2  # one fixed mask pattern: every decoder reads any of the eight


def qr_data_uri(url: str) -> str:
    """A QR code of ``url`` as an SVG ``data:`` URL (vector: sharp in print at any size).
    Its mask is fixed: trying all eight for the one with the fewest awkward patterns took
    5 ms of every statement (more than Typst takes to lay out a page), and phones read
    these short links as well with any (tests/templates/test_typst_statement.py decodes one)."""
    import segno

    return segno.make(url, error="m", mask=QR_MASK).svg_data_uri(scale=4, border=2, omitsize=True)

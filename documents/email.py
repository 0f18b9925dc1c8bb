"""E-mail composition: CSS inlining, MIME structure and safe headers.

The message is ``multipart/alternative`` (text, inlined HTML), wrapped in
``multipart/mixed`` when there are attachments. Addresses containing CR/LF are
rejected; CR/LF in the subject, display names and extra header values are
folded to spaces, so header injection is impossible.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address, BaseHeader
from email.message import EmailMessage
from email.utils import format_datetime

__all__ = ["Attachment", "compose_email", "inline_css", "make_message_id"]

INLINERS = ("css-inline", "premailer")
_RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "reply-to", "message-id", "date", "sender",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
})
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Attachment:
    """A file attached to an e-mail."""

    filename: str
    data: bytes
    mimetype: str = "application/pdf"


def inline_css(html: str, *, engine: str = "css-inline") -> str:
    """Move ``<style>`` rules into ``style`` attributes; at-rules (media queries) stay in a ``<style>``."""
    if engine == "css-inline":
        return _css_inliner().inline(html)
    if engine == "premailer":
        return _premailer(html)
    raise ValueError(f"unknown CSS inliner {engine!r} (choose one of: {', '.join(INLINERS)})")


def compose_email(*, subject: str, html: str, text: str, from_addr: str, to_addr: str,
                  from_name: str | None = None, to_name: str | None = None, reply_to: str | None = None, message_id: str,
                  attachments: Sequence[Attachment] = (), headers: Mapping[str, str] | None = None,
                  inliner: str = "css-inline") -> EmailMessage:
    """Build the MIME message for one customer."""
    message = EmailMessage()
    message["Subject"] = _subject_header(_fold(subject))
    message["From"] = _sender_header("From", from_addr, from_name)
    message["To"] = _address(to_addr, to_name)
    if reply_to:
        message["Reply-To"] = _sender_header("Reply-To", reply_to, None)
    message["Date"] = _date_header(int(datetime.now(timezone.utc).timestamp()))
    message["Message-ID"] = _message_id(message_id)
    for name, value in (headers or {}).items():
        message[_header_name(name)] = _fold(value)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(inline_css(html, engine=inliner), subtype="html", charset="utf-8")
    for attachment in attachments:
        maintype, _, subtype = attachment.mimetype.partition("/")
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=_fold(attachment.filename))
    return message


def make_message_id(key: str, domain: str, ref: str | None = None) -> str:
    """A Message-ID derived from an idempotency key, so retries reuse it. ``ref`` (letters,
    digits, ``-``) goes in front, so bounces and complaints that quote the Message-ID can
    be traced back to the message that caused them."""
    if not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
        raise ValueError(f"bad Message-ID domain {domain!r}")
    if ref is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", ref):
        raise ValueError(f"bad Message-ID reference {ref!r}")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{ref}.{digest}@{domain}>" if ref else f"<{digest}@{domain}>"


@functools.cache
def _css_inliner():  # type: ignore[no-untyped-def]
    import css_inline

    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


# The sender's headers (and mostly the subject and date) are the same in every message of a run,
# and parsing headers is a third of building a message: parsed once, the header objects
# (immutable) are shared.
@functools.lru_cache(maxsize=32)
def _sender_header(name: str, addr_spec: str, display_name: str | None) -> BaseHeader:
    return policy.default.header_factory(name, _address(addr_spec, display_name))


@functools.lru_cache(maxsize=256)  # a run's subjects are few (per locale, per variant)
def _subject_header(subject: str) -> BaseHeader:
    return policy.default.header_factory("Subject", subject)


@functools.lru_cache(maxsize=2)
def _date_header(second: int) -> BaseHeader:
    return policy.default.header_factory("Date", format_datetime(datetime.fromtimestamp(second, timezone.utc)))


def _premailer(html: str) -> str:
    import premailer

    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    return premailer.Premailer(html, keep_style_tags=False, allow_network=False,
                               disable_validation=True, cssutils_logging_level=logging.CRITICAL,
                               remove_classes=False, strip_important=False).transform()


def _fold(value: str) -> str:
    """Header text on one line: CR, LF and other controls become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _address(addr_spec: str, display_name: str | None = None) -> Address:
    if _CONTROL.search(addr_spec) or "," in addr_spec or "<" in addr_spec:
        raise ValueError("e-mail address contains forbidden characters")
    username, at, domain = addr_spec.strip().rpartition("@")
    if not at or not username or not domain:
        raise ValueError("e-mail address must look like user@domain")
    return Address(display_name=_fold(display_name or ""), username=username, domain=domain)


def _message_id(message_id: str) -> str:
    if _CONTROL.search(message_id) or not re.fullmatch(r"<[^<>\s]+@[^<>\s]+>", message_id):
        raise ValueError("Message-ID must look like <id@domain>")
    return message_id


def _header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
        raise ValueError(f"header {name!r} cannot be set as an extra header")
    return name

"""Customer service's view of one customer: finding them, their profile, and one timeline
of every message sent to them and every response they made, interleaved by time.

What a message was sent as is read from the engine's own stores, never rendered again:
the archived PDF (``ccm.runs.reprint``, hash checked), the e-mail in the maildir and the
line of the SMS file (``provider_id`` names them). A channel that hands messages to a
server (SMTP, an SMS gateway) keeps no copy; the timeline then shows what the engine
recorded (state, artifact hash, pages) and says so.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from channels import channel_from_url
from channels.files import safe_filename
from ccm.field_values import FieldError, phone
from ccm.models import ArchivedDocument, Communication, Customer, Message, Run
from ccm.models.feedback import ResponseEvent
from ccm.runs import archive_root, reprint
from ccm.wiring import Engine

LIMIT = 50  # customers a search returns at most


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: a message (``kind`` "message") or a response ("event")."""

    at: dt.datetime
    kind: str
    channel: str | None
    communication: str | None
    what: str  # the message's state, or the event's type
    message_id: int | None
    detail: str | None = None  # the reason of a message's state, the event's detail
    text: str | None = None  # the text of a reply (the customer's own words)
    archived: bool = False  # the message has an archived PDF
    amount: str | None = None


@dataclass(frozen=True)
class Profile:
    customer: Customer
    consents: list[Any]
    timeline: list[Entry]


def normalise_phone(query: str) -> str | None:
    """``(415) 555-0101``, ``415.555.0101``, ``+1 415 555 0101`` -> ``+14155550101``; None if
    the query is no phone number (numbers without + are read as US numbers)."""
    digits = sum(ch.isdigit() for ch in query)
    if digits < 7 or any(ch.isalpha() for ch in query):
        return None
    try:
        return phone(query, "query", region=None if query.strip().startswith("+") else "US")
    except FieldError:
        return None


def find_customers(engine: Engine, query: str, limit: int = LIMIT) -> list[Customer]:
    """Customers whose external id, name or e-mail contains ``query`` (any letter case),
    or whose phone is the number in ``query`` in any common format; at most ``limit``."""
    query = query.strip()
    if not query:
        return []
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"%{escaped}%"
    terms = [func.lower(column).like(like, escape="\\") for column in (Customer.external_id, Customer.name, Customer.email)]
    number = normalise_phone(query)
    if number:
        terms.append(Customer.phone == number)
    with engine.db.reader() as session:
        found = list(session.scalars(select(Customer).where(Customer.erased_at.is_(None), or_(*terms))
                                     .order_by(Customer.name, Customer.id).limit(limit)))
        session.expunge_all()
        return found


def customers_after(engine: Engine, query: str, after: int | None, limit: int) -> list[Customer]:
    """Customers (not erased) in id order after the id ``after``, at most ``limit``, with their
    consents: all of them, or those ``query`` finds as ``find_customers`` does. For paging."""
    where = [Customer.erased_at.is_(None)]
    query = query.strip()
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        terms = [func.lower(column).like(f"%{escaped}%", escape="\\")
                 for column in (Customer.external_id, Customer.name, Customer.email)]
        number = normalise_phone(query)
        if number:
            terms.append(Customer.phone == number)
        where.append(or_(*terms))
    if after is not None:
        where.append(Customer.id > after)
    with engine.db.reader() as session:
        found = list(session.scalars(select(Customer).where(*where).options(selectinload(Customer.consents))
                                     .order_by(Customer.id).limit(limit)))
        session.expunge_all()
        return found


def customer_by_external_id(engine: Engine, external_id: str) -> Customer | None:
    with engine.db.reader() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id)
                                  .options(selectinload(Customer.consents)))
        if customer is not None:
            session.expunge_all()
        return customer


def profile(engine: Engine, external_id: str, limit: int = 500) -> Profile | None:
    """The customer, their consents (channel, purpose, granted, when, how) and the newest
    ``limit`` entries of their timeline, newest first."""
    with engine.db.reader() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id)
                                  .options(selectinload(Customer.consents)))
        if customer is None:
            return None
        consents = sorted(customer.consents, key=lambda c: (c.channel, c.purpose))
        timeline = _messages(session, customer.id, limit) + _events(session, customer.id, limit)
        session.expunge_all()
    timeline.sort(key=lambda entry: (entry.at, entry.kind == "event"), reverse=True)
    return Profile(customer, consents, timeline[:limit])


def _messages(session: Any, customer_id: int, limit: int) -> list[Entry]:
    archived = set(session.scalars(select(ArchivedDocument.message_id).where(ArchivedDocument.customer_id == customer_id)))
    rows = session.execute(
        select(Message.id, Message.channel, Message.state, Message.reason, Message.sent_at, Message.updated_at,
               Message.created_at, Communication.name)
        .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
        .where(Message.customer_id == customer_id).order_by(Message.id.desc()).limit(limit)
    ).all()
    return [Entry(sent_at or updated_at or created_at, "message", channel, name, state, message_id, reason,
                  archived=message_id in archived)
            for message_id, channel, state, reason, sent_at, updated_at, created_at, name in rows]


def _events(session: Any, customer_id: int, limit: int) -> list[Entry]:
    rows = session.scalars(select(ResponseEvent).where(ResponseEvent.customer_id == customer_id)
                           .order_by(ResponseEvent.occurred_at.desc(), ResponseEvent.id.desc()).limit(limit))
    return [Entry(event.occurred_at, "event", event.channel, event.communication, event.type, event.message_id,
                  event.detail, text=(event.data or {}).get("text"),
                  amount=f"{event.amount} {event.currency or ''}".strip() if event.amount is not None else None)
            for event in rows]


# --------------------------------------------------------------------------- what was sent


@dataclass(frozen=True)
class Sent:
    """A message as the engine keeps it: the e-mail (parsed), the SMS text, or neither
    (``kept`` says why)."""

    message_id: int
    channel: str
    state: str
    communication: str
    artifact_sha256: str | None
    pages: int | None
    archived: bool
    email: EmailMessage | None = None
    sms: str | None = None
    kept: str = ""  # where the content is, or why it is not here
    inbox: dict[str, Any] | None = None  # an inbox message: subject, html, text

    @property
    def subject(self) -> str:
        if self.inbox is not None:
            return self.inbox.get("subject") or ""
        return str(self.email["Subject"] or "") if self.email is not None else ""

    def body(self, kind: str) -> str | None:
        """The e-mail's (or the inbox message's) ``html`` or ``plain`` body, if it has one."""
        if self.inbox is not None:
            return self.inbox.get("html" if kind == "html" else "text")
        if self.email is None:
            return None
        part = self.email.get_body((kind,))
        return part.get_content() if part is not None else None


def sent_message(engine: Engine, external_id: str, message_id: int) -> Sent | None:
    """What the engine keeps of one message of this customer (None: not theirs)."""
    with engine.db.reader() as session:
        row = session.execute(
            select(Message, Communication.name).join(Customer, Message.customer_id == Customer.id)
            .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
            .where(Message.id == message_id, Customer.external_id == external_id)
        ).first()
        if row is None:
            return None
        message, communication = row
        archived = session.scalar(select(ArchivedDocument.id).where(ArchivedDocument.message_id == message_id)) is not None
        base = dict(message_id=message.id, channel=message.channel, state=message.state, communication=communication,
                    artifact_sha256=message.artifact_sha256, pages=message.pages, archived=archived)
        provider_id = message.provider_id
    if provider_id is None or message.channel not in ("email", "sms", "inbox") or not engine.settings["channels"].get(message.channel):
        return Sent(**base, kept="the archive" if archived else "nothing: the message was not delivered by e-mail, SMS or the inbox")
    channel = channel_from_url(engine.settings["channels"][message.channel])
    if message.channel == "inbox":
        found = channel.read(provider_id)  # type: ignore[attr-defined]
        if found is None:
            return Sent(**base, kept=f"no copy: not in {channel.url()} any more")
        return Sent(**base, inbox=dict(found.get("content") or {}), kept="the inbox")
    if message.channel == "email":
        found = _maildir_file(getattr(channel, "folder", None), provider_id)
        if found is None:
            return Sent(**base, kept=f"no copy: delivered through {channel.url()}")
        with open(found, "rb") as fh:
            parsed = email.message_from_binary_file(fh, policy=email.policy.default)
        return Sent(**base, email=parsed, kept="the maildir")  # type: ignore[arg-type]
    text = _sms_line(getattr(channel, "path", None), provider_id)
    if text is None:
        return Sent(**base, kept=f"no copy: delivered through {channel.url()}")
    return Sent(**base, sms=text, kept="the SMS file")


def _maildir_file(folder: str | None, name: str) -> str | None:
    if not folder or name != safe_filename(name):
        return None
    new = os.path.join(folder, "new", name)
    if os.path.exists(new):
        return new
    cur = os.path.join(folder, "cur")
    if os.path.isdir(cur):
        with os.scandir(cur) as entries:
            return next((e.path for e in entries if e.name.split(":", 1)[0] == name), None)
    return None


def _sms_line(path: str | None, message_ref: str) -> str | None:
    if not path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("id") == message_ref:
                return str(item.get("text") or "")
    return None


def archived_pdf(engine: Engine, external_id: str, message_id: int) -> bytes | None:
    """The archived PDF of this customer's message, byte for byte (hash checked)."""
    with engine.db.reader() as session:
        owner = session.scalar(select(Customer.external_id).join(Message, Message.customer_id == Customer.id)
                               .where(Message.id == message_id))
        if owner != external_id:
            return None
        _, data = reprint(session, archive_root(engine.var_dir), message_id)
        return data

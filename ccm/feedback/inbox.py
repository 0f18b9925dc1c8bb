"""The customer's inbox on the company's website or app: the messages the inbox channel
kept for a customer (``[channels] inbox``), listed newest first, read (the first reading is
recorded as the message's open, as a tracking pixel's is) and archived.

The website calls these through the API for a customer who signed in there; the engine
trusts the site to say which customer that is. A message is the customer's only if it was
sent to them through the inbox; anything else is "no such message", never someone else's.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels import channel_from_url
from ccm.feedback.events import Event, record
from ccm.models import ArchivedDocument, Communication, Customer, Message, Run, utcnow
from ccm.models.inbox import InboxMark

if TYPE_CHECKING:
    from ccm.wiring import Engine

FOLDERS = ("inbox", "archived", "all")


class InboxError(LookupError):
    """No such customer, or no such message in their inbox: the message says which."""


@dataclass(frozen=True)
class InboxItem:
    message_id: int
    communication: str
    purpose: str
    sent_at: dt.datetime
    read_at: dt.datetime | None
    archived_at: dt.datetime | None
    subject: str | None
    preview: str  # the start of the text, for the list
    document: bool  # a PDF (the statement) is kept in the archive for this message
    content: dict[str, Any] = field(default_factory=dict)  # subject, html, text: when read


def inbox_items(engine: Engine, external_id: str, *, folder: str = "inbox", after: int | None = None,
                limit: int = 20) -> list[InboxItem]:
    """The customer's inbox messages, newest first: those not archived (``inbox``), the
    archived ones, or ``all``; ``after`` is the last message id of the previous page."""
    if folder not in FOLDERS:
        raise ValueError(f"folder: one of {', '.join(FOLDERS)}")
    with engine.db.reader() as session:
        customer_id = _customer_id(session, external_id)
        query = _messages(customer_id)
        if folder == "inbox":
            query = query.where(InboxMark.archived_at.is_(None))
        elif folder == "archived":
            query = query.where(InboxMark.archived_at.is_not(None))
        if after is not None:
            query = query.where(Message.id < after)
        rows = session.execute(query.order_by(Message.id.desc()).limit(limit)).all()
        documents = _archived(session, [row[0].id for row in rows])
    channel = _channel(engine)
    return [_item(channel, *row, document=row[0].id in documents) for row in rows]


def unread_count(engine: Engine, external_id: str) -> int:
    """Messages in the customer's inbox (not archived) they have not read."""
    with engine.db.reader() as session:
        customer_id = _customer_id(session, external_id)
        query = _messages(customer_id).where(InboxMark.read_at.is_(None), InboxMark.archived_at.is_(None))
        return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def read_item(engine: Engine, external_id: str, message_id: int) -> InboxItem:
    """One message with its content; the first reading marks it read and records it as the
    message's open (once, whatever the pixel or a later reading says)."""
    with engine.db.session() as session:
        (message, communication, *_), mark = _marked(session, external_id, message_id)
        now = utcnow()
        if mark.read_at is None:
            mark.read_at = now
            record(session, Event(f"open:{message_id}", "opened", "inbox", now, message_id=message_id, channel="inbox",
                                  detail="read in the inbox"), engine.settings)
        document = bool(_archived(session, [message_id]))
        read_at, archived_at = mark.read_at, mark.archived_at
    return _item(_channel(engine), message, communication, read_at, archived_at, document=document, content=True)


def archive_item(engine: Engine, external_id: str, message_id: int, *, archived: bool = True) -> InboxItem:
    """Move a message to the customer's archive, or back to the inbox (``archived=False``)."""
    with engine.db.session() as session:
        (message, communication, *_), mark = _marked(session, external_id, message_id)
        if archived and mark.archived_at is None:
            mark.archived_at = utcnow()
        elif not archived:
            mark.archived_at = None
        document = bool(_archived(session, [message_id]))
        read_at, archived_at = mark.read_at, mark.archived_at
    return _item(_channel(engine), message, communication, read_at, archived_at, document=document)


def inbox_pdf(engine: Engine, external_id: str, message_id: int) -> bytes:
    """The PDF kept in the archive for an inbox message of this customer (their statement),
    byte for byte; ``ccm.runs.ArchiveError`` when its file is missing or altered."""
    from ccm.feedback.customers import archived_pdf

    with engine.db.reader() as session:
        customer_id = _customer_id(session, external_id)
        if session.execute(_messages(customer_id).where(Message.id == message_id)).first() is None:
            raise InboxError(f"no such message in this customer's inbox: {message_id}")
        if not _archived(session, [message_id]):
            raise InboxError(f"message {message_id} has no document")
    data = archived_pdf(engine, external_id, message_id)
    if data is None:
        raise InboxError(f"no such message in this customer's inbox: {message_id}")
    return data


def _marked(session: Session, external_id: str, message_id: int) -> tuple[Any, InboxMark]:
    """The customer's inbox message (with its communication) and its marks, made if new."""
    row = session.execute(_messages(_customer_id(session, external_id)).where(Message.id == message_id)).first()
    if row is None:
        raise InboxError(f"no such message in this customer's inbox: {message_id}")
    mark = session.get(InboxMark, message_id)
    if mark is None:
        mark = InboxMark(message_id=message_id)
        session.add(mark)
    return row, mark


def _customer_id(session: Session, external_id: str) -> int:
    found = session.scalar(select(Customer.id).where(Customer.external_id == external_id, Customer.erased_at.is_(None)))
    if found is None:
        raise InboxError(f"no such customer: {external_id}")
    return found


def _messages(customer_id: int) -> Any:
    """The customer's delivered inbox messages, with their communication and marks."""
    return (select(Message, Communication.name, InboxMark.read_at, InboxMark.archived_at)
            .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
            .outerjoin(InboxMark, InboxMark.message_id == Message.id)
            .where(Message.customer_id == customer_id, Message.channel == "inbox", Message.state == "sent",
                   Message.provider_id.is_not(None)))


def _archived(session: Session, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(session.scalars(select(ArchivedDocument.message_id).where(ArchivedDocument.message_id.in_(ids))))


def _channel(engine: Engine) -> Any:
    url = engine.settings["channels"].get("inbox")
    if not url:
        raise InboxError("[channels] inbox is not set: no inbox is kept")
    return channel_from_url(url)


def _item(channel: Any, message: Message, communication: str, read_at: dt.datetime | None, archived_at: dt.datetime | None,
          *, document: bool, content: bool = False) -> InboxItem:
    kept = channel.read(message.provider_id) or {}  # gone: erased or pruned from the folder
    body = kept.get("content") or {}
    text = body.get("text") or ""
    preview = " ".join(text.split())[:140]
    return InboxItem(message.id, communication, message.purpose, message.sent_at or message.created_at, read_at, archived_at,
                     body.get("subject"), preview, document,
                     {"subject": body.get("subject"), "html": body.get("html"), "text": text} if content else {})

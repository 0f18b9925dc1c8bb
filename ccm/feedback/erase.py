"""Erasure (``ccm customers erase ID``): a customer's personal data leaves the engine.

In one transaction: the customer's name, addresses, phone, attributes, preferences and
consents go; their external id and their accounts become ``erased-<n>``; their billing lines, archived documents (files and index),
segment memberships and metrics, the texts of their replies and the URLs recorded with
their messages are removed; the messages' idempotency keys are made again from the
anonymised ids. Counts stay (a run still reconciles, a report still adds
up), tied to an anonymous record. Their e-mail address and phone number are kept only as
SHA-256 hashes on the suppression list, so a later import of the same address is never
contacted again. Logs never held personal data (message ids only), so none is left there.

Not in reach: what was already delivered (mailboxes, the SMS gateway, printed letters,
the print shop's files) and database backups.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ccm.engine import Engine
from ccm.feedback.models import ResponseEvent
from ccm.models import ArchivedDocument, Communication, Consent, Customer, FeedRecord, Message, Run, Suppression, utcnow
from ccm.runs.archive import archive_root
from ccm.runs.plan import message_key
from ccm.runs.policy import address, hashed_address
from ccm.segments.models import CustomerMetrics, SegmentMember

log = logging.getLogger(__name__)


class ErasureError(LookupError):
    """No such customer, or already erased."""


@dataclass(frozen=True)
class Erasure:
    customer_id: int
    messages: int
    events: int
    statements: int
    documents: int
    suppressions: int


def erase_customer(engine: Engine, external_id: str) -> Erasure:
    with engine.db.session() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
        if customer is None:
            raise ErasureError(f"no such customer: {external_id}")
        if customer.erased_at is not None:
            raise ErasureError(f"customer {external_id} is already erased")
        suppressions = _hash_suppressions(session, customer)
        files = _unindex_archive(session, engine, customer.id)
        statements = _anonymise_feed(session, customer.id)
        _anonymise_customer(customer)
        session.flush()
        messages = _anonymise_messages(session, customer.id)
        events = _anonymise_events(session, customer.id)
        session.execute(delete(Consent).where(Consent.customer_id == customer.id))
        session.execute(delete(SegmentMember).where(SegmentMember.customer_id == customer.id))
        session.execute(delete(CustomerMetrics).where(CustomerMetrics.customer_id == customer.id))
        customer_id = customer.id
    # The archived files go only once the database has let go of them: a failed erasure
    # leaves the archive as its index says.
    root = archive_root(engine.var_dir)
    for path in files:
        path.unlink(missing_ok=True)
        _prune(path.parent, root)  # the folder is named after the account
    log.info("customer %s erased: %s messages, %s events, %s documents", customer_id, messages, events, len(files))
    return Erasure(customer_id, messages, events, statements, len(files), suppressions)


def _hash_suppressions(session: Session, customer: Customer) -> int:
    """Keep the customer's addresses only as hashes on the suppression list (with the reason
    they were suppressed for, or ``erased``)."""
    made = 0
    for channel in ("email", "sms"):
        where = address(customer, channel)
        if not where:
            continue
        existing = session.scalar(select(Suppression).where(Suppression.channel == channel, Suppression.address == where))
        reason = existing.reason if existing is not None else "erased"
        if existing is not None:
            session.delete(existing)
        hashed = hashed_address(where)
        if session.scalar(select(Suppression.id).where(Suppression.channel == channel, Suppression.address == hashed)) is None:
            session.add(Suppression(channel=channel, address=hashed, reason=reason, source="erasure", created_at=utcnow()))
            made += 1
    session.flush()
    return made


def _unindex_archive(session: Session, engine: Engine, customer_id: int) -> list[Path]:
    """Remove the customer's documents from the archive's index; returns their files."""
    root = archive_root(engine.var_dir)
    documents = list(session.scalars(select(ArchivedDocument).where(ArchivedDocument.customer_id == customer_id)))
    for document in documents:
        session.delete(document)
    session.flush()
    return [root / document.path for document in documents]


def _anonymise_events(session: Session, customer_id: int) -> int:
    """Reply texts, details and the callers' event ids (which may hold an account or a
    name) go; type, time, amount and the message stay, for the counts."""
    rows = list(session.execute(select(ResponseEvent.id).where(ResponseEvent.customer_id == customer_id)).scalars())
    if rows:
        session.execute(update(ResponseEvent), [{"id": i, "event_key": f"erased:{i}", "data": {}, "detail": None} for i in rows])
    return len(rows)


def _prune(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _anonymise_feed(session: Session, customer_id: int) -> int:
    records = list(session.scalars(select(FeedRecord).where(FeedRecord.customer_id == customer_id)))
    for record in records:
        record.account = f"erased-{record.id}"
        record.lines = []
        record.source_file = "erased"
        record.row_hash = "erased"
    session.flush()
    return len(records)


def _anonymise_messages(session: Session, customer_id: int) -> int:
    """Idempotency keys hold the account, the external id or a caller's event id. A
    statement's key is made again from the anonymised account (so planning the same cycle
    again still finds it and plans nothing twice); any other becomes ``<communication>:
    erased:<message id>`` (an erased customer is in no later audience). The data a message
    was sent for (an event, a date) and the URLs recorded with it go too."""
    rows = session.execute(
        select(Message.id, Message.purpose, Run.cycle, Communication.name, FeedRecord.account)
        .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
        .outerjoin(FeedRecord, Message.feed_record_id == FeedRecord.id)
        .where(Message.customer_id == customer_id)
    ).all()
    if rows:
        session.execute(update(Message), [
            {"id": message_id, "links": [], "data": {},
             "idempotency_key": message_key(name, cycle, account, purpose) if account else f"{name}:erased:{message_id}"}
            for message_id, purpose, cycle, name, account in rows
        ])
    return len(rows)


def _anonymise_customer(customer: Customer) -> None:
    customer.external_id = f"erased-{customer.id}"
    customer.name = "(erased)"
    for column in ("email", "phone", "address_line1", "address_line2", "city", "region", "postal_code", "country",
                   "household_key", "preferred_channel"):
        setattr(customer, column, None)
    customer.attributes, customer.preferences = {}, {}
    customer.paperless = False
    customer.row_hash = "erased"
    customer.erased_at = customer.updated_at = utcnow()

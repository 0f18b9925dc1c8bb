"""Erasure (``ccm customers erase ID``): a customer's personal data leaves the engine.

In three steps:

1. The files the engine wrote under ``var_dir`` (``ccm.feedback.erase_files``): archived
   PDFs, the channels' own copies (print batches and production folders rebuilt without
   their documents, e-mails in the maildir, lines of the SMS file) and the rows of rejects
   files that name them; a kind named in ``[erasure] retain`` is kept, and said so. Files
   go first: should anything fail, the customer is still there and the erasure can run again.
2. The database, in one transaction: the customer's name, addresses, phone, attributes,
   preferences and consents go; their external id and their accounts become
   ``erased-<n>``; their billing lines, archive index entries, segment memberships and
   metrics, the texts of their replies and the URLs and data recorded with their messages
   are removed; the messages' idempotency keys are made again from the anonymised ids.
   Counts stay (a run still reconciles, a report still adds up), tied to an anonymous
   record. Their e-mail address and phone number stay only as keyed hashes on the
   suppression list (HMAC-SHA256 with a key derived from the engine's secret, so a phone
   number cannot be found by hashing every number), so a later import of the same address
   is never contacted again.
3. The database's files (``ccm.feedback.erase_db``): SQLite's write-ahead log is
   checkpointed and emptied; PostgreSQL's touched tables are vacuumed.

Refused while one of the customer's messages is being delivered (claimed by a worker):
the worker could write a file after the erasure. Logs never held personal data (message
ids only), so none is left there. Not in reach: what was already delivered (mailboxes, the
SMS gateway, printed letters, the print shop's copies) and database backups.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ccm.wiring import Engine
from ccm.staff import record as audit_record
from ccm.feedback.erase_db import scrub
from ccm.feedback.erase_files import Kept, Removed, Trail, erase_files
from ccm.models.feedback import ResponseEvent
from ccm.keys import suppression_key
from ccm.models import ArchivedDocument, Communication, Consent, Customer, FeedRecord, Message, Run, Suppression, utcnow
from ccm.runs import address, hashed_address, legacy_hash, message_key
from ccm.models.segments import CustomerMetrics, SegmentMember

log = logging.getLogger(__name__)

TABLES = (Customer, Consent, FeedRecord, Message, ResponseEvent, Suppression, ArchivedDocument, SegmentMember, CustomerMetrics)


class ErasureError(LookupError):
    """No such customer, already erased, or being delivered to right now."""


@dataclass(frozen=True)
class Erasure:
    customer_id: int
    messages: int
    events: int
    statements: int
    documents: int  # archived PDFs deleted
    suppressions: int  # addresses added to the suppression list as keyed hashes
    rows: dict[str, int]  # database rows anonymised or deleted, by what they were
    removed: list[Removed]  # from the engine's files
    kept: list[Kept]  # and why
    database: str  # what was done to the database's files

    def report(self) -> list[str]:
        """What was removed and what was kept, and why: the erase command's output."""
        rows = ", ".join(f"{count} {what}" for what, count in self.rows.items())
        lines = ["removed:", f"  database: {sum(self.rows.values())} rows anonymised or deleted ({rows}); "
                 f"{self.suppressions} addresses kept only as keyed hashes (HMAC-SHA256) on the suppression list",
                 f"  database files: {self.database}"]
        lines += [f"  {item.kind}: {item.count} {item.what}" + (f"; {item.detail}" if item.detail else "") for item in self.removed]
        lines.append("kept:" if self.kept else "kept: nothing")
        lines += [f"  {item.kind}: {item.count} {item.what}, {item.why}" for item in self.kept]
        return lines


def erase_customer(engine: Engine, external_id: str, *, actor: str | None = None, via: str | None = None) -> Erasure:
    """Erase a customer's personal data; ``actor`` (the member of staff who asked) is
    audited in the same transaction, before the database files are cleaned."""
    retain = set(engine.settings["erasure"]["retain"])
    with engine.db.reader() as session:
        customer = _erasable(session, external_id)
        customer_id, trail = customer.id, Trail.of(session, customer, engine.var_dir)
    removed, kept = erase_files(engine, trail, retain)
    with engine.db.session() as session:
        customer = _erasable(session, external_id)
        suppressions = _hash_suppressions(session, customer)
        rows = {"customer": 1, "statements": _anonymise_feed(session, customer_id)}
        _anonymise_customer(customer)
        session.flush()
        rows["messages"] = _anonymise_messages(session, customer_id)
        rows["events"] = _anonymise_events(session, customer_id)
        for name, model in (("consents", Consent), ("segment memberships", SegmentMember), ("metrics", CustomerMetrics)):
            rows[name] = session.execute(delete(model).where(model.customer_id == customer_id)).rowcount
        if "archive" not in retain:
            rows["archive index entries"] = session.execute(
                delete(ArchivedDocument).where(ArchivedDocument.customer_id == customer_id)).rowcount
        if actor is not None:  # named by its anonymous record: the external id was personal data
            audit_record(session, actor, "customer.erase", "customer", customer.external_id, via=via, messages=rows["messages"])
    database = scrub(engine.db, [model.__tablename__ for model in TABLES])
    log.info("customer %s erased: %s messages, %s events", customer_id, rows["messages"], rows["events"])
    documents = next((item.count for item in removed if item.kind == "archive"), 0)
    return Erasure(customer_id, rows["messages"], rows["events"], rows["statements"], documents, suppressions,
                   rows, removed, kept, database)


def _erasable(session: Session, external_id: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None:
        raise ErasureError(f"no such customer: {external_id}")
    if customer.erased_at is not None:
        raise ErasureError(f"customer {external_id} is already erased")
    claimed = session.scalar(select(func.min(Message.run_id)).where(Message.customer_id == customer.id, Message.state == "claimed"))
    if claimed is not None:
        raise ErasureError(f"customer {external_id} has a message being delivered in run {claimed}: erase once it is done")
    return customer


def _hash_suppressions(session: Session, customer: Customer) -> int:
    """Keep the customer's addresses only as keyed hashes on the suppression list (with the
    reason they were suppressed for, or ``erased``); an unkeyed hash of an earlier erasure
    of the same address is replaced."""
    key = suppression_key(session)
    made = 0
    for channel in ("email", "sms"):  # the inbox and webhooks reach them by id, which erasure replaces
        where = address(customer, channel)
        if not where:
            continue
        hashed = hashed_address(where, key)
        existing = list(session.scalars(select(Suppression).where(
            Suppression.channel == channel, Suppression.address.in_((where, legacy_hash(where), hashed)))))
        reason = next((row.reason for row in existing if row.address != hashed), "erased")
        for row in existing:
            if row.address != hashed:
                session.delete(row)
        if not any(row.address == hashed for row in existing):
            session.add(Suppression(channel=channel, address=hashed, reason=reason, source="erasure", created_at=utcnow()))
            made += 1
    session.flush()
    return made


def _anonymise_events(session: Session, customer_id: int) -> int:
    """Reply texts, details and the callers' event ids (which may hold an account or a
    name) go; type, time, amount and the message stay, for the counts."""
    rows = list(session.execute(select(ResponseEvent.id).where(ResponseEvent.customer_id == customer_id)).scalars())
    if rows:
        session.execute(update(ResponseEvent), [{"id": i, "event_key": f"erased:{i}", "data": {}, "detail": None} for i in rows])
    return len(rows)


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

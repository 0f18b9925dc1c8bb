"""The engine's records: SQLAlchemy 2.0 typed models.

Names follow the domain (DESIGN.md, "Core objects"). Schema changes go through Alembic
(``ccm/migrations``); a test checks that the models and the migrations agree.
"""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Double,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ccm.column_types import JsonDoc, Money

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JsonDoc, list[Any]: JsonDoc, Decimal: Money, float: Double}


CHANNEL_KINDS = ("email", "sms", "print", "inbox", "webhook")  # inbox: the customer's inbox on the website; webhook: another system
PURPOSES = ("service", "marketing")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    household_key: Mapped[str | None] = mapped_column(String(32), index=True)
    locale: Mapped[str] = mapped_column(String(20), default="en_US")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    preferred_channel: Mapped[str | None] = mapped_column(String(10))
    paperless: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Computed fields, refreshed by the segments engine.
    value_tier: Mapped[str | None] = mapped_column(String(10))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(12))
    abc_code: Mapped[str | None] = mapped_column(String(1))
    rfm: Mapped[str | None] = mapped_column(String(3))
    engagement_score: Mapped[int | None] = mapped_column(Integer)
    last_response_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Engagement, updated the moment a response is recorded (ccm.feedback); bots excluded.
    last_open_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_click_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    open_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    click_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    response_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the customer chose in the preference centre: {"topics": [...], "frequency": "weekly"}.
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # personal data removed (ccm customers erase)
    # Bookkeeping: the hash of the imported row makes a re-import of the same data a no-op.
    row_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    consents: Mapped[list[Consent]] = relationship(back_populates="customer", cascade="all, delete-orphan")

    def has_consent(self, channel: str, purpose: str = "service") -> bool:
        return any(c.channel == channel and c.purpose == purpose and c.granted for c in self.consents)


class Consent(Base):
    """Consent of one customer for one channel and purpose, with when and how it was given."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("customer_id", "channel", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(100), default="import")

    customer: Mapped[Customer] = relationship(back_populates="consents")


class FeedRecord(Base):
    """One statement's billing data for one account and period, as the billing feed sent it."""

    __tablename__ = "feed_records"
    __table_args__ = (UniqueConstraint("account", "period"), Index("ix_feed_records_period", "period"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    opening_balance: Mapped[Decimal]
    closing_balance: Mapped[Decimal]
    amount_due: Mapped[Decimal]
    due_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[Any]] = mapped_column(default=list)  # [{date, description, amount}] with amounts as strings
    total_debits: Mapped[Decimal] = mapped_column(default=Decimal("0"))  # charges of the period (spend), for SQL
    total_credits: Mapped[Decimal] = mapped_column(default=Decimal("0"))  # payments and credits, as a positive amount
    source_file: Mapped[str] = mapped_column(String(255))
    source_line: Mapped[int] = mapped_column(Integer)
    row_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # path in the library, e.g. statement/statement.html
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    versions: Mapped[list[TemplateVersion]] = relationship(
        back_populates="template", order_by="TemplateVersion.version"
    )


class TemplateVersion(Base):
    """An immutable version of a template's source once approved."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default="draft")  # draft, in_review, approved, retired
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # stylesheets, slots
    author: Mapped[str] = mapped_column(String(100))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    effective_from: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    template: Mapped[Template] = relationship(back_populates="versions")


class Communication(Base):
    """What is sent, e.g. "Monthly statement": templates per channel and the channel policy."""

    __tablename__ = "communications"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # statement, bill, marketing
    title: Mapped[str] = mapped_column(String(200))
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # templates per channel, slots, policy
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# waiting: only messages deferred to a later time are left (the retry sweeper sends them);
# paused: stopped by a person (or Ctrl-C, or failures in a row) until someone resumes it.
RUN_STATES = ("planned", "running", "waiting", "paused", "cancelled", "completed", "failed")


class Run(Base):
    """One execution of a communication for a cycle. One per communication and cycle."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("communication_id", "cycle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    communication_id: Mapped[int] = mapped_column(ForeignKey("communications.id"))
    cycle: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12), default="planned")
    records_in: Mapped[int] = mapped_column(Integer, default=0)
    template_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # template name -> version id
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    owner: Mapped[str | None] = mapped_column(String(120))  # the process executing it (host:pid:start), while running
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # renewed by that process while it runs

    communication: Mapped[Communication] = relationship()


# A run's state; each outcome has its own exit code of `ccm run` / `ccm runs resume` (ccm.cli.runs):
# completed clean; undelivered (completed, some messages had no channel left); waiting (for
# retries, quiet hours, limits); paused (by a person, or after failures in a row);
# interrupted (its process died); failed (an error, or books that do not balance).
class RunState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    UNDELIVERED = "undelivered"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class MessageState(StrEnum):
    """pending (to send), claimed (a worker has it), sent, failed (waits for its retry),
    dead (given up, no channel left), suppressed (by a rule, or the run cancelled),
    deferred (waits for a later time)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"


MESSAGE_STATES = tuple(MessageState)


class Message(Base):
    """The outbox: one row per customer x communication x channel x cycle."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_run_state", "run_id", "state"),
        Index("ix_messages_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    feed_record_id: Mapped[int | None] = mapped_column(ForeignKey("feed_records.id"))
    channel: Mapped[str] = mapped_column(String(10))  # email, sms, print
    purpose: Mapped[str] = mapped_column(String(40))  # e.g. statement, sms.statement_ready
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)  # why suppressed / failed / dead; never personal data
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    template_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # template name -> version id used
    decisions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # slot -> content chosen and why
    links: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # URLs as sent; tracked links redirect only here
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")  # what it was sent for: a triggering event, a reminder's date
    provider_id: Mapped[str | None] = mapped_column(String(255))
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    pages: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    fallback_from: Mapped[str | None] = mapped_column(String(40))  # channels given up before this one, e.g. "email"
    fallback_why: Mapped[str | None] = mapped_column(String(40))  # why the last one gave up: retries exhausted, ...
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    run: Mapped[Run] = relationship()
    customer: Mapped[Customer] = relationship()
    feed_record: Mapped[FeedRecord | None] = relationship()


class Suppression(Base):
    """An address (or a whole customer, address '*') that must not receive a channel."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(254))  # normalised e-mail or E.164 phone
    reason: Mapped[str] = mapped_column(String(50))  # unsubscribed, hard_bounce, complaint, stop, manual
    source: Mapped[str] = mapped_column(String(100), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ArchivedDocument(Base):
    """The exact PDF a message delivered, kept for reprints: indexed by customer, account
    and cycle, verified by its hash, never rendered again."""

    __tablename__ = "archived_documents"
    __table_args__ = (Index("ix_archived_documents_lookup", "customer_id", "account", "cycle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    account: Mapped[str | None] = mapped_column(String(64))
    cycle: Mapped[str] = mapped_column(String(20))
    communication: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(500))  # relative to the archive folder
    sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    pdf_a: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RateCounter(Base):
    """A fixed-window counter of the rate limiter shared by every worker process."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float]  # Unix time


# The tables of each part of the engine, in modules of their own; imported here so that
# importing ``ccm.models`` registers every table (Alembic, relationships by name).
from ccm.models import authoring, campaigns, decisions, feedback, imports, inbox, scheduling, segments, staff, webhooks  # noqa: E402,F401

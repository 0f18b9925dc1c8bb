"""Records of the feedback loop: every response event once, and the API tokens that
other systems use to report conversions and payments."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ccm.models import Base, utcnow


EVENT_TYPES = (
    "delivered", "opened", "clicked", "replied", "converted", "paid",
    "unsubscribed", "bounced", "complained", "opted_out", "help", "preferences",
)
ENGAGEMENT = ("opened", "clicked", "replied", "converted", "paid")  # a response: moves last_response_at
RESPONSES = ("clicked", "replied", "converted", "paid")  # counted as "responded" in reports
ATTRIBUTED = ("converted", "paid")  # may arrive without a message: attributed to the last one


class ResponseEvent(Base):
    """One thing a customer (or their mail system) did, normalised, stored once.

    ``event_key`` makes recording idempotent: the provider's event id, the API caller's
    event id, or for tracked opens and clicks the message (and link) they belong to.
    ``detail`` and ``data`` never hold an address, a phone number or a message body.
    """

    __tablename__ = "response_events"
    __table_args__ = (
        Index("ix_response_events_customer_time", "customer_id", "occurred_at"),
        Index("ix_response_events_run_type", "run_id", "type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(20))  # see ccm.feedback.events.EVENT_TYPES
    source: Mapped[str] = mapped_column(String(20))  # track, api, inbound, dsn
    channel: Mapped[str | None] = mapped_column(String(10))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    communication: Mapped[str | None] = mapped_column(String(100))
    variant: Mapped[str | None] = mapped_column(String(100))  # "experiment/variant" of the message, if any
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    bot: Mapped[bool] = mapped_column(Boolean, default=False)  # scanners, prefetchers: excluded from rates
    detail: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiToken(Base):
    """A bearer token for ``/api/v1``; only its SHA-256 is stored. With ``user_id`` it acts as
    its user, with the user's permissions: a personal token of staff (scope "personal", made
    by ``ccm login``) or a key of a service account (scope "key", ``ccm keys create``).
    Without, it is an event-ingestion token (scope "events", ``ccm tokens create``)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200), default="events")  # space-separated
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class IdempotencyKey(Base):
    """A request made with an ``Idempotency-Key`` header, per caller: the hash of what was
    asked and, once answered, the answer, replayed when the same request comes again.
    ``status`` is None while the first request is being answered."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("caller", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(100))  # the name of the token or key
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class DecisionExposure(Base):
    """A decision shown to a customer in real time (``GET`` of a slot's decision through the
    API): what they saw, counted in the experiment's report next to the messages sent."""

    __tablename__ = "decision_exposures"
    __table_args__ = (Index("ix_decision_exposures_experiment", "experiment", "variant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    communication: Mapped[str] = mapped_column(String(100))
    slot: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(100))
    content: Mapped[str | None] = mapped_column(String(200))
    experiment: Mapped[str | None] = mapped_column(String(100))
    variant: Mapped[str | None] = mapped_column(String(100))
    via: Mapped[str] = mapped_column(String(100))  # the key or token that asked
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

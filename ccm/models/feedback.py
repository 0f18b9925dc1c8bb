"""Records of the feedback loop: every response event once, and the API tokens that
other systems use to report conversions and payments."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
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
    """A bearer token for ``/api/v1``; only its SHA-256 is stored. A personal token
    (``user_id`` set, made by ``ccm login``) acts as its user, with the user's permissions."""

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

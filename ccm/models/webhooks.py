"""Outbound webhooks: subscriptions of other systems to the engine's events, and the
deliveries of each event to each subscription (an outbox, written in the transaction of
what caused the event and sent by ``ccm.outbound``)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ccm.models import Base, utcnow


class WebhookSubscription(Base):
    """Where to POST which events. ``secret`` is the signing secret (``whsec_...``),
    encrypted with a key derived from the engine's secret (``ccm.outbound.secrets``); it
    is shown once, when made."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[Any]] = mapped_column(default=list)  # ["run.completed", ...]
    secret: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# pending: to send (again) at next_attempt_at; delivered: a 2xx answer; dead: given up (a
# 4xx answer, a refused target, or max_attempts reached). "failed" is the state of a
# delivery whose last attempt failed and that waits for its retry.
DELIVERY_STATES = ("pending", "failed", "delivered", "dead")


class WebhookDelivery(Base):
    """One event for one subscription: its payload as sent (the same at every attempt) and
    where its attempts stand. ``last_error`` never holds personal data."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(64))  # the payload's id and the webhook-id header
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # one of DELIVERY_STATES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    subscription: Mapped[WebhookSubscription] = relationship()

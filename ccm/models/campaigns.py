"""Campaign records of the marketers' studio: what a campaign is for and what it may cost.

A campaign names the communication it sends (the weekly deals, a campaign of its own) and
is measured over that communication's runs between its start and end (``ccm.feedback.campaigns``):
spend, responses, conversions, revenue and ROI against its forecast and its budget.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ccm.models import Base, utcnow


class Campaign(Base):
    """A marketing campaign: owner, goal, audience (a segment; empty: the communication's
    own), channels, communication, schedule (by name, optional), dates, budget, forecast."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    owner: Mapped[str] = mapped_column(String(64))
    goal: Mapped[str] = mapped_column(Text, default="")
    communication: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str | None] = mapped_column(String(100))  # a segment's name
    channels: Mapped[list[Any]] = mapped_column(default=list)  # ["email", "sms"]
    schedule: Mapped[str | None] = mapped_column(String(100))  # a schedule's name
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    budget: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3))
    forecast_responses: Mapped[int | None] = mapped_column(Integer)
    forecast_revenue: Mapped[Decimal | None]
    # Send the winner to the rest by a rule set in advance: once ``winner_experiment`` has a
    # significant winner, no sooner than ``winner_after_hours`` after the cycle's run began
    # (``ccm.feedback.campaigns.send_winners_due``, from the scheduler's sweep).
    winner_experiment: Mapped[str | None] = mapped_column(String(100))
    winner_after_hours: Mapped[int | None] = mapped_column(Integer)
    winner_checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # the rule's last look
    winner_outcome: Mapped[str | None] = mapped_column(Text)  # what the rule did or waits for, in words
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

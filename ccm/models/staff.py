"""Records of the staff who use the engine: users, roles as sets of ``area:action``
permissions (data, not code), and the follow-up tasks customer service works through.

The audit log of what staff did is ``ccm.models.authoring.AuditLog``; personal API tokens
are ``ccm.models.feedback.ApiToken`` rows with a ``user_id``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ccm.models import Base, utcnow

user_roles = Table(
    "user_roles", Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


class Role(Base):
    """A named set of permissions, e.g. billing = ``runs:start runs:control archive:reprint ...``."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    permissions: Mapped[list[Any]] = mapped_column(default=list)  # ["runs:start", "runs:control", ...]
    built_in: Mapped[bool] = mapped_column(Boolean, default=False)


USER_KINDS = ("person", "service")


class User(Base):
    """A member of staff, or a service account (``kind`` "service": another system that calls
    the API with keys, holding roles like staff; it has no password and never signs in).
    The password is an argon2 hash; ``totp_secret`` is set once a second factor is enrolled;
    ``failed_signins`` and ``locked_until`` hold the lockout."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="person", server_default="person")  # one of USER_KINDS
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(20))  # the console's language; None: the browser's
    timezone: Mapped[str | None] = mapped_column(String(64))  # the viewer's zone for times; None: UTC
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    failed_signins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_signin_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    password_changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")


TASK_KINDS = ("reply", "complaint", "undelivered")
TASK_STATES = ("open", "closed")


class FollowUpTask(Base):
    """Something a person must look at for a customer: a reply that is not a keyword, a
    complaint, a statement that reached no one. ``summary`` never holds a message body."""

    __tablename__ = "follow_up_tasks"
    __table_args__ = (Index("ix_follow_up_tasks_state", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # one of TASK_KINDS
    source_key: Mapped[str] = mapped_column(String(200), unique=True)  # one task per event or message
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("response_events.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(10), default="open")
    assignee: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))

    comments: Mapped[list[TaskComment]] = relationship(order_by="TaskComment.id", cascade="all, delete-orphan",
                                                       lazy="selectin")


class TaskComment(Base):
    __tablename__ = "task_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("follow_up_tasks.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    text: Mapped[str] = mapped_column(Text)

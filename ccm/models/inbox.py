"""The customer's inbox on the company's website: what the customer did with each message
the inbox channel kept for them (read, archived). The message itself is the outbox row
(channel ``inbox``); its content is in the inbox channel's folder (``channels.inbox``)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from ccm.models import Base


class InboxMark(Base):
    """Read and archived marks of one inbox message, made when the customer first reads it
    or archives it."""

    __tablename__ = "inbox_marks"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

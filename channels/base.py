"""The delivery contract: what a channel takes, what it returns, and what it must never do.

A channel is configured by one URL, parsed and checked in the constructor (a bad URL
raises :class:`ChannelConfigError` at once). ``send`` never raises for a delivery
failure: it classifies the outcome as ``sent``, ``transient`` (try again later) or
``permanent`` (this message will never go through this channel). Neither logs nor
``DeliveryResult.detail`` ever hold an address, a phone number, a body or a password.
A channel that keeps copies of what it delivered in files of its own (maildir, SMS file,
print batches) removes a customer's from them on request (``forget``, for erasure).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

Status = Literal["sent", "transient", "permanent"]


@dataclass(frozen=True)
class Outbound:
    """One message to deliver.

    ``message_id`` is the outbox message's stable id: a retry reuses it, and file
    channels name their files after it so a re-delivery is idempotent.
    ``content`` is an :class:`EmailMessage` (e-mail, Message-ID already set), the text
    (SMS), the PDF bytes (print) or, for the inbox and webhook channels, the rendered
    message as a JSON-able mapping ``{"subject": str | None, "text": str, "html": str | None}``.
    """

    message_id: str
    to: str
    content: EmailMessage | str | bytes | Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one ``send``; ``detail`` is a short reason without personal data.

    ``retry_after``: for a transient failure, the seconds the provider asked to wait before
    trying again (an HTTP ``Retry-After``), or None when it said nothing.
    """

    status: Status
    provider_id: str | None = None
    detail: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class Delivered:
    """One delivery as the engine recorded it: the ``provider_id`` that ``send`` returned
    and, for a channel that writes batches (print), the batch it went to."""

    provider_id: str
    batch_id: str | None = None


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` took out of a channel's own files."""

    messages: int = 0  # deliveries removed: files deleted, lines dropped, documents taken out
    rebuilt: tuple[str, ...] = ()  # files made again without them (print streams, manifests), relative to the channel's folder


class ChannelConfigError(ValueError):
    """A channel URL or name is wrong; the message names the problem (never a password)."""


class Channel(ABC):
    """Base class of every delivery adapter.

    Subclasses declare ``name``, ``kind``, ``schemes`` and their limits as class
    attributes. ``rate_per_second`` is advisory: the engine paces its workers by it,
    the adapter does not sleep.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    rate_per_second: ClassVar[float | None] = None
    max_body: ClassVar[int | None] = None
    sessions: int = 1  # how many sends may run at once, from different threads (SMTP: its pool)

    @abstractmethod
    def __init__(self, url: str) -> None:
        """Parse and validate ``url``; raise :class:`ChannelConfigError` if it is wrong."""

    @abstractmethod
    def url(self, privacy: bool = True) -> str:
        """The channel's URL; with ``privacy`` the password is masked. Round-trips."""

    @abstractmethod
    def send(self, out: Outbound) -> DeliveryResult:
        """Deliver one message; classify failures instead of raising."""

    def open_batch(self, batch_id: str) -> None:
        """Start a batch (print runs); other channels ignore batches."""

    def close_batch(self) -> None:
        """Finish the current batch."""

    def close(self) -> None:
        """Release connections and files; may be called any number of times."""

    def forget(self, delivered: Collection[Delivered]) -> Forgotten | None:
        """Remove these deliveries from the files the channel itself wrote (erasure of a
        customer); what is not there any more is skipped, so it may be called again.
        ``None``: the channel keeps no copy of what it delivered (it hands messages to a
        server), so there is nothing of it to remove here."""
        return None

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Turn a provider callback into feedback events."""
        raise NotImplementedError(f"channel {self.name} takes no inbound callbacks")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url(privacy=True)}>"

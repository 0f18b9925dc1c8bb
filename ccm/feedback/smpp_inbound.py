"""Receipts and replies from an SMSC: what ``ccm smpp listen`` runs.

SMPP has no callbacks: the SMSC hands delivery receipts and mobile-originated replies to an
ESME bound to receive them. ``[channels] sms`` must be an ``smpp://`` URL; the listener binds
with the same account as a receiver (as a transceiver when the URL says ``bind=transceiver``:
``SmppChannel.for_inbound``), takes what the SMSC sends in batches
(``SmppChannel.poll_inbound``, which answers each deliver_sm) and records each batch as a
provider callback is recorded (``handle_events(engine, "sms", events)``): a receipt is
matched to the message by its provider id, a STOP suppresses the number, a HELP is answered.

A link that drops or a bind that fails is tried again after a pause that doubles from
``backoff[0]`` to ``backoff[1]`` seconds, and starts again once a link has held through a
poll. The SMSC is answered only after the events are recorded, so a listener that dies
in between leaves them with the SMSC, which sends them again: a database that is away
(``OperationalError``) is waited for, the same batch recorded again with the same backoff
(each event is stored once, so what was recorded before the error is not recorded twice).
``stop`` ends the loop after the batch in hand is recorded. Logs name the channel by its
masked URL and count events; never a number or a text.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sqlalchemy.exc import OperationalError

from channels import channel_from_url
from ccm.feedback.provider_events import InboundResult, handle_events
from ccm.wiring import Engine

log = logging.getLogger(__name__)

BACKOFF = (1.0, 60.0)  # seconds: the first pause after a failure, and the longest


class SmppListenError(Exception):
    """The listener cannot run: ``[channels] sms`` is no smpp:// URL, or (reading once) the
    SMSC cannot be bound. The message names the setting or the SMSC's answer."""


@dataclass
class Listened:
    """What a listener took: batches, binds and the events by outcome."""

    batches: int = 0
    binds: int = 0
    result: InboundResult = field(default_factory=InboundResult)

    def add(self, batch: InboundResult) -> None:
        self.batches += 1
        self.result.recorded += batch.recorded
        self.result.duplicates += batch.duplicates
        self.result.unknown += batch.unknown
        for kind, count in batch.by_type.items():
            self.result.by_type[kind] = self.result.by_type.get(kind, 0) + count

    def to_json(self) -> dict[str, Any]:
        return {"batches": self.batches, "binds": self.binds, **self.result.to_json()}


def smpp_inbound_channel(settings: Mapping[str, Any]) -> Any:
    """The channel to read ``[channels] sms``'s receipts and replies with (an unbound
    ``SmppChannel``); ``SmppListenError`` naming the setting when it is no smpp:// URL."""
    url = settings["channels"]["sms"] or ""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme != "smpp":
        what = f"a {scheme}:// URL" if scheme else "not set" if not url else "no URL"
        raise SmppListenError(f"[channels] sms is {what}: receipts and replies are read from an SMSC, so it must be an "
                              "smpp:// URL (CCM_CHANNELS__SMS); other SMS gateways post theirs to /inbound/sms")
    return channel_from_url(url).for_inbound()


def take_smpp_inbound(engine: Engine, channel: Any, wait: float, stop: threading.Event | None = None,
                      backoff: tuple[float, float] = BACKOFF) -> InboundResult | None:
    """One batch: what the SMSC sent within ``wait`` seconds, recorded, then answered; None
    when nothing came. With ``stop``, a database that is away is waited for until it is back
    or ``stop`` is set (then the error is raised, the batch unanswered); without, it is raised
    at once."""
    recorded: list[InboundResult] = []

    def record(events: list[dict[str, Any]]) -> None:
        pause = backoff[0]
        while True:
            try:
                recorded.append(handle_events(engine, "sms", events))
                return
            except OperationalError as exc:
                if stop is None or stop.is_set():
                    log.error("smpp %s: %d receipts and replies not recorded (%s), left unanswered for the SMSC to send "
                              "again", channel.url(), len(events), type(exc).__name__)
                    raise
                log.error("smpp %s: cannot record %d receipts and replies (%s); trying again in %g s", channel.url(),
                          len(events), type(exc).__name__, pause)
                stop.wait(pause)
                pause = min(pause * 2, backoff[1])

    channel.poll_inbound(wait, record)
    return recorded[0] if recorded else None


def listen_smpp(engine: Engine, channel: Any, stop: threading.Event, *, once: bool = False, poll_seconds: float = 1.0,
                idle_seconds: float = 2.0, backoff: tuple[float, float] = BACKOFF,
                on_batch: Callable[[InboundResult], None] | None = None) -> Listened:
    """Bind ``channel`` (``smpp_inbound_channel``) and record what the SMSC sends until
    ``stop`` is set, binding again with backoff whenever the link is lost. ``once``: until
    nothing has come for ``idle_seconds``, and a failed bind is a ``SmppListenError``."""
    listened = Listened()
    pause = backoff[0]
    url = channel.url()
    if channel.bind == "transceiver":
        log.warning("smpp %s: bind=transceiver: senders with this URL bind so too, and the SMSC may hand receipts to "
                    "their links, where nothing reads them until the link closes; senders should bind as transmitter",
                    url)
    while not stop.is_set():
        if channel.link_down:
            problem = channel.bind_now()
            if problem:
                if once:
                    raise SmppListenError(f"cannot bind to the SMSC ({url}): {problem}")
                log.warning("smpp %s: cannot bind (%s); trying again in %g s", url, problem, pause)
                stop.wait(pause)
                pause = min(pause * 2, backoff[1])
                continue
            listened.binds += 1
            if listened.binds == 1:
                log.info("smpp %s: bound as %s; reading receipts and replies", url, channel.bind)
            else:  # the end of the incident the warnings told of
                log.warning("smpp %s: bound as %s again; reading receipts and replies", url, channel.bind)
        batch = take_smpp_inbound(engine, channel, idle_seconds if once else poll_seconds, None if once else stop, backoff)
        if batch is not None:
            listened.add(batch)
            if on_batch is not None:
                on_batch(batch)
        dropped = channel.link_down
        if dropped:
            log.warning("smpp %s: link lost (%s); binding again in %g s", url, dropped, pause)
            stop.wait(pause)
            pause = min(pause * 2, backoff[1])
        elif batch is None and once:
            break
        else:
            pause = backoff[0]  # the link held through a poll
    log.info("smpp %s: stopped after %d batches: %d recorded, %d seen before, %d about messages not known", url,
             listened.batches, listened.result.recorded, listened.result.duplicates, listened.result.unknown)
    return listened

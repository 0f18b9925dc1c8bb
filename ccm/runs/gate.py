"""The checks made again just before a message is sent, because the world moves on between
planning and sending: a customer unsubscribes or withdraws consent, an address bounces,
the clock enters the customer's quiet hours.

Each check returns what to do: send, suppress, defer until a time, or reroute to another
channel (a statement whose e-mail is no longer allowed goes by post instead). Quiet hours
hold for SMS and marketing e-mail; a critical communication's own document goes at any hour,
and its SMS reminders only when it marks SMS critical (``bypasses_quiet_hours``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ccm.models import Communication, Message
from ccm.delivery_settings import QuietHours
from ccm.runs.caps import frequency_problem
from ccm.runs.policy import CHANNELS, PRIMARY_PURPOSES, PolicyError, reachable, topic_problem

STATEMENT = "statement"


@dataclass(frozen=True)
class Verdict:
    action: str  # send, suppress, defer, reroute
    reason: str | None = None
    channel: str | None = None  # for reroute
    until: dt.datetime | None = None  # for defer (naive UTC)


SEND = Verdict("send")


def check(
    suppressed: dict[tuple[str, str], str], message: Message, communication: Communication, quiet: QuietHours, now: dt.datetime,
    *, capped: set[int] | frozenset[int] = frozenset(), cap_reason: str | None = None, last_marketing: dt.datetime | None = None,
) -> Verdict:
    """``suppressed`` is what ``suppressions_for`` read for the message's chunk just before;
    ``capped`` the customers a marketing message would take over the frequency cap."""
    customer, channel = message.customer, message.channel
    problem = reachable(customer, channel, suppressed, consent_purpose(communication))
    if problem:
        if message.purpose == STATEMENT and channel == "email" and reachable(customer, "print", suppressed) is None:
            return Verdict("reroute", f"rerouted to print at send time: {problem}", channel="print")
        return Verdict("suppress", f"{problem} at send time")
    if communication.kind == "marketing":
        problem = topic_problem(customer, communication.config.get("topic"))
        if problem:
            return Verdict("suppress", f"{problem} at send time")
        if message.customer_id in capped:
            return Verdict("suppress", f"{cap_reason} at send time")
        problem = frequency_problem(customer, last_marketing, now)
        if problem:
            return Verdict("suppress", f"{problem} at send time")
    if (channel == "sms" or communication.kind == "marketing") and not bypasses_quiet_hours(communication, message):
        until = quiet.ends(now, customer.timezone)
        if until is not None:
            return Verdict("defer", f"quiet hours {quiet.spec} in the customer's time zone", until=until)
    return SEND


def bypasses_quiet_hours(communication: Communication, message: Message) -> bool:
    """A critical communication's own document (the statement, by post or e-mail) goes out
    at any hour: it is owed. What rides along with it (the SMS payment reminder) is a nudge
    and waits for the morning like any SMS, unless the communication lists its channel in
    ``critical_channels`` (every message of the communication on that channel is critical)."""
    if message.channel in critical_channels(communication):
        return True
    return bool(communication.critical) and message.purpose in PRIMARY_PURPOSES


def critical_channels(communication: Communication) -> tuple[str, ...]:
    """The channels a communication marks critical (config ``critical_channels``); a bad
    entry is an error naming the communication and the entry."""
    channels = (communication.config or {}).get("critical_channels", [])
    if not isinstance(channels, list) or any(channel not in CHANNELS for channel in channels):
        raise PolicyError(
            f"{communication.name}: critical_channels must be a list of {', '.join(CHANNELS)}, got {channels!r}"
        )
    return tuple(channels)


def consent_purpose(communication: Communication) -> str:
    """Marketing needs marketing consent; statements, bills and reminders need service consent."""
    return "marketing" if communication.kind == "marketing" else "service"


def owed(communication: Communication) -> bool:
    """Whether the communication is owed to the customer (config ``owed``; statements and
    bills are by default): a message of it that its channel gives up on for any reason,
    retries exhausted included, takes the fallback channel. Others fall back only after a
    permanent failure."""
    return bool((communication.config or {}).get("owed", communication.kind in ("statement", "bill")))


def fallback_channel(communication: Communication, message: Message, why: str = "permanent failure",
                     suppressed: dict[tuple[str, str], str] | None = None) -> str | None:
    """The channel a message its channel gave up on goes to instead (config ``fallback``,
    e.g. ``{"email": "print"}``; followed along, e.g. sms → email → print, never to a
    channel the message already gave up); None when there is none or it cannot reach the
    customer (an address, consent, and not on the suppression list: ``suppressed`` as
    ``policy.suppressions_for`` reads it)."""
    if why != "permanent failure" and not owed(communication):
        return None
    chain = (communication.config or {}).get("fallback", {})
    tried = set(filter(None, (message.fallback_from or "").split(","))) | {message.channel}
    target, seen = chain.get(message.channel), set()
    while target in tried and target not in seen:  # skip what was given up already (a chain may loop)
        seen.add(target)
        target = chain.get(target)
    if target in tried:
        return None
    if not target or reachable(message.customer, target, suppressed or {}, consent_purpose(communication)) is not None:
        return None
    return target

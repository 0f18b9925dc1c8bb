"""Channel choice per customer: a communication's channel policy.

A policy is an ordered list of channels, each with an optional condition in the rule
language (README, "Rule language"); the first channel whose condition holds for the
customer *and* that can reach them (an address, consent for the purpose, not suppressed)
wins. With ``prefer_customer_choice`` the customer's own preferred channel goes first
when it is allowed. The monthly statement's policy: e-mail for paperless customers,
otherwise paper, and e-mail for those without a postal address::

    {"order": [{"channel": "email", "when": "paperless"}, {"channel": "print"}, {"channel": "email"}]}

A statement is a critical document: every record gets exactly one message, suppressed
with the reasons when no channel can reach the customer. The SMS payment reminder is
extra: only with SMS consent and an amount due.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.keys import suppression_key
from ccm.models import CHANNEL_KINDS, Customer, Suppression
from ccm.rules import Rule, RuleError

DEFAULT_POLICY: dict[str, Any] = {
    "order": [{"channel": "email", "when": "paperless"}, {"channel": "print"}, {"channel": "email"}],
    "prefer_customer_choice": False,
}
CHANNELS = CHANNEL_KINDS
ADDRESSED = tuple(channel for channel in CHANNELS if channel != "print")  # reached at an address that may be suppressed
# The one message each record in gets (a statement, a campaign message, a triggered or a
# date reminder's message). Others, such as the SMS payment reminder, ride along with it.
PRIMARY_PURPOSES = ("statement", "campaign", "event", "reminder")


class PolicyError(ValueError):
    """A channel policy that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Choice:
    channel: str | None  # email, sms, print; None when nothing can be delivered
    reason: str | None = None  # why this channel, or why suppressed (never personal data)
    suppressed: bool = False


@dataclass(frozen=True)
class Step:
    channel: str
    when: Rule | None
    test: Callable[[dict[str, Any]], bool] | None


class ChannelPolicy:
    """A parsed policy; ``choose`` applies it to one customer and their rule values."""

    def __init__(self, spec: dict[str, Any] | None, segments: set[str] | None = None) -> None:
        spec = spec or DEFAULT_POLICY
        self.prefer_customer_choice = bool(spec.get("prefer_customer_choice", False))
        self.steps: list[Step] = []
        for number, entry in enumerate(spec.get("order", []), start=1):
            channel = entry.get("channel")
            if channel not in CHANNELS:
                raise PolicyError(f"channel policy entry {number}: unknown channel {channel!r} (choose {', '.join(CHANNELS)})")
            when = None
            if entry.get("when"):
                try:
                    when = Rule.parse(entry["when"], segments=segments)
                except RuleError as exc:
                    raise PolicyError(f"channel policy entry {number} ({channel}): {exc}") from None
            self.steps.append(Step(channel, when, when.to_python() if when else None))
        if not self.steps:
            raise PolicyError("a channel policy needs at least one channel")

    @property
    def rules(self) -> list[Rule]:
        return [step.when for step in self.steps if step.when is not None]

    def choose(
        self, customer: Customer, values: dict[str, Any], suppressed: dict[tuple[str, str], str], purpose: str = "service"
    ) -> Choice:
        problems: list[str] = []
        steps = self.steps
        if self.prefer_customer_choice and customer.preferred_channel:
            steps = sorted(steps, key=lambda step: step.channel != customer.preferred_channel)
        for step in steps:
            if step.test is not None and not step.test(values):
                continue
            problem = reachable(customer, step.channel, suppressed, purpose)
            if problem is None:
                why = f"when {step.when.text}" if step.when else "by default"
                if self.prefer_customer_choice and step.channel == customer.preferred_channel:
                    why = "the customer's preferred channel"
                return Choice(step.channel, f"{step.channel} {why}")
            if problem not in problems:
                problems.append(problem)
        return Choice(None, "no deliverable channel: " + (" and ".join(problems) or "no policy entry applies"), suppressed=True)


def address(customer: Customer, channel: str) -> str | None:
    """The customer's address on a channel as suppressions record it (None for print). The
    inbox and a webhook reach the customer by their id in the company's systems."""
    if channel == "email":
        return (customer.email or "").lower() or None
    if channel in ("inbox", "webhook"):
        return customer.external_id
    return customer.phone if channel == "sms" else None


def reachable(customer: Customer, channel: str, suppressed: dict[tuple[str, str], str], purpose: str = "service") -> str | None:
    """Why ``channel`` cannot reach the customer, or None when it can. Used at planning and
    again at send time (``ccm.runs.gate``)."""
    if channel == "print":
        return None if customer.address_line1 and (customer.postal_code or customer.city) else "no postal address"
    where = address(customer, channel)
    if not where:
        return "no e-mail address" if channel == "email" else "no phone number"
    if not customer.has_consent(channel, purpose):
        return f"no {channel} consent"
    reason = suppressed.get((channel, where))
    return f"{channel} suppressed ({reason})" if reason else None


FREQUENCY_DAYS = {"as_it_happens": 0, "weekly": 7, "monthly": 30}


def topic_problem(customer: Customer, topic: str | None) -> str | None:
    """Why a marketing message on ``topic`` must not go to this customer (their choice in
    the preference centre), or None. Without a choice every topic is allowed."""
    chosen = (customer.preferences or {}).get("topics")
    if topic and chosen is not None and topic not in chosen:
        return f"opted out of topic {topic}"
    return None


def frequency_days(customer: Customer) -> int:
    """The fewest days between two marketing messages the customer asked for (0: no limit)."""
    return FREQUENCY_DAYS.get((customer.preferences or {}).get("frequency", "as_it_happens"), 0)


def suppressions_for(session: Session, customers: Iterable[Customer], channels: Iterable[str]) -> dict[tuple[str, str], str]:
    """The suppressions that concern these customers on these channels, read in one query
    (per planning batch or delivery chunk, never the whole table)."""
    wanted = {(channel, where) for customer in customers for channel in channels if (where := address(customer, channel))}
    if not wanted:
        return {}
    # An erased customer leaves only the keyed hash of their address (ccm.feedback.erase), so
    # a re-import of the same address is still suppressed; erasures made before the hashes
    # were keyed left plain SHA-256 ("sha256:<hex>"), matched too.
    secret = suppression_key(session)
    plain_of = {}
    for _, where in wanted:
        plain_of[hashed_address(where, secret)] = plain_of[legacy_hash(where)] = where
    rows = session.execute(
        select(Suppression.channel, Suppression.address, Suppression.reason)
        .where(Suppression.address.in_({where for _, where in wanted} | set(plain_of)))
    )
    found = {}
    for channel, where, reason in rows:
        key = (channel, plain_of.get(where, where))
        if key in wanted:
            found[key] = reason
    return found


def hashed_address(where: str, key: bytes) -> str:
    """How a suppression keeps an address it must not store: ``hmac-sha256:<hex>``, keyed
    with the engine's secret (``ccm.keys.suppression_key``), so that a phone number cannot
    be found again by hashing every number."""
    return "hmac-sha256:" + hmac.new(key, where.encode("utf-8"), hashlib.sha256).hexdigest()


def legacy_hash(where: str) -> str:
    """The unkeyed ``sha256:<hex>`` of erasures made before the hashes were keyed."""
    return "sha256:" + hashlib.sha256(where.encode("utf-8")).hexdigest()


def sms_reminder(
    customer: Customer, amount_due: Decimal, min_due: Decimal, suppressed: dict[tuple[str, str], str]
) -> Choice | None:
    if amount_due < min_due:
        return None
    problem = reachable(customer, "sms", suppressed)
    if problem is None:
        return Choice("sms", "sms consent and an amount due")
    if problem.startswith("sms suppressed"):
        return Choice("sms", problem, suppressed=True)
    return None  # no phone number or no consent: no reminder at all

"""Changes customer service makes on a customer's behalf (they asked by phone): a consent
or their preferences.

Applied as the preference centre applies the customer's own (``ccm.feedback.preferences``):
the consent is recorded with when and how (source ``phone: <agent>``), the change is a
``preferences`` event in the customer's history, and planning and sending honour it from
then on (a withdrawn consent: no more messages of that purpose on that channel; the
engine suppresses addresses only for STOP, bounces and complaints, not for a withdrawal).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ccm.feedback.events import Event, record, set_consent, suppress
from ccm.feedback.preferences import PreferenceError
from ccm.models import CHANNEL_KINDS, PURPOSES, Customer, Suppression, utcnow
from ccm.runs import address
from ccm.wiring import Engine

CONSENT_CHANNELS = ("email", "sms", "inbox", "webhook")  # print needs no consent
SOURCE = "phone: {agent}"


@dataclass(frozen=True)
class Changed:
    external_id: str
    changed: list[str]  # what changed, e.g. ["consent email/marketing"], ["paperless", "topics"]


def _customer(session: Session, external_id: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id)
                              .options(selectinload(Customer.consents)))
    if customer is None or customer.erased_at is not None:
        raise LookupError(f"no such customer: {external_id}")
    return customer


def _event(engine: Engine, session: Session, customer: Customer, agent: str, changed: list[str]) -> None:
    now = utcnow()
    record(session, Event(f"preferences:phone:{customer.id}:{now.isoformat()}", "preferences", "phone", now,
                          customer_id=customer.id, detail=", ".join(changed) or "no change",
                          data={"changed": changed, "agent": agent}), engine.settings)


def change_consent(engine: Engine, external_id: str, channel: str, purpose: str, granted: bool, agent: str) -> Changed:
    """Give or withdraw the customer's consent for ``channel`` and ``purpose``, as told by
    phone to ``agent`` (a member of staff's user name)."""
    if channel not in CONSENT_CHANNELS:
        raise PreferenceError(f"no such channel: {channel} (one of: {', '.join(CONSENT_CHANNELS)})")
    if purpose not in PURPOSES:
        raise PreferenceError(f"no such purpose: {purpose} (one of: {', '.join(PURPOSES)})")
    with engine.db.session() as session:
        customer = _customer(session, external_id)
        before = customer.has_consent(channel, purpose)
        set_consent(session, customer, channel, purpose, granted, SOURCE.format(agent=agent))
        changed = [f"consent {channel}/{purpose}"] if before != granted else []
        customer.updated_at = utcnow()
        _event(engine, session, customer, agent, changed)
        return Changed(external_id, changed)


def change_preferences(engine: Engine, external_id: str, agent: str, *, paperless: bool, preferred_channel: str | None,
                       topics: list[str], frequency: str) -> Changed:
    """Set paperless, the preferred channel, the topics and the frequency, as the preference
    centre does."""
    feedback = engine.settings["feedback"]
    unknown = [topic for topic in topics if topic not in feedback["topics"]]
    if unknown:
        raise PreferenceError(f"no such topic: {unknown[0]}")
    if frequency not in feedback["frequencies"]:
        raise PreferenceError(f"no such frequency: {frequency}")
    if preferred_channel is not None and preferred_channel not in CHANNEL_KINDS:
        raise PreferenceError(f"no such channel: {preferred_channel}")
    with engine.db.session() as session:
        customer = _customer(session, external_id)
        before = _choices(customer, feedback)
        customer.paperless = paperless and bool(customer.email)
        customer.preferred_channel = preferred_channel
        customer.preferences = {"topics": list(topics), "frequency": frequency}
        customer.updated_at = utcnow()
        after = _choices(customer, feedback)
        changed = sorted(name for name in after if before[name] != after[name])
        _event(engine, session, customer, agent, changed)
        return Changed(external_id, changed)


def _choices(customer: Customer, feedback: dict) -> dict:
    chosen = customer.preferences or {}
    return {"paperless": customer.paperless, "preferred_channel": customer.preferred_channel,
            "topics": list(chosen.get("topics", feedback["topics"])),
            "frequency": chosen.get("frequency", feedback["frequencies"][0])}


SUPPRESSIBLE = ("email", "sms")


def customer_suppressions(engine: Engine, external_id: str) -> list[dict]:
    """The suppressions of the customer's e-mail address and phone number."""
    with engine.db.reader() as session:
        customer = _customer(session, external_id)
        wanted = {(channel, where) for channel in SUPPRESSIBLE if (where := address(customer, channel))}
        rows = session.scalars(select(Suppression).where(Suppression.address.in_({where for _, where in wanted}))) if wanted else []
        return [{"channel": row.channel, "reason": row.reason, "source": row.source, "created_at": row.created_at}
                for row in rows if (row.channel, row.address) in wanted]


LIFTABLE = ("manual", "hard_bounce")  # an unsubscribe, a complaint or a STOP is the customer's to undo, by consenting again


def lift_suppression(engine: Engine, external_id: str, channel: str, agent: str) -> Changed:
    """Take the customer's address on ``channel`` off the suppression list, as asked by
    ``agent``: a manual suppression, or a hard bounce once the address is known to work.
    One the customer asked for (unsubscribed, complaint, STOP) is refused: the customer's
    own consent undoes it, not staff. Nothing changes when there is none."""
    if channel not in SUPPRESSIBLE:
        raise PreferenceError(f"no such channel: {channel} (one of: {', '.join(SUPPRESSIBLE)})")
    with engine.db.session() as session:
        customer = _customer(session, external_id)
        where = address(customer, channel)
        found = session.scalar(select(Suppression).where(Suppression.channel == channel, Suppression.address == where)) if where else None
        if found is None:
            return Changed(external_id, [])
        if found.reason not in LIFTABLE:
            raise SuppressionKept(f"the {channel} suppression ({found.reason}) was the customer's choice: only their consent "
                                  "lifts it")
        session.delete(found)
        changed = [f"lifted {channel} suppression ({found.reason})"]
        _event(engine, session, customer, agent, changed)
        return Changed(external_id, changed)


class SuppressionKept(PreferenceError):
    """A suppression the customer asked for, which staff may not lift."""


def suppress_customer(engine: Engine, external_id: str, channel: str, agent: str) -> Changed:
    """Put the customer's address on ``channel`` on the suppression list (reason "manual"),
    as asked by ``agent``; nothing changes when it is there already."""
    if channel not in SUPPRESSIBLE:
        raise PreferenceError(f"no such channel: {channel} (one of: {', '.join(SUPPRESSIBLE)})")
    with engine.db.session() as session:
        customer = _customer(session, external_id)
        where = address(customer, channel)
        if where is None:
            raise PreferenceError(f"customer {external_id} has no {channel} address")
        before = session.scalar(select(Suppression.id).where(Suppression.channel == channel, Suppression.address == where))
        suppress(session, channel, where, "manual", agent)
        changed = [] if before is not None else [f"suppressed {channel}"]
        _event(engine, session, customer, agent, changed)
        return Changed(external_id, changed)

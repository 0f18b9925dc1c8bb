"""The preference centre: how and how often a customer wants to hear from us.

A customer reaches it from the signed link in any message. They choose: offers by e-mail
and by SMS (marketing consent per channel), statements by e-mail instead of paper
(paperless), their preferred channel, the topics they want (``[feedback] topics``) and how
often (``[feedback] frequencies``: as it happens, at most weekly, at most monthly). Every
change is recorded with when and how (consent source ``preference centre``) and as a
``preferences`` event; planning and sending honour it from then on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from ccm.wiring import Engine
from ccm.feedback.events import Event, record, set_consent
from ccm.links import Signer, TokenError
from ccm.models import CHANNEL_KINDS, Customer, Message, utcnow

SOURCE = "preference centre"


class PreferenceError(ValueError):
    """A choice that is not offered; the message names it."""


@dataclass
class Preferences:
    """What the page shows; also what a save takes back."""

    name: str
    has_email: bool
    has_phone: bool
    offers_email: bool
    offers_sms: bool
    paperless: bool
    preferred_channel: str
    topics: list[str]
    frequency: str
    all_topics: list[str]
    all_frequencies: list[str]
    locale: str = ""  # the customer's: the page speaks their language


def _message(engine: Engine, session: Any, token: str) -> Message:
    value = Signer.from_settings(engine.settings).loads("preferences", token)
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], int):
        raise TokenError("this link is not valid")
    message = session.get(Message, value[0])
    if message is None or message.customer.erased_at is not None:
        raise LookupError("no such customer")
    return message


def load(engine: Engine, token: str) -> Preferences:
    with engine.db.reader() as session:
        customer = _message(engine, session, token).customer
        return _view(engine, customer)


def _view(engine: Engine, customer: Customer) -> Preferences:
    feedback = engine.settings["feedback"]
    chosen = customer.preferences or {}
    return Preferences(
        name=customer.name,
        has_email=bool(customer.email),
        has_phone=bool(customer.phone),
        offers_email=customer.has_consent("email", "marketing"),
        offers_sms=customer.has_consent("sms", "marketing"),
        paperless=customer.paperless,
        preferred_channel=customer.preferred_channel or "",
        topics=list(chosen.get("topics", feedback["topics"])),
        frequency=chosen.get("frequency", feedback["frequencies"][0]),
        all_topics=list(feedback["topics"]),
        all_frequencies=list(feedback["frequencies"]),
        locale=customer.locale or "",
    )


def as_submitted(view: Preferences, form: Mapping[str, Any]) -> Preferences:
    """The page as the customer left it (their unsaved choices over what is stored), for a
    form sent back to them unsaved, e.g. after its CSRF token expired."""
    frequency = form.get("frequency")
    return replace(
        view,
        offers_email=bool(form.get("offers_email")), offers_sms=bool(form.get("offers_sms")), paperless=bool(form.get("paperless")),
        preferred_channel=form.get("preferred_channel") or "",
        topics=[topic for topic in form.get("topics", []) if topic in view.all_topics],
        frequency=frequency if frequency in view.all_frequencies else view.frequency,
    )


def save(engine: Engine, token: str, form: Mapping[str, Any]) -> Preferences:
    """Apply the submitted form: ``offers_email``, ``offers_sms``, ``paperless`` (present =
    yes), ``preferred_channel``, ``topics`` (a list) and ``frequency``."""
    feedback = engine.settings["feedback"]
    topics = list(form.get("topics", []))
    unknown = [topic for topic in topics if topic not in feedback["topics"]]
    if unknown:
        raise PreferenceError(f"no such topic: {unknown[0]}")
    frequency = form.get("frequency") or feedback["frequencies"][0]
    if frequency not in feedback["frequencies"]:
        raise PreferenceError(f"no such frequency: {frequency}")
    preferred = form.get("preferred_channel") or None
    if preferred is not None and preferred not in CHANNEL_KINDS:
        raise PreferenceError(f"no such channel: {preferred}")
    with engine.db.session() as session:
        message = _message(engine, session, token)
        customer = message.customer
        before = _view(engine, customer)
        if customer.email:
            set_consent(session, customer, "email", "marketing", bool(form.get("offers_email")), SOURCE)
        if customer.phone:
            set_consent(session, customer, "sms", "marketing", bool(form.get("offers_sms")), SOURCE)
        customer.paperless = bool(form.get("paperless")) and bool(customer.email)
        customer.preferred_channel = preferred
        customer.preferences = {"topics": topics, "frequency": frequency}
        customer.updated_at = utcnow()
        session.flush()
        session.refresh(customer)
        after = _view(engine, customer)
        changed = sorted(name for name in ("offers_email", "offers_sms", "paperless", "preferred_channel", "topics", "frequency")
                         if getattr(before, name) != getattr(after, name))
        now = utcnow()
        record(session, Event(f"preferences:{message.id}:{now.isoformat()}", "preferences", "track", now, message_id=message.id,
                              detail=", ".join(changed) or "no change", data={"changed": changed}), engine.settings)
        return after

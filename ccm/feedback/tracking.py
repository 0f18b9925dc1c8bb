"""Opens, clicks and unsubscribes from the signed links in messages.

An open or click is flagged as a bot's, and kept out of rates, when it is a HEAD request,
when the user agent is a crawler (``crawlerdetect``) or a known mail scanner
(``[feedback] bot_user_agents``), or when it comes within ``[feedback] bot_seconds`` of
the message being sent (security gateways fetch every link on arrival). Per message at
most one open, one click per link and one bot hit of each are stored: the first.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from ccm.wiring import Engine
from ccm.feedback.events import Event, MessageInfo, message_info, record, seen, withdraw_consent
from ccm.links import ShortCodes, Signer, TokenError
from ccm.models import Message, utcnow


@dataclass(frozen=True)
class Hit:
    """One request to a tracked link, as the web layer saw it."""

    user_agent: str
    method: str  # GET, HEAD, POST


@functools.lru_cache(maxsize=1)
def _crawlers():  # type: ignore[no-untyped-def]
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


def bot_reason(settings: dict, hit: Hit, sent_at: dt.datetime | None, now: dt.datetime) -> str | None:
    """Why this hit is a machine's, not the customer's, or None."""
    if hit.method == "HEAD":
        return "HEAD request"
    agent = hit.user_agent or ""
    lowered = agent.lower()
    if not agent or any(marker in lowered for marker in settings["feedback"]["bot_user_agents"]):
        return "scanner user agent"
    if _crawlers().isCrawler(agent):
        return "crawler user agent"
    if sent_at is not None and (now - sent_at).total_seconds() < settings["feedback"]["bot_seconds"]:
        return "within seconds of delivery"
    return None


class UnknownLink(LookupError):
    """A valid token for a message or link the engine does not (or no longer) know."""


def _signer(engine: Engine) -> Signer:
    return Signer.from_settings(engine.settings)


def _message(session, message_id: object) -> Message:  # type: ignore[no-untyped-def]
    message = session.get(Message, message_id) if isinstance(message_id, int) else None
    if message is None:
        raise UnknownLink("no such message")
    return message


def _hit(engine: Engine, message_id: object, hit: Hit, kind: str, key: str, position: int | None = None) -> MessageInfo:
    """Record an open or click once: a read finds repeats (the common case) without taking
    the database's write lock; only a first hit writes."""
    now = utcnow()
    with engine.db.reader() as session:
        message = message_info(session, message_id) if isinstance(message_id, int) else None
        if message is None:
            raise UnknownLink("no such message")
        if position is not None and not (isinstance(position, int) and 0 <= position < len(message.links)):
            raise UnknownLink("no such link")
        bot = bot_reason(engine.settings, hit, message.sent_at, now)
        key = f"{key}:bot" if bot else key
        if seen(session, key):
            return message
    data = {"link": position} if position is not None else {}
    with engine.db.session() as session:
        event = Event(key, kind, "track", now, message_id=message.id, bot=bot is not None, detail=bot, data=data)
        record(session, event, engine.settings, message)
    return message


def record_open(engine: Engine, token: str, hit: Hit) -> None:
    (message_id,) = _payload(_signer(engine).loads("open", token), 1)
    _hit(engine, message_id, hit, "opened", f"open:{message_id}")


def record_short(engine: Engine, code: str, hit: Hit) -> str:
    """A short link from paper: the same as a click on that link."""
    message_id, position = ShortCodes(_signer(engine).secret).read(code)
    message = _hit(engine, message_id, hit, "clicked", f"click:{message_id}:{position}", position)
    return message.links[position]


def record_click(engine: Engine, token: str, hit: Hit) -> str:
    """The URL recorded for this link when the message was sent (where to redirect)."""
    message_id, position = _payload(_signer(engine).loads("click", token), 2)
    message = _hit(engine, message_id, hit, "clicked", f"click:{message_id}:{position}", position)
    return message.links[position]


def unsubscribe(engine: Engine, token: str, *, confirm: bool) -> tuple[str, str]:
    """With ``confirm`` (a POST: RFC 8058), withdraw marketing consent on the message's
    channel, every time (a customer who subscribed again in the preference centre and then
    unsubscribes again is unsubscribed), recording the event once. Without, only check the
    link (the GET page: link scanners must not unsubscribe anyone). Returns the channel and
the customer's locale (the page speaks their language).
    The page offers no way into the preference centre: whoever holds this link (a mailbox
    provider, a scanner) must not get the customer's name or choices from it."""
    (message_id,) = _payload(_signer(engine).loads("unsubscribe", token), 1)
    with engine.db.session() as session:
        message = _message(session, message_id)
        if confirm:
            event = Event(f"unsubscribe:{message.id}", "unsubscribed", "track", utcnow(), message_id=message.id)
            record(session, event, engine.settings)
            if message.customer.erased_at is None:
                withdraw_consent(session, message.customer, message.channel, "marketing", "track: unsubscribe")
        return message.channel, message.customer.locale or ""


def _payload(value: object, size: int) -> list:
    if not isinstance(value, list) or len(value) != size:
        raise TokenError("this link is not valid")
    return value

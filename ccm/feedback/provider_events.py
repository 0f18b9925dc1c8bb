"""What comes back from the channels: SMS replies (STOP, HELP, anything else), delivery
receipts, bounces and complaints, from provider callbacks (``POST /inbound/<channel>``) or
from DSN and ARF reports in a maildir (``ccm feedback bounces``).

SMS keywords: STOP, STOPALL, QUIT, END, REVOKE, OPT OUT, CANCEL and UNSUBSCRIBE suppress the
number for every SMS at once (also a number the engine does not know); HELP and INFO are
answered with ``[feedback] sms_help_text``; any other reply is recorded as a response to
the last SMS sent to that number. Each callback event is stored once (``<kind>:<id>``), so
a provider that calls twice changes nothing and HELP is answered once.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import logging
import mailbox
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import Outbound, channel_from_url
from channels.redact import redact
from ccm.wiring import Engine
from ccm.feedback.events import Event, Recorded, record, suppress
from ccm.models import Customer, Message, utcnow
from ccm.field_values import FieldError, phone

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "QUIT", "END", "REVOKE", "OPT OUT", "OPTOUT", "CANCEL", "UNSUBSCRIBE"})
HELP_WORDS = frozenset({"HELP", "INFO"})
_REF = re.compile(r"m(\d{9})-([0-9a-f]{12})")


@dataclass
class InboundResult:
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0  # events naming a message the engine does not know
    by_type: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, outcome: Recorded | None) -> None:
        if outcome is None:
            self.unknown += 1
        elif outcome.new:
            self.recorded += 1
            self.by_type[kind] = self.by_type.get(kind, 0) + 1
        else:
            self.duplicates += 1

    def to_json(self) -> dict[str, Any]:
        return {"recorded": self.recorded, "duplicates": self.duplicates, "unknown": self.unknown, "by_type": self.by_type}


def keyword(text: str) -> str:
    """``" Stop. "`` -> ``"STOP"``; ``"opt-out"`` -> ``"OPT OUT"``."""
    return " ".join(re.sub(r"[^A-Za-z]+", " ", text).upper().split())


def message_for_ref(session: Session, ref: str | None) -> Message | None:
    """The message a provider's reference names: the engine's file id (also inside the
    Message-ID of its e-mails), checked against its digest, or the provider id."""
    if not ref:
        return None
    match = _REF.search(ref)
    if match:
        message = session.get(Message, int(match.group(1)))
        digest = hashlib.sha256(message.idempotency_key.encode("utf-8")).hexdigest()[:12] if message else None
        return message if digest == match.group(2) else None
    return session.scalars(select(Message).where(Message.provider_id == ref.strip()).limit(1)).first()


def handle_events(engine: Engine, kind: str, events: Iterable[dict[str, Any]]) -> InboundResult:
    """Record parsed callback events (``Channel.parse_inbound``) of channel ``kind``."""
    result = InboundResult()
    for item in events:
        help_to = None
        with engine.db.session() as session:
            at = item.get("at") or utcnow()
            key = f"{kind}:{item['event_id']}"
            if item["type"] == "reply":
                outcome, kind_of, help_to = _reply(engine, session, kind, item, key, at)
            else:
                kind_of = {"delivered": "delivered", "bounce": "bounced", "failed": "bounced", "complaint": "complained"}[item["type"]]
                message = message_for_ref(session, item.get("message"))
                outcome = None
                if message is not None:
                    detail = redact(" ".join(filter(None, (item.get("status"), item.get("reason"))))) or None
                    data = {"receipt": "failed"} if item["type"] == "failed" else {}  # the provider gave up: not delivered
                    outcome = record(session, Event(key, kind_of, "inbound", at, message_id=message.id, channel=kind,
                                                    permanent=item["permanent"], detail=detail, data=data), engine.settings)
        if help_to is not None:  # answered after the commit: a slow gateway must not hold the database
            _answer_help(engine, help_to, key)
        result.add(kind_of, outcome)
    return result


def _sender(kind: str, raw: str) -> str | None:
    """The sender as customers' records hold it: E.164 (``phonenumbers``) or a lower-cased
    address; None for an SMS sender that is no valid phone number (it matches no customer,
    is never put on the suppression list and is never answered)."""
    if kind != "sms":
        return raw.strip().lower()
    try:
        return phone(raw, "from", region="US" if not raw.strip().startswith("+") else None)
    except FieldError:
        return None


def _reply(engine: Engine, session: Session, kind: str, item: dict[str, Any], key: str,
           at: dt.datetime) -> tuple[Recorded, str, str | None]:
    """Record a reply; returns the outcome, its type, and the number to answer HELP to."""
    sender = _sender(kind, item["from"])
    column = Customer.phone if kind == "sms" else Customer.email
    customer = session.scalars(select(Customer).where(column == sender).limit(1)).first() if sender else None
    last = None
    if customer is not None:
        last = session.scalars(
            select(Message).where(Message.customer_id == customer.id, Message.channel == kind, Message.state == "sent")
            .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1)
        ).first()
    word = keyword(item["text"] or "")
    base = {"message_id": last.id if last else None, "customer_id": customer.id if customer else None, "channel": kind}
    if kind == "sms" and word in STOP_WORDS:
        outcome = record(session, Event(key, "opted_out", "inbound", at, detail=f"keyword {word}", **base), engine.settings)
        if outcome.new and customer is None and sender is not None:
            suppress(session, "sms", sender, "stop", "inbound: STOP")  # a number we do not know: never text it
        return outcome, "opted_out", None
    if kind == "sms" and word in HELP_WORDS:
        outcome = record(session, Event(key, "help", "inbound", at, detail=f"keyword {word}", **base), engine.settings)
        return outcome, "help", sender if outcome.new and sender else None
    data = {"text": (item["text"] or "")[:500]}
    return record(session, Event(key, "replied", "inbound", at, data=data, **base), engine.settings), "replied", None


def _answer_help(engine: Engine, number: str, key: str) -> None:
    text = engine.settings["feedback"]["sms_help_text"]
    reference = "help-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    with channel_from_url(engine.settings["channels"]["sms"]) as channel:
        outcome = channel.send(Outbound(message_id=reference, to=number, content=text))
    log.info("HELP answered (%s): %s", reference, outcome.status)


# --------------------------------------------------------------------------- DSN and ARF reports


def read_reports(engine: Engine, folder: str | Path) -> InboundResult:
    """Record the bounces (DSN, RFC 3464) and complaints (ARF, RFC 5965) in a maildir; each
    report is marked seen when read, and recorded once even if read again."""
    box = mailbox.Maildir(str(folder), factory=None, create=False)
    result = InboundResult()
    for key in list(box.keys()):
        stored = box.get_message(key)
        if "S" in stored.get_flags():
            continue
        report = email.message_from_bytes(stored.as_bytes(), policy=email.policy.default)
        for event in parse_report(report):
            with engine.db.session() as session:
                message = message_for_ref(session, event.pop("ref"))
                outcome = None
                if message is not None:
                    outcome = record(session, Event(message_id=message.id, channel="email", source="dsn", **event), engine.settings)
                result.add(event["type"], outcome)
        stored.set_subdir("cur")
        stored.add_flag("S")
        box[key] = stored
    return result


def parse_report(report: EmailMessage) -> list[dict[str, Any]]:
    """Events of one DSN or ARF report: ``{key, type, occurred_at, permanent, detail, ref}``."""
    if report.get_content_type() != "multipart/report":
        return []
    report_type = report.get_param("report-type", "").lower()
    original = _original_message_id(report)
    own_id = report.get("Message-ID") or hashlib.sha256(report.as_bytes()).hexdigest()
    at = _date(report)
    if report_type == "feedback-report":
        return [{"key": f"arf:{own_id}"[:200], "type": "complained", "occurred_at": at, "permanent": True,
                 "detail": "complaint (ARF)", "ref": original}]
    if report_type != "delivery-status":
        return []
    events = []
    for number, recipient in enumerate(_recipients(report)):
        action = str(recipient.get("Action", "")).strip().lower()
        status = str(recipient.get("Status", "")).strip()
        if action != "failed":  # delayed: the mail usually arrives later; delivered, relayed, expanded: fine
            continue
        # 5.x.x is permanent, but 5.7.x is a policy or reputation block, not a dead mailbox: soft.
        permanent = status.startswith("5.") and not status.startswith("5.7.")
        diagnostic = redact(str(recipient.get("Diagnostic-Code", "")))
        detail = " ".join(filter(None, (f"{'hard' if permanent else 'soft'} bounce", status, diagnostic)))
        events.append({"key": f"dsn:{own_id}:{number}"[:200], "type": "bounced", "occurred_at": at, "permanent": permanent,
                       "detail": detail, "ref": original})
    return events


def _recipients(report: EmailMessage) -> list[Any]:
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            return list(blocks[1:]) if isinstance(blocks, list) else []
    return []


def _original_message_id(report: EmailMessage) -> str | None:
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            headers = email.message_from_string(part.get_content(), policy=email.policy.default)
            return headers.get("Message-ID")
        if kind == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) else inner
            return inner.get("Message-ID") if inner is not None else None
    return None


def _date(report: EmailMessage) -> dt.datetime:
    try:
        parsed = report["Date"].datetime if report["Date"] else None
    except (TypeError, ValueError, AttributeError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return utcnow()
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)

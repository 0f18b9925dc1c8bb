"""A hard bounce that arrives after the message went out (a DSN in the bounce maildir, a
provider's bounce or failed callback) sends the communication by its fallback channel
(``fallback = {email = "print"}``: a statement whose e-mail bounced goes by post), as a
synchronous 5xx at send time already does (``ccm.runs.deliver``).

The bounced message stays ``sent``, with its bounce recorded; the fallback is a message of
its own in the same run (purpose ``<purpose>:fallback``, outside the run's reconciliation
of one statement per record), idempotency key ``<original key>:fallback``, so a bounce
reported twice, or by both a DSN and a callback, makes one. It is written ``pending`` and
a completed run becomes ``waiting``: the scheduler's retry sweeper sends it, or
``ccm runs resume RUN``. A fallback never falls back again.
"""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ccm.models import Communication, Message, MessageState, Run, RunState, utcnow
from ccm.runs import outbox
from ccm.runs.gate import fallback_channel
from ccm.runs.policy import suppressions_for

log = logging.getLogger(__name__)

SUFFIX = ":fallback"


def fallback_after_bounce(session: Session, message_id: int) -> int | None:
    """Write the fallback message of a message that bounced for good; its id, or None
    (no fallback for that channel, not reachable that way, made already, or the run was
    cancelled)."""
    message = session.get(Message, message_id)
    if message is None or message.state != "sent" or message.purpose.endswith(SUFFIX):
        return None
    run = session.get(Run, message.run_id)
    if run is None or run.state == RunState.CANCELLED:
        return None
    communication = session.get(Communication, run.communication_id)
    candidates = tuple((communication.config or {}).get("fallback", {}).values())
    target = fallback_channel(communication, message, suppressed=suppressions_for(session, [message.customer], candidates))
    if not target or target == message.channel:
        return None
    fallback_id = _insert(session, message, target)
    if fallback_id is None:
        return None  # made by an earlier report of this bounce
    outbox.reopen(session, run.id, RunState.WAITING, when=(RunState.COMPLETED, RunState.UNDELIVERED), finished_at=None,
                  error=f"a {target} fallback waits (message {fallback_id}, after a hard bounce of message {message.id}): "
                        f"the scheduler's retry sweeper sends it, or ccm runs resume {run.id}")
    log.info("message %s: hard bounce, fallback to %s is message %s", message.id, target, fallback_id)
    return fallback_id


def _insert(session: Session, message: Message, channel: str) -> int | None:
    now = utcnow()
    row = {
        "run_id": message.run_id, "customer_id": message.customer_id, "feed_record_id": message.feed_record_id,
        "channel": channel, "purpose": message.purpose + SUFFIX, "idempotency_key": _key(message),
        "state": MessageState.PENDING, "reason": f"fallback to {channel}: {message.channel} hard bounce of message {message.id}",
        "fallback_from": message.channel, "fallback_why": "hard bounce",
        "attempts": 0, "template_versions": {}, "decisions": dict(message.decisions or {}), "links": [],
        "data": dict(message.data or {}), "created_at": now, "updated_at": now,
    }
    added = outbox.add_messages(session, [row])
    return added[0] if added else None


def _key(message: Message) -> str:
    """One fallback per message: its key and the suffix, or (a key near the column's 200
    characters) the message's id."""
    key = message.idempotency_key + SUFFIX
    return key if len(key) <= 200 else f"fallback:{message.id}"

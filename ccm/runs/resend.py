"""Sending a statement again, for customer service (``/console/customers/<id>``).

The statement is sent once more to the customer by the channel its communication would
choose for them now (e-mail, post or their inbox on the website; a statement reaches nobody
by SMS alone, nor by a webhook to another system), as a
message of its own in the statement's run: purpose ``<purpose>:resend`` (outside the run's
reconciliation of one statement per record, like a fallback), idempotency key
``<original key>:resend:<n>``, the same billing record and the run's pinned template
versions, so the document is made from the same data and the same templates as the one in
the archive (and archived again as that message's). It is written through the outbox and
delivered at once by this process, like ``ccm runs resume``; a run that is running right
now sends it itself, a paused run holds it until it is resumed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from ccm.models import ArchivedDocument, Communication, Customer, Message, MessageState, Run, RunState, utcnow
from ccm.runs import outbox
from ccm.runs.eligibility import Eligibility
from ccm.runs.executor import execute
from ccm.wiring import Engine

log = logging.getLogger(__name__)

SUFFIX = ":resend"
STATEMENT_CHANNELS = ("email", "print", "inbox")
FINISHED = (RunState.COMPLETED, RunState.UNDELIVERED, RunState.WAITING, RunState.INTERRUPTED, RunState.FAILED)


class ResendError(ValueError):
    """The message is no statement that can be sent again; the text says why."""


@dataclass(frozen=True)
class Resent:
    message_id: int  # the new message
    original_id: int
    channel: str
    state: str  # of the new message once this call returns: sent, pending (held by a paused or running run), ...


def resend_statement(engine: Engine, message_id: int, actor: str) -> Resent:
    """Send the archived statement of ``message_id`` again; ``actor`` is recorded in the
    message's reason and data (a member of staff's user name, never a customer's data)."""
    with engine.db.session() as session:
        original = session.get(Message, message_id)
        if original is None:
            raise ResendError(f"no such message: {message_id}")
        if session.scalar(select(ArchivedDocument.id).where(ArchivedDocument.message_id == message_id)) is None:
            raise ResendError(f"message {message_id} has no archived statement to send again")
        customer = session.get(Customer, original.customer_id)
        if customer is None or customer.erased_at is not None:
            raise ResendError(f"message {message_id} belongs to an erased customer")
        run = session.get(Run, original.run_id)
        if run.state == RunState.CANCELLED:
            raise ResendError(f"run {run.id} was cancelled; its statements are not sent again")
        communication = session.get(Communication, run.communication_id)
        choice = Eligibility(engine, session, communication, run_id=run.id).choose([customer])[customer.id]
        if choice.channel not in STATEMENT_CHANNELS:
            raise ResendError(f"the statement cannot reach this customer by e-mail, post or the inbox now ({choice.reason or 'SMS only'})")
        base = original.idempotency_key.split(SUFFIX, 1)[0]
        earlier = session.scalar(select(func.count()).where(Message.idempotency_key.like(f"{base}{SUFFIX}:%"))) or 0
        now = utcnow()
        purpose = original.purpose.split(":", 1)[0] + SUFFIX
        added = outbox.add_messages(session, [dict(
            run_id=run.id, customer_id=customer.id, feed_record_id=original.feed_record_id, channel=choice.channel,
            purpose=purpose, idempotency_key=f"{base}{SUFFIX}:{earlier + 1}"[:200], state=MessageState.PENDING,
            reason=f"sent again (message {original.id}) by {actor}"[:500], attempts=0, template_versions={},
            decisions=dict(original.decisions or {}), links=[], data={"resend_of": original.id, "by": actor},
            created_at=now, updated_at=now,
        )])
        if not added:
            raise ResendError(f"message {message_id} is being sent again already")
        new_id, state = added[0], run.state
        reopened = outbox.reopen(session, run.id, RunState.WAITING, when=FINISHED, finished_at=None,
                                 error=f"message {added[0]} is sent again: ccm runs resume {run.id} if it waits")
    log.info("message %s: sent again as message %s by %s", message_id, new_id, actor)
    if reopened or state == RunState.PLANNED:
        execute(engine, run.id, workers=1, progress=False, executor="local")
    with engine.db.reader() as session:
        message = session.get(Message, new_id)
        return Resent(new_id, message_id, message.channel, message.state)

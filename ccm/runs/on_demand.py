"""On-demand communications: one communication made for one customer now, and sent if
asked (a duplicate statement for a caller, a letter, a confirmation); what enterprise CCM
calls interactive or on-demand communication.

Each request becomes one message of the communication's on-demand run of the day (cycle
``ondemand-YYYY-MM-DD``, UTC), written through the outbox like a triggered message: the
content decisions are made and traced as in a batch (``decide_run``), the run's pinned
template versions render it with the batch's ``Composer``, its PDF is archived (so the
service desk sees it in the customer's history and it can be reprinted), and the outcome is
recorded as a worker records one. The message is written claimed by this process, so no
worker takes it meanwhile.

Sending takes the channel the communication's policy chooses for the customer now
(consent, address, suppressions, the frequency cap of marketing); a message that can reach
nobody is recorded suppressed and nothing is rendered. A marketing message asked for during
the customer's quiet hours waits for their end (deferred, sent by the retry sweeper); a
service message was asked for now and goes now. Every message counts against its channel's
limits (``[limits]``, shared with the batch workers): over a short window the request
waits, over a daily one the message is deferred until the channel allows it. A message only rendered (the caller
names the form: ``html`` as e-mail, ``pdf`` as the printed document, ``sms``) is recorded
suppressed with the reason "rendered on demand, not sent". A transient failure waits for
its retry (the retry sweeper takes up on-demand runs like triggered ones); a permanent one
takes the communication's fallback channel, delivered by the sweeper, or is dead.

``key`` makes a request idempotent: a second request with the same key returns the first
message without sending again; the same key for another customer or with another
``fingerprint`` (a hash of the request) is an ``OnDemandConflict``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from channels import channel_from_url
from ccm.authoring import effective_versions, load_pinned, sync_library
from ccm.delivery_settings import QuietHours
from ccm.communications import ensure_built_in, get_communication
from ccm.decisions import decide_run
from ccm.models import ArchivedDocument, Communication, Customer, FeedRecord, Message, MessageState, Run, RunState, utcnow
from ccm.runs import archive, gate, outbox
from ccm.runs.compose import Composed, Composer
from ccm.runs.deliver import print_batch_of
from ccm.runs.eligibility import Eligibility
from ccm.runs.outbox import worker_id
from ccm.runs.policy import ADDRESSED, Choice, suppressions_for
from ccm.runs.ratelimit import ChannelLimits
from ccm.runs.retry import RetryPolicy
from ccm.runs.sending import send_one
from ccm.wiring import Engine
from documents import TemplateProblem

log = logging.getLogger(__name__)

CYCLE_PREFIX = "ondemand-"
FORMATS = {"html": "email", "pdf": "print", "sms": "sms"}  # what a caller asks to see -> the channel it is made for
STATEMENT_KINDS = ("statement", "bill")
PURPOSE_OF_KIND = {"statement": "statement", "bill": "statement", "marketing": "campaign", "reminder": "reminder"}
NOT_SENT = "rendered on demand, not sent"
OPEN = (MessageState.PENDING, MessageState.CLAIMED, MessageState.FAILED, MessageState.DEFERRED)
KEPT_COMPOSERS = 8


class OnDemandError(ValueError):
    """The communication cannot be made for this customer (the text says why)."""


class OnDemandConflict(ValueError):
    """The key was used before for another customer or with other content."""


@dataclass(frozen=True)
class Rendered:
    """The content as made for its channel."""

    channel: str
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    sms: str | None = None
    pdf: bytes | None = None
    pages: int | None = None


@dataclass(frozen=True)
class OnDemand:
    message_id: int
    run_id: int
    communication: str
    channel: str
    state: str  # sent, failed (retried later), dead, suppressed (not sent: by policy, or only rendered), pending (run paused)
    reason: str | None
    duplicate: bool  # an earlier request with the same key made it; nothing was done now
    archived: bool
    rendered: Rendered | None = None


def on_demand(engine: Engine, communication: str, external_id: str, *, actor: str, send: bool = False,
              form: str | None = None, period: str | None = None, data: dict[str, Any] | None = None,
              key: str | None = None, fingerprint: str | None = None) -> OnDemand:
    """Make ``communication`` for the customer now and send it when ``send`` (else render it
    in ``form``: html, pdf or sms; by default the document, else the e-mail). ``period``
    (YYYY-MM) picks the statement of a statement or bill (default: the latest); ``data``
    reaches the templates as ``event``. ``actor`` (a member of staff or an API account,
    never a customer's data) is recorded with the message. LookupError names an unknown
    communication or customer."""
    identity = worker_id()
    with engine.db.session() as session:
        ensure_built_in(session)
        comm = get_communication(session, communication)
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id)
                                  .options(selectinload(Customer.consents)))
        if customer is None or customer.erased_at is not None:
            raise LookupError(f"no such customer: {external_id}")
        unique = _message_key(comm.name, key)
        existing = session.scalar(select(Message).where(Message.idempotency_key == unique))
        if existing is not None:
            return _duplicate(session, existing, customer, comm.name, fingerprint)
        record = _statement_record(session, comm, customer, period)
        run = _run_of_the_day(engine, session, comm)
        choice = _channel(engine, session, comm, customer, run, send, form)
        now = utcnow()
        paused = run.state == RunState.PAUSED
        if run.state == RunState.CANCELLED:
            choice = Choice(None, f"on-demand run {run.id} was cancelled", suppressed=True)
        state = MessageState.SUPPRESSED if choice.suppressed else MessageState.PENDING if paused else MessageState.CLAIMED
        lease = dt.timedelta(seconds=engine.settings["ccm"]["lease_seconds"])
        added = outbox.add_messages(session, [dict(
            run_id=run.id, customer_id=customer.id, feed_record_id=record.id if record else None,
            channel=choice.channel or "none", purpose=PURPOSE_OF_KIND.get(comm.kind, "event"), idempotency_key=unique,
            state=state, reason=choice.reason if choice.suppressed else None, attempts=0,
            claimed_by=identity if state == MessageState.CLAIMED else None,
            lease_until=now + lease if state == MessageState.CLAIMED else None,
            template_versions={}, decisions={}, links=[],
            data={"event": dict(data or {}), "on_demand": {"by": actor[:100], "send": send}, "request_sha256": fingerprint},
            created_at=now, updated_at=now,
        )])
        if not added:  # the same key at the same moment through another request
            session.rollback()
            existing = session.scalar(select(Message).where(Message.idempotency_key == unique))
            return _duplicate(session, existing, customer, comm.name, fingerprint)
        message_id = added[0]
        outbox.set_run(session, run.id, records_in=Run.records_in + 1)
        if state == MessageState.CLAIMED:
            decide_run(session, run.id)  # the content decisions and their trace, as a batch makes them
        run_id, name = run.id, comm.name
    log.info("on-demand message %s of %s: %s", message_id, name, "to send" if send else "to render")
    if state != MessageState.CLAIMED:
        _settle(engine, run_id)
        return OnDemand(message_id, run_id, name, choice.channel or "none", "suppressed" if choice.suppressed else "pending",
                        choice.reason if choice.suppressed else f"on-demand run {run_id} is paused", False, False)
    return _make(engine, identity, message_id, send, actor)


def _message_key(communication: str, key: str | None) -> str:
    if key is None:
        return f"{communication}:on-demand:{uuid.uuid4().hex}"
    return f"{communication}:on-demand:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}"


def _duplicate(session: Any, existing: Message, customer: Customer, communication: str, fingerprint: str | None) -> OnDemand:
    if existing.customer_id != customer.id:
        raise OnDemandConflict("this key was used before for another customer")
    before = (existing.data or {}).get("request_sha256")
    if fingerprint and before and before != fingerprint:
        raise OnDemandConflict("this key was used before with other content")
    archived = session.scalar(select(func.count()).where(ArchivedDocument.message_id == existing.id)) > 0
    return OnDemand(existing.id, existing.run_id, communication, existing.channel, existing.state, existing.reason, True, archived)


def _statement_record(session: Any, comm: Communication, customer: Customer, period: str | None) -> FeedRecord | None:
    """The billing record a statement or bill is made from: the period's, or the latest."""
    if comm.kind not in STATEMENT_KINDS:
        return None
    query = select(FeedRecord).where(FeedRecord.customer_id == customer.id)
    if period:
        query = query.where(FeedRecord.period == period)
    record = session.scalar(query.order_by(FeedRecord.period.desc(), FeedRecord.id.desc()).limit(1))
    if record is None:
        raise OnDemandError(f"customer {customer.external_id} has no statement" + (f" for {period}" if period else ""))
    return record


def _run_of_the_day(engine: Engine, session: Any, comm: Communication) -> Run:
    now = utcnow()
    cycle = f"{CYCLE_PREFIX}{now:%Y-%m-%d}"
    run = session.scalar(select(Run).where(Run.communication_id == comm.id, Run.cycle == cycle))
    if run is None:  # the day's first: the library as it is now is what the day's on-demand messages use
        sync_library(session, engine.templates_dir)
        outbox.open_run(session, communication_id=comm.id, cycle=cycle, state=RunState.COMPLETED, records_in=0,
                        template_versions=effective_versions(session), options={"triggered": True, "on_demand": True},
                        created_at=now, started_at=now, finished_at=now)
        run = session.scalar(select(Run).where(Run.communication_id == comm.id, Run.cycle == cycle))
    return run


def _channel(engine: Engine, session: Any, comm: Communication, customer: Customer, run: Run, send: bool,
             form: str | None) -> Choice:
    """Sending: the policy's choice for the customer now. Rendering: the channel of the form
    asked (which the communication must have)."""
    config = comm.config or {}
    if send:
        return Eligibility(engine, session, comm, run_id=run.id).choose([customer])[customer.id]
    form = form or ("pdf" if config.get("document") else "html")
    if form not in FORMATS:
        raise OnDemandError(f"no such form: {form} (html, pdf or sms)")
    channel = FORMATS[form]
    purpose = PURPOSE_OF_KIND.get(comm.kind, "event")
    has = {"print": bool(config.get("document")), "email": bool(config.get("email")),
           "sms": (purpose if purpose != "statement" else "statement_ready") in (config.get("sms") or {})}
    if not has[channel]:
        raise OnDemandError(f"{comm.name} has no {form} form")
    return Choice(channel, NOT_SENT)


# --------------------------------------------------------------------------- making and sending


def _make(engine: Engine, identity: str, message_id: int, send: bool, actor: str) -> OnDemand:
    with engine.db.session() as session:
        message = session.scalars(select(Message).where(Message.id == message_id).options(
            selectinload(Message.customer).selectinload(Customer.consents), selectinload(Message.feed_record))).one()
        run = session.get(Run, message.run_id)
        comm = session.get(Communication, run.communication_id)
        composer, lock = _composer(engine, session, run, comm)
        suppressed = suppressions_for(session, [message.customer], ADDRESSED) if send else {}
        session.expunge_all()
    until = _quiet_until(engine, comm, message) if send else None
    if until is not None:  # the sweeper sends it when they end, as it sends a batch's
        quiet = engine.settings["delivery"]["quiet_hours"]
        return _finish(engine, identity, message, comm, {"state": "deferred", "next_attempt_at": until,
                                                         "reason": f"quiet hours {quiet} in the customer's time zone"}, None, None)
    later = _channel_limits(engine).acquire(message.channel) if send else None
    if later is not None:  # the channel's daily limit ([limits]) is used up: sent when it allows, by the sweeper
        return _finish(engine, identity, message, comm, {"state": "deferred", "next_attempt_at": later,
                                                         "reason": f"{message.channel} rate limit reached"}, None, None)
    try:
        with lock:  # one renderer per run: its fonts and stylesheets are not shared between threads
            composed = composer.compose(message)
    except (TemplateProblem, ValueError) as exc:
        return _finish(engine, identity, message, comm, {"state": "dead", "reason": f"cannot compose: {exc}",
                                                         "attempts": message.attempts + 1}, None, None)
    archived = None
    if composed.document is not None and engine.settings["archive"]["enabled"]:
        stored = archive.store(archive.archive_root(engine.var_dir), communication=comm.name, cycle=run.cycle,
                               account=message.feed_record.account if message.feed_record else None,
                               file_id=composed.outbound.message_id, data=composed.document, pages=composed.pages or 0)
        archived = archive.index_entry(message, run, comm.name, stored, bool(engine.settings["pdf"]["archive"]))
    values: dict[str, Any] = {"template_versions": composed.templates_used, "links": composed.links,
                              "artifact_sha256": composed.artifact_sha256, "pages": composed.pages}
    if composed.decisions is not None:
        values["decisions"] = composed.decisions
    if not send:
        values.update(state="suppressed", reason=f"{NOT_SENT} ({actor})"[:500])
    else:
        values.update(_send(engine, message, comm, composed, suppressed))
    return _finish(engine, identity, message, comm, values, archived, composed)


def _quiet_until(engine: Engine, comm: Communication, message: Message) -> dt.datetime | None:
    """When the customer's quiet hours end, if a marketing message would reach them during
    them. Only marketing waits: a service message (a duplicate statement, a confirmation)
    was asked for now, by the customer or someone helping them, and goes now."""
    if comm.kind != "marketing" or gate.bypasses_quiet_hours(comm, message):
        return None
    return QuietHours(engine.settings["delivery"]["quiet_hours"]).ends(utcnow(), message.customer.timezone)


def _send(engine: Engine, message: Message, comm: Communication, composed: Composed,
          suppressed: dict[tuple[str, str], str]) -> dict[str, Any]:
    """The outcome of one send, as a worker records it."""
    channel = channel_from_url(engine.settings["channels"][message.channel])
    batch_id = f"run{message.run_id}-{message.id:09d}"
    try:
        if message.channel == "print":
            channel.open_batch(batch_id)
        result = send_one(channel, composed.outbound, message.id)
        if message.channel == "print":
            channel.close_batch()
    finally:
        channel.close()
    attempts = message.attempts + 1
    retry = RetryPolicy.from_settings(engine.settings)
    if result.status == "sent":
        return {"state": "sent", "attempts": attempts, "provider_id": result.provider_id, "sent_at": utcnow(),
                "batch_id": print_batch_of(result, batch_id) if message.channel == "print" else None}
    if result.status == "transient" and not retry.gives_up(attempts):
        log.warning("on-demand message %s: transient failure, retried later: %s", message.id, result.detail)
        return {"state": "failed", "reason": result.detail, "attempts": attempts, "next_attempt_at": utcnow() + retry.backoff(attempts, asked=result.retry_after)}
    why = "permanent failure" if result.status == "permanent" else "retries exhausted"
    failure = f"{why}: {result.detail}"
    fallback = gate.fallback_channel(comm, message, why, suppressed)
    if fallback:  # pending on the fallback channel: the retry sweeper delivers it
        return {"state": "pending", "channel": fallback, "reason": f"rerouted to {fallback}: {message.channel} failed ({failure})",
                "attempts": 0, "fallback_from": message.channel, "fallback_why": why}
    return {"state": "dead", "reason": failure, "attempts": attempts}


def _finish(engine: Engine, identity: str, message: Message, comm: Communication, values: dict[str, Any],
            archived: dict | None, composed: Composed | None) -> OnDemand:
    recorded = outbox.record_outcomes(engine, identity, [(message.id, values, archived)])
    if message.id not in recorded:  # the lease ended meanwhile and a worker took it: it reports the outcome
        log.error("on-demand message %s: claim lost before its outcome was recorded", message.id)
    _settle(engine, message.run_id)
    return OnDemand(message.id, message.run_id, comm.name, values.get("channel", message.channel), values["state"],
                    values.get("reason"), False, archived is not None, _rendered(message.channel, composed))


def _rendered(channel: str, composed: Composed | None) -> Rendered | None:
    if composed is None:
        return None
    content = composed.outbound.content
    if channel == "email":
        html, text = content.get_body(("html",)), content.get_body(("plain",))
        return Rendered(channel, subject=str(content["Subject"] or ""), html=html.get_content() if html else None,
                        text=text.get_content() if text else None, pdf=composed.document, pages=composed.pages)
    if channel == "sms":
        return Rendered(channel, sms=content)
    return Rendered(channel, pdf=composed.document, pages=composed.pages)


def _settle(engine: Engine, run_id: int) -> None:
    """The on-demand run's state from its messages: waiting while some are open (the sweeper
    takes it up), undelivered with dead ones, else completed. A paused or cancelled run stays so."""
    with engine.db.session() as session:
        counts = dict(session.execute(select(Message.state, func.count()).where(Message.run_id == run_id)
                                      .group_by(Message.state)).all())
        if any(counts.get(state) for state in OPEN):
            state = RunState.WAITING
        else:
            state = RunState.UNDELIVERED if counts.get(MessageState.DEAD) else RunState.COMPLETED
        outbox.set_run(session, run_id, Run.state.in_((RunState.COMPLETED, RunState.WAITING, RunState.UNDELIVERED)),
                       state=state, finished_at=None if state == RunState.WAITING else utcnow())


_limits: dict[int, tuple[dict, ChannelLimits]] = {}


def _channel_limits(engine: Engine) -> ChannelLimits:
    """The channels' limits of this engine, made once (another engine with the same id gets
    its own)."""
    with _limits_lock:
        kept = _limits.get(id(engine))
        if kept is None or kept[0] is not engine.settings:
            kept = _limits[id(engine)] = (engine.settings, ChannelLimits(engine.settings, engine.db))
        return kept[1]


_limits_lock = threading.Lock()


# --------------------------------------------------------------------------- composers kept


_composers: dict[tuple[int, int], tuple[Composer, threading.Lock]] = {}
_composers_lock = threading.Lock()


def _composer(engine: Engine, session: Any, run: Run, comm: Communication) -> tuple[Composer, threading.Lock]:
    """The run's composer, kept between requests (templates loaded and the renderer set up
    once); a changed communication, or another engine with the same id, gets a new one."""
    key = (id(engine), run.id)
    with _composers_lock:
        kept = _composers.get(key)
        if kept is not None and kept[0].settings is engine.settings and kept[0].config == comm.config:
            return kept
    pinned = load_pinned(session, run.template_versions)
    session.expunge(comm)
    made = (Composer(engine.settings, pinned, comm, run.created_at.date()), threading.Lock())
    with _composers_lock:
        while len(_composers) >= KEPT_COMPOSERS:
            _composers.pop(next(iter(_composers)))
        _composers[key] = made
    return made

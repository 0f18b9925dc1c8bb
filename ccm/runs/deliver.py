"""Delivering a run: workers claim chunks of the outbox with a lease, compose, send and
record every outcome.

Crash safety comes from the outbox, not from a cursor: a message is ``claimed`` by one
worker (``host:pid``) until its lease ends; a worker that dies leaves claims that are
taken again when the lease ends, or at once by ``ccm runs resume`` when the process is
gone. A message's outcome is written only after its send, in one transaction per few
messages (``RECORD_BATCH``, or sooner when the oldest waited ``RECORD_SECONDS``), each
guarded by its claim (a message whose claim was taken over is neither sent nor recorded
twice; the claims are in ``ccm.runs.outbox``). A channel with several sessions (SMTP) sends up to that many messages at once,
from as many sender threads, while the worker composes the next ones.

So a worker killed at any moment loses nothing, and re-sends on resume only messages it
had in flight: sent, or being sent, with no outcome written yet. The worker never has
more than ``RECORD_BATCH`` of those. The file channels are idempotent on the message's
id (no duplicate at all); SMTP retries reuse the Message-ID, so receivers can drop them.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from channels import Channel, DeliveryResult, channel_from_url
from ccm import outbound
from ccm.wiring import Engine
from ccm.models import Communication, Customer, Message, Run, RunState, utcnow
from ccm.runs import archive, gate, outbox
from ccm.runs.compose import Composed, Composer
from ccm.delivery_settings import QuietHours
from ccm.runs.caps import last_marketing, over_cap
from ccm.runs.outbox import claim, worker_id
from ccm.runs.periodic import Every
from ccm.runs.policy import ADDRESSED, suppressions_for
from ccm.runs.ratelimit import ChannelLimits
from ccm.runs.retry import RetryPolicy
from ccm.runs.sending import Senders, YoungCollections, send_one
from ccm.authoring import load_pinned
from documents import TemplateProblem

log = logging.getLogger(__name__)

RECORD_BATCH = 16  # outcomes per transaction; also the most messages in flight (sent, not recorded)
RECORD_SECONDS = 1.0  # an outcome waits at most about this long for its transaction (slow messages)


@dataclass
class WorkerStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass
class _Sending:
    """A message handed to its channel; ``result`` is the channel's answer once sent."""

    message: Message
    composed: Composed
    archived: dict | None
    batch_id: str
    result: DeliveryResult | None = None


@dataclass
class _Outcome:
    """An outcome waiting for its transaction."""

    message_id: int
    values: dict[str, Any]
    archived: dict | None = None


class Worker:
    """Delivers one run's messages from this process until none are claimable."""

    def __init__(
        self, engine: Engine, run_id: int, *, should_stop: Callable[[], bool] = lambda: False,
        on_outcome: Callable[[object], None] = lambda state: None,
    ) -> None:
        """``on_outcome(state)`` is called after each recorded outcome (progress bars)."""
        self.engine, self.run_id, self.should_stop, self.on_outcome = engine, run_id, should_stop, on_outcome
        self.identity = worker_id()
        self.channels: dict[str, Channel] = {}
        self.stats = WorkerStats()
        with engine.db.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"no such run: {run_id}")
            communication = session.get(Communication, run.communication_id)
            session.expunge(communication)
            pinned = load_pinned(session, run.template_versions)
            issue_date = run.created_at.date()
            self.run_record = run
            session.expunge(run)
        self.composer = Composer(engine.settings, pinned, communication, issue_date)
        self.communication = communication
        self.quiet_hours = QuietHours(engine.settings["delivery"]["quiet_hours"])
        gate.critical_channels(communication)  # a bad entry stops the run before anything is sent
        self.limits = ChannelLimits(engine.settings, engine.db)
        self.retry = RetryPolicy.from_settings(engine.settings)
        self.errors_in_a_row = 0
        self.held: set[int] = set()
        self.suppressed: dict[tuple[str, str], str] = {}
        self.capped: set[int] = set()  # customers at the marketing frequency cap (read with the suppressions)
        self.cap_reason: str | None = None
        self.last_marketing: dict[int, dt.datetime] = {}  # customer -> last marketing message sent
        self.renewed_at = 0.0
        self.paused_itself = False  # after too many failures in a row: give the rest of the chunk back
        self.senders: dict[str, Senders] = {}  # per channel with several sessions
        self.sent_back: queue.SimpleQueue[_Sending] = queue.SimpleQueue()  # sends done by the senders
        self.in_flight = 0  # handed to the senders, not back yet
        self.unrecorded: list[_Outcome] = []
        self.oldest_unrecorded = 0.0

    def channel(self, kind: str) -> Channel:
        if kind not in self.channels:
            self.channels[kind] = channel_from_url(self.engine.settings["channels"][kind])
        return self.channels[kind]

    def run(self) -> WorkerStats:
        chunk_size = self.engine.settings["ccm"]["chunk_size"]
        try:
            while not self.should_stop() and not self.paused_itself:
                ids = claim(self.engine, self.run_id, chunk_size, self.identity)
                if not ids:
                    break
                self.deliver_chunk(ids)
        except BaseException:
            self.release()  # whatever this worker still holds goes back at once
            raise
        finally:
            self.close_channels()
        return self.stats

    def close_channels(self) -> None:
        for senders in self.senders.values():
            senders.stop()
        self.senders.clear()
        for channel in self.channels.values():
            channel.close()
        self.channels.clear()

    def run_one_chunk(self) -> int:
        """Claim and deliver one chunk (the unit of work of a Celery task); returns its size.
        A worker serves many tasks of its run, so the per-run set-up is made once."""
        self.paused_itself = False  # a resumed run starts afresh
        try:
            ids = claim(self.engine, self.run_id, self.engine.settings["ccm"]["chunk_size"], self.identity)
            if ids:
                self.deliver_chunk(ids)
            return len(ids)
        except BaseException:
            self.release()
            raise
        finally:
            self.close_channels()

    def deliver_chunk(self, ids: list[int]) -> None:
        with lease_keeper(self.engine, self.run_id, self.identity), YoungCollections() as collector:
            self._deliver_chunk(ids, collector)

    def _deliver_chunk(self, ids: list[int], collector: YoungCollections) -> None:
        batch_id = f"run{self.run_id}-{ids[0]:09d}"
        with self.engine.db.session() as session:
            messages = list(
                session.scalars(
                    select(Message)
                    .where(Message.id.in_(ids))
                    .options(selectinload(Message.customer).selectinload(Customer.consents), selectinload(Message.feed_record))
                    .order_by(Message.id)
                )
            )
        opened: set[str] = set()
        try:
            for index, message in enumerate(messages):
                if self.should_stop() or self.paused_itself:
                    self.release([m.id for m in messages[index:]])
                    break
                if index == 0 or self.lease_due():
                    self.hold_claims(messages)
                if message.id not in self.held:
                    log.warning("message %s: claim lost before sending; another worker has it", message.id)
                    continue
                if message.channel == "print" and "print" not in opened:
                    self.channel("print").open_batch(batch_id)
                    opened.add("print")
                self.deliver(message, batch_id)
                self.collect()
                if self.unrecorded and time.monotonic() - self.oldest_unrecorded > RECORD_SECONDS:
                    self.flush()
                collector.after_message()
        finally:
            try:
                self.collect(wait_for_all=True)  # nothing of this chunk stays in flight
                self.flush()
            finally:
                for kind in opened:
                    self.channel(kind).close_batch()

    def lease_due(self) -> bool:
        """Renew well before the lease could end: until then nobody else can take a claim."""
        return time.monotonic() - self.renewed_at > self.engine.settings["ccm"]["lease_seconds"] / 3

    def hold_claims(self, messages: list[Message]) -> None:
        """Extend the lease of the chunk's messages still claimed (in flight ones included)
        in one statement, note which claims this worker still holds (a claim taken over
        after its lease ended, or a cancelled run, means: skip it), and read their
        suppressions for the send-time check."""
        lease = dt.timedelta(seconds=self.engine.settings["ccm"]["lease_seconds"])
        self.renewed_at = time.monotonic()
        with self.engine.db.session() as session:
            self.held = outbox.hold(session, [m.id for m in messages], self.identity, lease)
            self.suppressed = suppressions_for(session, [m.customer for m in messages], ADDRESSED)  # fallbacks read them too
            if self.communication.kind == "marketing":  # the frequency cap and the customer's own, again at send time
                customer_ids = [m.customer_id for m in messages]
                cap, self.capped = over_cap(self.engine.settings, session, customer_ids)
                self.cap_reason = cap.reason if cap else None
                self.last_marketing = last_marketing(session, customer_ids)

    def deliver(self, message: Message, batch_id: str) -> None:
        verdict = gate.check(self.suppressed, message, self.communication, self.quiet_hours, utcnow(),
                             capped=self.capped, cap_reason=self.cap_reason, last_marketing=self.last_marketing.get(message.customer_id))
        if verdict.action != "send":
            self.hold(message, verdict)
            return
        try:
            composed = self.composer.compose(message)
        except (TemplateProblem, ValueError) as exc:
            # One customer's bad data fails that message with the reason; the run goes on.
            log.warning("message %s: cannot compose: %s", message.id, exc)
            self.record(message.id, state="dead", reason=f"cannot compose: {exc}", attempts=message.attempts + 1)
            return
        except Exception as exc:  # a bug must not stop the run; its text may hold data, so the type only
            log.error("message %s: cannot compose: %s", message.id, type(exc).__name__, exc_info=True)
            reason = f"cannot compose: internal error ({type(exc).__name__})"
            self.record(message.id, state="dead", reason=reason, attempts=message.attempts + 1)
            return
        later = self.limits.acquire(message.channel, self.should_stop)
        if later is not None:
            self.record(message.id, state="deferred", reason=f"{message.channel} rate limit reached", next_attempt_at=later)
            return
        try:
            archived = self.archive(message, composed)  # kept before it goes out: no send without its archive
        except OSError as exc:
            attempts = message.attempts + 1
            reason = f"cannot archive the document ({exc.strerror or type(exc).__name__}); not sent"
            log.error("message %s: %s", message.id, reason)
            self.record(message.id, state="failed", reason=reason, attempts=attempts, next_attempt_at=utcnow() + self.retry.backoff(attempts))
            return
        self.send(message, composed, archived, batch_id)

    def send(self, message: Message, composed: Composed, archived: dict | None, batch_id: str) -> None:
        """Hand the message to its channel: on one of its sessions in the background when
        it has several (SMTP), else right here. Before any send, fewer than RECORD_BATCH
        messages are in flight (sent or being sent, outcome not written)."""
        channel = self.channel(message.channel)
        at_once = min(channel.sessions, RECORD_BATCH)
        if at_once > 1:
            self.collect(wait_until=at_once - 1)  # no send waits for a free session
            if self.paused_itself or self.should_stop():  # a send that came back meanwhile paused the run
                self.release([message.id])
                return
        if len(self.unrecorded) + self.in_flight >= RECORD_BATCH:
            self.flush()
        sending = _Sending(message, composed, archived, batch_id)
        if at_once <= 1:
            sending.result = send_one(channel, composed.outbound, message.id)
            self.finish(sending)
            return
        if message.channel not in self.senders:
            self.senders[message.channel] = Senders(channel, at_once, self.sent_back)
        self.senders[message.channel].todo.put(sending)
        self.in_flight += 1

    def collect(self, *, wait_until: int | None = None, wait_for_all: bool = False) -> None:
        """Take the results of the sends that finished; first wait until no more than
        ``wait_until`` are still running (none with ``wait_for_all``)."""
        limit = 0 if wait_for_all else wait_until
        while self.in_flight:
            try:
                sending = self.sent_back.get(block=limit is not None and self.in_flight > limit)
            except queue.Empty:
                return
            self.in_flight -= 1
            self.finish(sending)

    def finish(self, sending: _Sending) -> None:
        message, composed, result = sending.message, sending.composed, sending.result
        assert result is not None
        values = {
            "template_versions": composed.templates_used,
            "links": composed.links,
            "artifact_sha256": composed.artifact_sha256,
            "pages": composed.pages,
            "batch_id": print_batch_of(result, sending.batch_id) if message.channel == "print" else None,
        }
        if composed.decisions is not None:
            values["decisions"] = composed.decisions
        self.record_result(message, result, values, sending.archived)

    def archive(self, message: Message, composed: Composed) -> dict | None:
        """Keep the document before it goes out; indexed only once it is recorded as sent."""
        if composed.document is None or not self.engine.settings["archive"]["enabled"]:
            return None
        stored = archive.store(
            archive.archive_root(self.engine.var_dir),
            communication=self.communication.name,
            cycle=self.run_record.cycle,
            account=message.feed_record.account if message.feed_record else None,
            file_id=composed.outbound.message_id,
            data=composed.document,
            pages=composed.pages or 0,
        )
        pdf_a = bool(self.engine.settings["pdf"]["archive"])
        return archive.index_entry(message, self.run_record, self.communication.name, stored, pdf_a)

    def record_result(self, message: Message, result: DeliveryResult, values: dict, archived: dict | None = None) -> None:
        attempts = message.attempts + 1
        if result.status == "sent":
            self.stats.sent += 1
            self.stats.by_channel[message.channel] = self.stats.by_channel.get(message.channel, 0) + 1
            rerouted = message.reason if (message.reason or "").startswith("rerouted") else None
            self.record(
                message.id, state="sent", reason=rerouted, attempts=attempts, provider_id=result.provider_id,
                sent_at=utcnow(), archived=archived, **values,
            )
        elif result.status == "transient" and not self.retry.gives_up(attempts):
            self.stats.failed += 1
            retry_at = utcnow() + self.retry.backoff(attempts, asked=result.retry_after)
            log.warning("message %s: transient failure (attempt %s of %s, again after %s UTC): %s", message.id, attempts,
                        self.retry.max_attempts, f"{retry_at:%H:%M:%S}", result.detail)
            self.record(message.id, state="failed", reason=result.detail, attempts=attempts, next_attempt_at=retry_at, **values)
        else:
            self.give_up(message, result, attempts, values)
        self.count_errors(result)

    def give_up(self, message: Message, result: DeliveryResult, attempts: int, values: dict) -> None:
        """The channel gave up (a permanent failure, or its retries are exhausted): the
        message takes the communication's next fallback channel when it has one (a statement
        is owed: it goes by post whatever made the e-mail give up), else it is dead."""
        why = "permanent failure" if result.status == "permanent" else "retries exhausted"
        failure = f"{why}: {result.detail}" if result.status == "permanent" else f"{why} after {attempts} attempts: {result.detail}"
        fallback = gate.fallback_channel(self.communication, message, why, self.suppressed)
        if fallback:
            tried = ",".join(filter(None, (message.fallback_from, message.channel)))
            reason = f"rerouted to {fallback}: {message.channel} failed ({failure})"
            log.warning("message %s: %s", message.id, reason)
            self.record(message.id, state="pending", channel=fallback, reason=reason, attempts=0, next_attempt_at=None,
                        fallback_from=tried[-40:], fallback_why=why, **values)
        else:
            self.stats.dead += 1
            log.warning("message %s: %s", message.id, failure)
            self.record(message.id, state="dead", reason=failure, attempts=attempts, **values)

    def count_errors(self, result: DeliveryResult) -> None:
        """Pause the run after too many delivery failures in a row (a channel is down). The
        sends already in flight on other sessions still finish (and count)."""
        self.errors_in_a_row = 0 if result.status == "sent" else self.errors_in_a_row + 1
        limit = self.engine.settings["delivery"]["pause_after_errors"]
        if limit and self.errors_in_a_row >= limit and not self.paused_itself:  # the sends in flight pause it once
            error = f"paused after {self.errors_in_a_row} delivery failures in a row; last: {result.detail}"
            log.error("run %s: %s", self.run_id, error)
            with self.engine.db.session() as session:
                if outbox.set_run(session, self.run_id, Run.state == RunState.RUNNING, state=RunState.PAUSED, error=error):
                    outbound.emit_run(session, self.run_id)  # run.needs_attention
            self.errors_in_a_row = 0
            self.paused_itself = True

    def hold(self, message: Message, verdict: gate.Verdict) -> None:
        """Act on a send-time check that said not now, not this way, or not at all."""
        log.info("message %s: %s (%s)", message.id, verdict.action, verdict.reason)
        if verdict.action == "reroute":
            tried = ",".join(filter(None, (message.fallback_from, message.channel)))
            self.record(message.id, state="pending", channel=verdict.channel, reason=verdict.reason,
                        fallback_from=tried[-40:], fallback_why="refused at send time")
        elif verdict.action == "defer":
            self.record(message.id, state="deferred", reason=verdict.reason, next_attempt_at=verdict.until)
        else:
            self.record(message.id, state="suppressed", reason=verdict.reason)

    def record(self, message_id: int, archived: dict | None = None, **values: object) -> None:
        """Note an outcome (with the archive's index entry of a sent document); it is
        written with the next batch (``flush``)."""
        if not self.unrecorded:
            self.oldest_unrecorded = time.monotonic()
        self.unrecorded.append(_Outcome(message_id, values, archived))
        if len(self.unrecorded) >= RECORD_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the noted outcomes in one transaction, each only while this worker still
        holds the claim (``outbox.record_outcomes``)."""
        outcomes, self.unrecorded = self.unrecorded, []
        if not outcomes:
            return
        held = outbox.record_outcomes(self.engine, self.identity, [(o.message_id, o.values, o.archived) for o in outcomes])
        for outcome in outcomes:
            if outcome.message_id in held:
                self.on_outcome(outcome.values.get("state"))
            else:
                log.error("message %s: claim lost before its outcome (%s) was recorded", outcome.message_id, outcome.values.get("state"))

    def release(self, ids: list[int] | None = None) -> None:
        """Give this worker's claims back (all of them, or ``ids``)."""
        outbox.release(self.engine, self.run_id, self.identity, ids)


def lease_keeper(engine: Engine, run_id: int, identity: str) -> Every:
    """Renews the lease of every claim this worker holds in the run, every third of
    ``[ccm] lease_seconds``, from a thread of its own: a worker busy with one slow message
    keeps its claims, and a worker that died loses them a lease later (30 s by default),
    when another worker (or a resume) takes them."""
    lease = dt.timedelta(seconds=engine.settings["ccm"]["lease_seconds"])
    return Every(lease.total_seconds() / 3, lambda: outbox.renew_leases(engine, run_id, identity, lease), f"lease-run{run_id}")


def print_batch_of(result: DeliveryResult, current: str) -> str:
    """The batch a printed document is really in: a re-send after a crash may have found it
    already printed in an earlier batch (provider id ``<batch>/documents/<file>``)."""
    if result.status == "sent" and result.provider_id and "/documents/" in result.provider_id:
        return result.provider_id.split("/documents/", 1)[0]
    return current

"""Delivering a run: workers claim chunks of the outbox with a lease, compose, send and
record every outcome.

Crash safety comes from the outbox, not from a cursor: a message is ``claimed`` by one
worker (``host:pid``) until its lease ends; a worker that dies leaves claims that are
taken again when the lease ends, or at once by ``ccm runs resume`` when the process is
gone. Each outcome is committed right after its send, so a crash repeats at most the one
message in flight, and the file channels are idempotent on the message's id.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import and_, delete, insert, or_, select, true, update
from sqlalchemy.orm import selectinload

from channels import Channel, DeliveryResult, channel_from_url
from ccm.engine import Engine
from ccm.models import ArchivedDocument, Communication, Customer, Message, Run, utcnow
from ccm.runs import archive, gate
from ccm.runs.compose import Composed, Composer
from ccm.runs.gate import QuietHours
from ccm.runs.policy import suppressions_for
from ccm.runs.ratelimit import ChannelLimits
from ccm.templatestore import load_pinned
from documents import TemplateProblem

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 3600


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claimable(run_id: int, now: dt.datetime, max_attempts: int):  # type: ignore[no-untyped-def]
    """Messages of the run a worker may take now."""
    return and_(
        Message.run_id == run_id,
        or_(
            Message.state == "pending",
            and_(Message.state == "failed", Message.next_attempt_at <= now, Message.attempts < max_attempts),
            and_(Message.state == "claimed", Message.lease_until < now),
            and_(Message.state == "deferred", Message.next_attempt_at <= now),
        ),
    )


def claim(engine: Engine, run_id: int, limit: int, identity: str) -> list[int]:
    """Claim up to ``limit`` messages in id order; returns their ids (empty when none left)."""
    ccm = engine.settings["ccm"]
    now = utcnow()
    with engine.db.session() as session:
        state = session.scalar(select(Run.state).where(Run.id == run_id))
        if state not in ("planned", "running"):
            return []
        ids = list(
            session.scalars(
                select(Message.id)
                .where(claimable(run_id, now, ccm["max_attempts"]))
                .order_by(Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(state="claimed", claimed_by=identity, lease_until=now + dt.timedelta(seconds=ccm["lease_seconds"]))
            )
        return ids


def backoff(attempt: int) -> dt.timedelta:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))


@dataclass
class WorkerStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


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
        self.limits = ChannelLimits(engine.settings, engine.db)
        self.errors_in_a_row = 0
        self.held: set[int] = set()
        self.suppressed: dict[tuple[str, str], str] = {}
        self.renewed_at = 0.0
        self.paused_itself = False  # after too many failures in a row: give the rest of the chunk back

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
            for channel in self.channels.values():
                channel.close()
        return self.stats

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
            for channel in self.channels.values():
                channel.close()
            self.channels.clear()

    def deliver_chunk(self, ids: list[int]) -> None:
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
                    self.hold_claims(messages[index:])
                if message.id not in self.held:
                    log.warning("message %s: claim lost before sending; another worker has it", message.id)
                    continue
                if message.channel == "print" and "print" not in opened:
                    self.channel("print").open_batch(batch_id)
                    opened.add("print")
                self.deliver(message, batch_id)
        finally:
            for kind in opened:
                self.channel(kind).close_batch()

    def lease_due(self) -> bool:
        """Renew well before the lease could end: until then nobody else can take a claim."""
        return time.monotonic() - self.renewed_at > self.engine.settings["ccm"]["lease_seconds"] / 3

    def hold_claims(self, messages: list[Message]) -> None:
        """Extend the lease of the chunk's remaining messages in one statement, note which
        claims this worker still holds (a claim taken over after its lease ended, or a
        cancelled run, means: skip it), and read their suppressions for the send-time check."""
        lease = dt.timedelta(seconds=self.engine.settings["ccm"]["lease_seconds"])
        self.renewed_at = time.monotonic()
        ids = [m.id for m in messages]
        with self.engine.db.session() as session:
            self.held = set(
                session.scalars(
                    update(Message)
                    .where(Message.id.in_(ids), Message.state == "claimed", Message.claimed_by == self.identity)
                    .values(lease_until=utcnow() + lease)
                    .returning(Message.id)
                )
            )
            self.suppressed = suppressions_for(session, [m.customer for m in messages], {m.channel for m in messages})

    def deliver(self, message: Message, batch_id: str) -> None:
        verdict = gate.check(self.suppressed, message, self.communication, self.quiet_hours, utcnow())
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
            self.record(message.id, state="failed", reason=reason, attempts=attempts, next_attempt_at=utcnow() + backoff(attempts))
            return
        try:
            result = self.channel(message.channel).send(composed.outbound)
        except Exception as exc:  # adapters must not raise; if one does, retry later like a transient failure
            log.error("message %s: channel %s raised %s", message.id, message.channel, type(exc).__name__, exc_info=True)
            result = DeliveryResult("transient", detail=f"channel error ({type(exc).__name__})")
        values = {
            "template_versions": composed.templates_used,
            "artifact_sha256": composed.artifact_sha256,
            "pages": composed.pages,
            "batch_id": _print_batch(result, batch_id) if message.channel == "print" else None,
        }
        self.record_result(message, result, values, archived)

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
        elif result.status == "transient" and attempts < self.engine.settings["ccm"]["max_attempts"]:
            self.stats.failed += 1
            log.warning("message %s: transient failure (attempt %s): %s", message.id, attempts, result.detail)
            self.record(message.id, state="failed", reason=result.detail, attempts=attempts, next_attempt_at=utcnow() + backoff(attempts), **values)
        else:
            why = "permanent" if result.status == "permanent" else f"gave up after {attempts} attempts"
            rerouted_before = (message.reason or "").startswith("rerouted")
            fallback = gate.fallback_channel(self.communication, message) if result.status == "permanent" and not rerouted_before else None
            if fallback:
                reason = f"rerouted to {fallback}: {message.channel} failed ({why}: {result.detail})"
                log.warning("message %s: %s", message.id, reason)
                self.record(message.id, state="pending", channel=fallback, reason=reason, attempts=0, **values)
            else:
                self.stats.dead += 1
                log.warning("message %s: %s failure: %s", message.id, why, result.detail)
                self.record(message.id, state="dead", reason=f"{why}: {result.detail}", attempts=attempts, **values)
        self.count_errors(result)

    def count_errors(self, result: DeliveryResult) -> None:
        """Pause the run after too many delivery failures in a row (a channel is down)."""
        self.errors_in_a_row = 0 if result.status == "sent" else self.errors_in_a_row + 1
        limit = self.engine.settings["delivery"]["pause_after_errors"]
        if limit and self.errors_in_a_row >= limit:
            error = f"paused after {self.errors_in_a_row} delivery failures in a row; last: {result.detail}"
            log.error("run %s: %s", self.run_id, error)
            with self.engine.db.session() as session:
                session.execute(update(Run).where(Run.id == self.run_id, Run.state == "running").values(state="paused", error=error))
            self.errors_in_a_row = 0
            self.paused_itself = True

    def hold(self, message: Message, verdict: gate.Verdict) -> None:
        """Act on a send-time check that said not now, not this way, or not at all."""
        log.info("message %s: %s (%s)", message.id, verdict.action, verdict.reason)
        if verdict.action == "reroute":
            self.record(message.id, state="pending", channel=verdict.channel, reason=verdict.reason)
        elif verdict.action == "defer":
            self.record(message.id, state="deferred", reason=verdict.reason, next_attempt_at=verdict.until)
        else:
            self.record(message.id, state="suppressed", reason=verdict.reason)

    def record(self, message_id: int, archived: dict | None = None, **values: object) -> None:
        """Record an outcome, only while this worker still holds the claim (with the
        archive's index entry of a sent document, in the same transaction)."""
        with self.engine.db.session() as session:
            result = session.execute(
                update(Message)
                .where(Message.id == message_id, Message.state == "claimed", Message.claimed_by == self.identity)
                .values(claimed_by=None, lease_until=None, updated_at=utcnow(), **values)
            )
            if archived and result.rowcount == 1:
                session.execute(delete(ArchivedDocument).where(ArchivedDocument.message_id == message_id))
                session.execute(insert(ArchivedDocument), [archived])
        if result.rowcount != 1:
            log.error("message %s: claim lost before its outcome (%s) was recorded", message_id, values.get("state"))
        else:
            self.on_outcome(values.get("state"))

    def release(self, ids: list[int] | None = None) -> None:
        """Give this worker's claims back (all of them, or ``ids``): pending again at once,
        or suppressed when the run was cancelled meanwhile."""
        with self.engine.db.session() as session:
            cancelled = session.scalar(select(Run.state).where(Run.id == self.run_id)) == "cancelled"
            mine = and_(Message.run_id == self.run_id, Message.state == "claimed", Message.claimed_by == self.identity)
            values = {"state": "suppressed", "reason": "run cancelled"} if cancelled else {"state": "pending"}
            session.execute(
                update(Message)
                .where(mine, Message.id.in_(ids) if ids is not None else true())
                .values(claimed_by=None, lease_until=None, updated_at=utcnow(), **values)
            )


def _print_batch(result: DeliveryResult, current: str) -> str:
    """The batch a printed document is really in: a re-send after a crash may have found it
    already printed in an earlier batch (provider id ``<batch>/documents/<file>``)."""
    if result.status == "sent" and result.provider_id and "/documents/" in result.provider_id:
        return result.provider_id.split("/documents/", 1)[0]
    return current


def release_dead_claims(engine: Engine, run_id: int) -> int:
    """Free claims held by processes of this host that no longer exist; returns how many."""
    host = socket.gethostname()
    freed = 0
    with engine.db.session() as session:
        holders = session.scalars(
            select(Message.claimed_by).where(Message.run_id == run_id, Message.state == "claimed").distinct()
        )
        for holder in list(holders):
            name, _, pid = (holder or "").rpartition(":")
            if name == host and pid.isdigit() and not _alive(int(pid)):
                result = session.execute(
                    update(Message)
                    .where(Message.run_id == run_id, Message.state == "claimed", Message.claimed_by == holder)
                    .values(state="pending", claimed_by=None, lease_until=None)
                )
                freed += result.rowcount
    return freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""What the billing desk shows of a run, read only: its progress (per channel and state,
rate, time left), the messages not sent grouped by reason with their customers, one
message with what the engine kept of it, the print files of the run, and the archive
searched by customer, account or cycle."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from channels import ChannelConfigError, channel_from_url
from ccm.models import ArchivedDocument, Communication, Customer, FeedRecord, Message, Run, utcnow
from ccm.runs.executor import DONE_STATES, load_run
from ccm.runs.outbox import observed_state
from ccm.wiring import Engine

LIVE_STATES = ("planned", "running")  # the desk keeps watching a run in these
UNSENT_STATES = ("dead", "failed", "suppressed", "deferred")
RATE_WINDOW = dt.timedelta(minutes=2)
BATCH_FOLDER = re.compile(r"^run[0-9]+-[0-9]{9}$")
PRINT_FILE = re.compile(r"^(manifest\.csv|print-stream\.pdf|stream-[0-9]{4,}\.pdf)$")


@dataclass(frozen=True)
class ChannelProgress:
    channel: str
    states: dict[str, int]
    total: int
    done: int


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    communication: str
    cycle: str
    state: str
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    channels: list[ChannelProgress]
    total: int
    done: int
    rate: float | None  # messages done per minute, lately (or over the run once it stopped)
    seconds_left: int | None

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


def run_progress(engine: Engine, run_id: int, now: dt.datetime | None = None) -> RunProgress:
    """Where a run stands; LookupError for an unknown run."""
    now = now or utcnow()
    with engine.db.reader() as session:
        run = load_run(session, run_id)
        name = session.scalar(select(Communication.name).where(Communication.id == run.communication_id)) or ""
        state = observed_state(run, engine.settings, now)
        counts: dict[str, dict[str, int]] = {}
        for channel, message_state, count in session.execute(
            select(Message.channel, Message.state, func.count()).where(Message.run_id == run_id).group_by(Message.channel, Message.state)
        ):
            counts.setdefault(channel, {})[message_state] = count
        recent = session.scalar(select(func.count()).where(
            Message.run_id == run_id, Message.sent_at.is_not(None), Message.sent_at >= now - RATE_WINDOW)) or 0
        sent = session.scalar(select(func.count()).where(Message.run_id == run_id, Message.sent_at.is_not(None))) or 0
    channels = [ChannelProgress(channel, dict(sorted(states.items())), sum(states.values()),
                                sum(n for s, n in states.items() if s in DONE_STATES)) for channel, states in sorted(counts.items())]
    total, done = sum(c.total for c in channels), sum(c.done for c in channels)
    rate = _rate(run, state, now, recent, sent)
    left = round((total - done) / rate * 60) if rate and state == "running" and total > done else None
    return RunProgress(run.id, name, run.cycle, state, run.error, run.started_at, run.finished_at, channels, total, done, rate, left)


def _rate(run: Run, state: str, now: dt.datetime, recent: int, sent: int) -> float | None:
    if state == "running" and run.started_at is not None:
        window = min(RATE_WINDOW, max(now - run.started_at, dt.timedelta(seconds=1)))
        return round(recent / (window.total_seconds() / 60), 1) if recent else None
    if run.started_at is not None and sent:
        took = (run.finished_at or now) - run.started_at
        return round(sent / max(took.total_seconds() / 60, 1 / 60), 1)
    return None


@dataclass(frozen=True)
class Unsent:
    message_id: int
    state: str
    channel: str
    reason: str
    attempts: int
    next_attempt_at: dt.datetime | None
    external_id: str
    name: str
    archived: bool


def unsent_by_reason(session: Session, run_id: int, limit: int = 1000) -> dict[tuple[str, str], list[Unsent]]:
    """The run's messages that were not sent (dead, failed, suppressed, deferred), grouped by
    state and reason, the largest groups first; at most ``limit`` messages."""
    rows = session.execute(
        select(Message.id, Message.state, Message.channel, Message.reason, Message.attempts, Message.next_attempt_at,
               Customer.external_id, Customer.name, ArchivedDocument.id)
        .join(Customer, Customer.id == Message.customer_id)
        .outerjoin(ArchivedDocument, ArchivedDocument.message_id == Message.id)
        .where(Message.run_id == run_id, Message.state.in_(UNSENT_STATES))
        .order_by(Message.state, Message.reason, Message.id)
        .limit(limit)
    )
    groups: dict[tuple[str, str], list[Unsent]] = {}
    for mid, state, channel, reason, attempts, due, external_id, name, archived in rows:
        groups.setdefault((state, reason or "unknown"), []).append(
            Unsent(mid, state, channel, reason or "unknown", attempts, due, external_id, name, archived is not None))
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


@dataclass(frozen=True)
class MessageView:
    message: Message
    customer: Customer
    account: str | None
    archived: ArchivedDocument | None
    communication: str
    cycle: str


def message_view(session: Session, message_id: int) -> MessageView:
    """One message with its customer and what the archive holds of it; LookupError if none."""
    message = session.get(Message, message_id)
    if message is None:
        raise LookupError(f"no such message: {message_id}")
    run = session.get(Run, message.run_id)
    assert run is not None
    account = session.scalar(select(FeedRecord.account).where(FeedRecord.id == message.feed_record_id)) if message.feed_record_id else None
    archived = session.scalar(select(ArchivedDocument).where(ArchivedDocument.message_id == message_id))
    name = session.scalar(select(Communication.name).where(Communication.id == run.communication_id)) or ""
    return MessageView(message, message.customer, account, archived, name, run.cycle)


@dataclass(frozen=True)
class PrintFile:
    folder: str  # a batch (run7-000000012) or the run's production folder (production-run7)
    name: str
    size: int

    @property
    def production(self) -> bool:
        return self.folder.startswith("production-")


def print_folder(engine: Engine) -> Path | None:
    """The print channel's output folder, or None when print is not configured as a folder."""
    url = engine.settings["channels"].get("print")
    if not url:
        return None
    try:
        folder = getattr(channel_from_url(url), "folder", None)
    except ChannelConfigError:
        return None
    return Path(folder) if folder else None


def print_files(engine: Engine, run_id: int) -> list[PrintFile]:
    """The run's print batches (manifest, stream) and postal production (streams, manifest)."""
    root = print_folder(engine)
    if root is None:
        return []
    with engine.db.reader() as session:
        batches = list(session.scalars(select(Message.batch_id).where(
            Message.run_id == run_id, Message.channel == "print", Message.batch_id.is_not(None)).distinct().order_by(Message.batch_id)))
    folders = [batch for batch in batches if BATCH_FOLDER.match(batch)] + [f"production-run{run_id}"]
    found = []
    for folder in folders:
        place = root / folder
        if not place.is_dir():
            continue
        for entry in sorted(place.iterdir()):
            if PRINT_FILE.match(entry.name) and entry.is_file():
                found.append(PrintFile(folder, entry.name, entry.stat().st_size))
    return found


def print_file(engine: Engine, run_id: int, folder: str, name: str) -> Path:
    """One of the run's print files, looked up among them (never a path built from the
    request); LookupError if it is not one."""
    root = print_folder(engine)
    for candidate in print_files(engine, run_id):
        if root is not None and candidate.folder == folder and candidate.name == name:
            return root / candidate.folder / candidate.name
    raise LookupError(f"run {run_id} has no print file {folder}/{name}")


@dataclass(frozen=True)
class ArchiveHit:
    message_id: int
    run_id: int
    communication: str
    cycle: str
    account: str | None
    external_id: str
    name: str
    pages: int
    created_at: dt.datetime


def search_archive(session: Session, *, customer: str | None = None, account: str | None = None, cycle: str | None = None,
                   limit: int = 100) -> list[ArchiveHit]:
    """Archived documents, newest first: ``customer`` matches an external id exactly or a
    name in part, ``account`` exactly, ``cycle`` exactly."""
    query = (select(ArchivedDocument, Message.run_id, Customer.external_id, Customer.name)
             .join(Customer, Customer.id == ArchivedDocument.customer_id)
             .join(Message, Message.id == ArchivedDocument.message_id))
    if customer:
        pattern = "%" + customer.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Customer.external_id == customer, Customer.name.ilike(pattern, escape="\\")))
    if account:
        query = query.where(ArchivedDocument.account == account)
    if cycle:
        query = query.where(ArchivedDocument.cycle == cycle)
    rows = session.execute(query.order_by(ArchivedDocument.id.desc()).limit(limit))
    return [ArchiveHit(doc.message_id, run_id, doc.communication, doc.cycle, doc.account, external_id, name, doc.pages, doc.created_at)
            for doc, run_id, external_id, name in rows]

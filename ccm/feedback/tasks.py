"""Follow-up tasks: what customer service must look at for a customer (a reply that is not
a keyword, a complaint, a statement that reached no one).

``collect_tasks`` makes them, idempotently: one task per source (``source_key``
``event:<id>`` for a reply or a complaint, ``message:<id>`` for a statement or bill that
ended ``dead``), replies and complaints read from the last event a task was made of on, so
collecting again (on every load of the queue and the dashboard) adds only what is new.
SMS keywords (STOP, HELP, ...) are recorded as ``opted_out`` and ``help``, never
``replied``, so they make no task. A task's ``summary`` names the kind and the
communication, never a message body or an address.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.orm import selectinload

from ccm.db import insert_or_ignore
from ccm.models import Communication, Customer, Message, Run, utcnow
from ccm.models.feedback import ResponseEvent
from ccm.models.staff import TASK_KINDS, FollowUpTask, TaskComment
from ccm.wiring import Engine

EVENT_KINDS = {"replied": "reply", "complained": "complaint"}
UNDELIVERABLE = ("statement", "bill")  # communication kinds whose dead messages become tasks
LIMIT = 200


class TaskError(ValueError):
    """No such task, or a change it cannot take (closed already, an empty comment)."""


@dataclass(frozen=True)
class TaskCounts:
    open: int
    by_kind: dict[str, int] = field(default_factory=dict)
    unassigned: int = 0


@dataclass(frozen=True)
class TaskRow:
    task: FollowUpTask
    external_id: str | None
    customer_name: str | None


def collect_tasks(engine: Engine) -> int:
    """Make the tasks of new replies, complaints and dead statements; returns how many."""
    now = utcnow()
    with engine.db.session() as session:
        since = session.scalar(select(func.max(FollowUpTask.event_id))) or 0
        events = session.execute(
            select(ResponseEvent.id, ResponseEvent.type, ResponseEvent.channel, ResponseEvent.communication,
                   ResponseEvent.customer_id, ResponseEvent.message_id, ResponseEvent.occurred_at)
            .where(ResponseEvent.id > since, ResponseEvent.type.in_(tuple(EVENT_KINDS)), ResponseEvent.bot.is_(False))
            .order_by(ResponseEvent.id)
        ).all()
        rows = [dict(kind=EVENT_KINDS[kind], source_key=f"event:{event_id}", customer_id=customer_id, message_id=message_id,
                     event_id=event_id, summary=_summary(EVENT_KINDS[kind], channel, communication), state="open",
                     created_at=occurred or now)
                for event_id, kind, channel, communication, customer_id, message_id, occurred in events]
        dead = session.execute(
            select(Message.id, Message.customer_id, Message.channel, Communication.name, Run.cycle, Message.updated_at)
            .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
            .outerjoin(FollowUpTask, and_(FollowUpTask.message_id == Message.id, FollowUpTask.kind == "undelivered"))
            .where(Message.state == "dead", Communication.kind.in_(UNDELIVERABLE), FollowUpTask.id.is_(None))
            .order_by(Message.id)
        ).all()
        rows += [dict(kind="undelivered", source_key=f"message:{message_id}", customer_id=customer_id, message_id=message_id,
                      event_id=None, summary=_summary("undelivered", channel, f"{name} {cycle}"), state="open",
                      created_at=updated or now)
                 for message_id, customer_id, channel, name, cycle, updated in dead]
        made = 0
        for row in rows:
            made += session.execute(insert_or_ignore(session, FollowUpTask, "source_key").values(**row)).rowcount or 0
        return made


def _summary(kind: str, channel: str | None, communication: str | None) -> str:
    about = communication or "no message"
    if kind == "reply":
        return f"{channel or 'unknown'} reply to {about}"[:300]
    if kind == "complaint":
        return f"{channel or 'e-mail'} complaint about {about}"[:300]
    return f"{about} reached no one (last tried by {channel or 'no channel'})"[:300]


def task_counts(engine: Engine) -> TaskCounts:
    """Open tasks, by kind, and how many of them nobody has taken (collected first)."""
    collect_tasks(engine)
    with engine.db.reader() as session:
        rows = session.execute(select(FollowUpTask.kind, func.count()).where(FollowUpTask.state == "open")
                               .group_by(FollowUpTask.kind).order_by(FollowUpTask.kind)).all()
        unassigned = session.scalar(select(func.count()).where(FollowUpTask.state == "open",
                                                               FollowUpTask.assignee.is_(None))) or 0
    by_kind = {kind: count for kind, count in rows}
    return TaskCounts(open=sum(by_kind.values()), by_kind=by_kind, unassigned=unassigned)


def list_tasks(engine: Engine, *, state: str = "open", kind: str | None = None, assignee: str | None = None,
               unassigned: bool = False, customer_id: int | None = None, limit: int = LIMIT) -> list[TaskRow]:
    """Tasks, oldest first (open ones) or newest first (closed ones), with their customer."""
    query = (select(FollowUpTask, Customer.external_id, Customer.name)
             .outerjoin(Customer, FollowUpTask.customer_id == Customer.id).options(selectinload(FollowUpTask.comments)))
    if state in ("open", "closed"):
        query = query.where(FollowUpTask.state == state)
    if kind in TASK_KINDS:
        query = query.where(FollowUpTask.kind == kind)
    if assignee:
        query = query.where(FollowUpTask.assignee == assignee)
    if unassigned:
        query = query.where(FollowUpTask.assignee.is_(None))
    if customer_id is not None:
        query = query.where(FollowUpTask.customer_id == customer_id)
    order = (FollowUpTask.created_at, FollowUpTask.id) if state == "open" else (FollowUpTask.created_at.desc(), FollowUpTask.id.desc())
    with engine.db.reader() as session:
        rows = [TaskRow(task, external_id, name) for task, external_id, name in session.execute(query.order_by(*order).limit(limit))]
        session.expunge_all()
        return rows


def get_task(engine: Engine, task_id: int) -> TaskRow:
    with engine.db.reader() as session:
        row = session.execute(select(FollowUpTask, Customer.external_id, Customer.name)
                              .outerjoin(Customer, FollowUpTask.customer_id == Customer.id)
                              .where(FollowUpTask.id == task_id).options(selectinload(FollowUpTask.comments))).first()
        if row is None:
            raise TaskError(f"no such task: {task_id}")
        session.expunge_all()
        return TaskRow(*row)


def _open_task(session, task_id: int) -> FollowUpTask:  # type: ignore[no-untyped-def]
    task = session.get(FollowUpTask, task_id)
    if task is None:
        raise TaskError(f"no such task: {task_id}")
    if task.state != "open":
        raise TaskError(f"task {task_id} is closed")
    return task


def assign_task(engine: Engine, task_id: int, assignee: str | None) -> None:
    """Give the task to ``assignee`` (a user name), or to nobody."""
    with engine.db.session() as session:
        _open_task(session, task_id).assignee = assignee or None


def comment_task(engine: Engine, task_id: int, author: str, text: str) -> None:
    text = text.strip()
    if not text:
        raise TaskError("a comment needs some text")
    with engine.db.session() as session:
        task = session.get(FollowUpTask, task_id)
        if task is None:
            raise TaskError(f"no such task: {task_id}")
        session.add(TaskComment(task_id=task_id, author=author, text=text[:5000], at=utcnow()))


def close_task(engine: Engine, task_id: int, closed_by: str, at: dt.datetime | None = None) -> None:
    with engine.db.session() as session:
        task = _open_task(session, task_id)
        task.state, task.closed_by, task.closed_at = "closed", closed_by, at or utcnow()

"""Follow-up tasks: what customer service must look at for a customer (a reply that is not
a keyword, a complaint, a statement that reached no one)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from ccm.models.staff import FollowUpTask
from ccm.wiring import Engine


@dataclass(frozen=True)
class TaskCounts:
    open: int
    by_kind: dict[str, int] = field(default_factory=dict)
    unassigned: int = 0


def task_counts(engine: Engine) -> TaskCounts:
    """Open tasks, by kind, and how many of them nobody has taken."""
    with engine.db.reader() as session:
        rows = session.execute(select(FollowUpTask.kind, func.count()).where(FollowUpTask.state == "open")
                               .group_by(FollowUpTask.kind).order_by(FollowUpTask.kind)).all()
        unassigned = session.scalar(select(func.count()).where(FollowUpTask.state == "open",
                                                               FollowUpTask.assignee.is_(None))) or 0
    by_kind = {kind: count for kind, count in rows}
    return TaskCounts(open=sum(by_kind.values()), by_kind=by_kind, unassigned=unassigned)

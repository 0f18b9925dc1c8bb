"""The clock that leases are timed by: the database server's, so every scheduler, on any
machine and whatever its own clock says, agrees on when a lease runs out."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text


def database_now(session: Any) -> dt.datetime:
    """The database server's clock (naive UTC)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text("SELECT timezone('utc', now())")).scalar()
    return dt.datetime.fromisoformat(session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar())

"""The audit page: every staff action, newest first, filtered by who, what, which kind of
object, a name and dates; 100 to a page, the next page by the last id shown."""
from __future__ import annotations

import datetime as dt

from flask import render_template, request

from ccm.staff import AuditFilter, facets, search
from ccm.web.console import blueprint, engine, requires


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@blueprint.route("/audit")
@requires("audit:view")
def audit() -> str:
    args = request.args
    filters = AuditFilter(actor=args.get("actor") or None, action=args.get("action") or None,
                          object_type=args.get("object_type") or None, text=(args.get("text") or "").strip()[:100] or None,
                          since=_date(args.get("since")), until=_date(args.get("until")))
    before = args.get("before", type=int)
    with engine().db.reader() as session:
        entries = search(session, filters, before_id=before, limit=100)
        menus = facets(session)
    more = {**args.to_dict(), "before": entries[-1].id} if len(entries) == 100 else None
    return render_template("console/audit.html", entries=entries, filters=filters, menus=menus, more=more)

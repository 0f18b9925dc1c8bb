"""The studio's audiences: the segments with their rule and size, a segment editor that
checks the rule as it is typed (the error at its position, or the live count and a sample
of members, bounded in time), the segment's size over time, and the audience overview
(the customer pyramid, ABC codes and lifecycle stages with customers and spend, and how
customers moved between them since the period before). The engine checks, counts and
stores (``ccm.segments``), refreshes in the background; saving and refreshing are audited."""
from __future__ import annotations

import datetime as dt

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal, gettext as _

from ccm.rules import RuleError
from ccm.segments import (SegmentError, audience_overview, describe, get_segment, list_segments, live_count, refresh_state, save_segment,
                          start_refresh)
from ccm.web.console import audit, blueprint, engine, local_time, requires, staff

ERRORS = (RuleError, SegmentError, LookupError)


@blueprint.route("/segments")
@requires("segments:view")
def segments() -> str:
    with engine().db.reader() as session:
        rows = list_segments(session)
    return render_template("console/studio/audiences/segments.html", rows=rows, when=_when)


@blueprint.route("/segments/new")
@requires("segments:edit")
def segments_new() -> str:
    return render_template("console/studio/audiences/segment.html", info=None, when=_when,
                           form={"name": "", "description": "", "expression": ""})


@blueprint.route("/segments/<name>")
@requires("segments:view")
def segments_show(name: str) -> str:
    with engine().db.reader() as session:
        try:
            info = describe(session, get_segment(session, name), history=50)
        except SegmentError:
            abort(404)
    form = {"name": info["name"], "description": info["description"], "expression": info["expression"]}
    return render_template("console/studio/audiences/segment.html", info=info, form=form, when=_when, job=refresh_state(name),
                           name=name)


@blueprint.route("/segments/check", methods=["POST"])
@requires("segments:edit")
def segments_check() -> str:
    expression = request.form.get("expression", "")
    name = request.form.get("name", "").strip() or None
    with engine().db.reader() as session:
        checked = live_count(session, expression, segment=name) if expression.strip() else None
    return render_template("console/studio/audiences/_check.html", checked=checked, caret=_caret(checked))


def _caret(checked) -> tuple[str, int] | None:  # type: ignore[no-untyped-def]
    """The line of the rule with the error and the error's offset in it (for the caret)."""
    if checked is None or checked.error is None or not checked.error.column:
        return None
    before = checked.expression[: checked.error.column - 1]
    start = before.rfind("\n") + 1
    line = checked.expression[start:].split("\n", 1)[0]
    return line, len(before) - start


@blueprint.route("/segments/save", methods=["POST"])
@requires("segments:edit")
def segments_save() -> Response:
    form = {key: request.form.get(key, "").strip() for key in ("name", "description", "expression")}
    try:
        with engine().db.session() as session:
            saved = save_segment(session, form["name"], form["expression"], description=form["description"], author=staff().name)
            version, outcome = saved.segment.version, saved.outcome
    except ERRORS as exc:
        with engine().db.reader() as session:  # a segment being edited keeps its page: its history and versions
            existing = next((s for s in list_segments(session) if s["name"] == form["name"]), None)
            info = describe(session, get_segment(session, form["name"]), history=50) if existing else None
        page = render_template("console/studio/audiences/segment.html", info=info, form=form, problem=str(exc), when=_when)
        return Response(page, status=400)
    audit("segment.save", "segment", form["name"], version, outcome=outcome, expression=form["expression"])
    messages = {"created": _("Segment created: refresh it to count its members."),
                "new version": _("Version %(version)s saved: refresh it to count its members.", version=version),
                "unchanged": _("The rule is unchanged.")}
    flash(messages[outcome])
    return redirect(url_for("console.segments_show", name=form["name"]))  # type: ignore[return-value]


@blueprint.route("/segments/<name>/refresh", methods=["POST"])
@requires("segments:edit")
def segments_refresh(name: str) -> Response:
    """Start the refresh in the background (``ccm.segments.start_refresh``); the segment's
    page follows it and the refresh is audited as the user's when it ends."""
    try:
        job, started = start_refresh(engine(), name, staff().name)
    except ERRORS as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.segments"))  # type: ignore[return-value]
    flash(_("Refreshing in the background: the count shows here when it is done.") if started
          else _("A refresh of this segment is running already."))
    return redirect(url_for("console.segments_show", name=name))  # type: ignore[return-value]


@blueprint.route("/segments/<name>/refresh-state")
@requires("segments:view")
def segments_refresh_state(name: str) -> Response:
    """The refresh's state for the page to poll; once it has ended the page reloads (the
    new count and chart), unless it was ended when the page was made."""
    job = refresh_state(name)
    page = render_template("console/studio/audiences/_refresh.html", job=job, name=name, when=_when)
    response = Response(page)
    if (job is None or not job.running) and request.args.get("running"):
        response.headers["HX-Refresh"] = "true"
    return response


@blueprint.route("/audiences")
@requires("segments:view")
def audiences() -> str:
    with engine().db.reader() as session:
        overview = audience_overview(session)
    labels = {"vip": _("VIP"), "key": _("key"), "ordinary": _("ordinary"), "small": _("small"),
              "A": "A", "B": "B", "C": "C", "acquisition": _("acquisition"), "growth": _("growth"),
              "maturity": _("maturity"), "decline": _("decline"), "exit": _("exit"), None: _("not known")}
    return render_template("console/studio/audiences/audiences.html", overview=overview, labels=labels, money=_money)


def _money(value) -> str:  # type: ignore[no-untyped-def]
    return format_decimal(value, format="#,##0.00")


def _when(iso: str | None) -> str:
    """An engine's ISO time ("...Z") in the viewer's zone."""
    return local_time(dt.datetime.fromisoformat(iso.removesuffix("Z")) if iso else None)

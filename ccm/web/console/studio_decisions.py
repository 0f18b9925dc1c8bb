"""The studio's decisions: each content slot's rules in order (moved with buttons or by
dragging), what each gives (a content block, nothing, or an experiment with weighted
variants and a hold-out), the default, the counts per rule and variant over the audience
before saving (a dry run of the decision as edited), and the versions saved before.
The engine checks and stores (``ccm.decisions``); saving is audited."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.authoring import BLOCK_KINDS, list_templates
from ccm.decisions import DecisionError, decision_overview, describe_decision, dry_run, save_decision
from ccm.rules import RuleError
from ccm.segments import SegmentError, list_segments
from ccm.web.console import audit, blueprint, engine, requires, staff
from ccm.web.console.decision_form import EXPERIMENT, from_data, from_form, to_data, with_spares

ERRORS = (DecisionError, RuleError, SegmentError, LookupError)


@blueprint.route("/decisions")
@requires("decisions:view")
def decisions() -> str:
    with engine().db.session() as session:
        overview = decision_overview(session)
    return render_template("console/studio/decisions/list.html", overview=overview)


def _contents() -> list[str]:
    """The content blocks a decision can give (inserts, offers, legal texts)."""
    with engine().db.reader() as session:
        return [t["name"] for t in list_templates(session) if t["kind"] in BLOCK_KINDS]


def _page(communication: str, slot: str, rules, default, *, counts=None, problem: str | None = None,  # type: ignore[no-untyped-def]
          status: int = 200, audience: dict | None = None) -> Response:
    with engine().db.session() as session:
        try:
            described = next((d for d in describe_decision(session, communication) if d["slot"] == slot), None)
        except LookupError:
            abort(404)
        segments = [segment.name for segment in list_segments(session)]
    rules, default = with_spares(rules, default)
    page = render_template("console/studio/decisions/edit.html", communication=communication, slot=slot, described=described,
                           rules=rules, default=default, contents=_contents(), segments=segments, counts=counts,
                           problem=problem, experiment=EXPERIMENT, audience=audience or {})
    return Response(page, status=status)


@blueprint.route("/decisions/<communication>/<slot>")
@requires("decisions:view")
def decision(communication: str, slot: str) -> Response:
    with engine().db.session() as session:
        try:
            described = next((d for d in describe_decision(session, communication) if d["slot"] == slot), None)
        except LookupError:
            abort(404)
    if described is None:
        abort(404)
    rules, default = from_data(described["versions"][-1]["spec"])
    return _page(communication, slot, rules, default)


@blueprint.route("/decisions/<communication>/<slot>", methods=["POST"])
@requires("decisions:edit")
def decision_edit(communication: str, slot: str) -> Response:
    rules, default = from_form(request.form)
    action = request.form.get("action", "")
    audience = {"cycle": request.form.get("cycle", "").strip()[:7], "segment": request.form.get("segment", "")}
    if action not in ("dry-run", "save"):  # a move, a row added: the form again, nothing saved
        return _page(communication, slot, rules, default, audience=audience)
    data = to_data(rules, default)
    try:
        with engine().db.session() as session:
            if action == "dry-run":
                counts = dry_run(session, communication, cycle=audience["cycle"] or None, segment=audience["segment"] or None,
                                 proposed={slot: data})
            else:
                saved, outcome = save_decision(session, communication, slot, data, templates_dir=engine().templates_dir,
                                               author=staff().name)
                version = saved.version
    except ERRORS as exc:
        return _page(communication, slot, rules, default, problem=str(exc), status=422, audience=audience)
    if action == "dry-run":
        return _page(communication, slot, rules, default, counts=counts, audience=audience)
    if outcome != "unchanged":
        audit("decision.save", "decision", f"{communication}/{slot}", version, rules=len(rules),
              experiments=sum(1 for rule in [*rules] if rule.output.then == EXPERIMENT) + (default.then == EXPERIMENT))
    flash(_("Version %(version)s saved.", version=version) if outcome != "unchanged" else _("Nothing changed."))
    return redirect(url_for("console.decision", communication=communication, slot=slot))

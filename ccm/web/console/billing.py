"""The billing desk: start a statement or bill cycle (upload the month's feed or pick an
imported period, see what was rejected, then start), watch a run live, pause, resume,
cancel and retry it, its reconciliation and every message not sent, its print files, and
the archive with reprints. Every view names its permission; every action is audited.
The engine does the work (``ccm.runs``, ``ccm.imports``); cycles run in the background."""
from __future__ import annotations

import io
import re

from flask import Response, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from channels import ChannelConfigError
from ccm.authoring import TemplateStoreError
from ccm.imports import (imported_periods, import_upload, load_upload, read_rejects, rejects_file, upload_periods)
from ccm.runs import (ArchiveError, ExecutorError, PlanError, PolicyError, RunStateError, archive_root, cycle_communications,
                      executing, list_runs, message_view, print_file, print_files, report, reprint, resume_in_background,
                      retry_failed_now, run_progress, search_archive, set_state, start_cycle, unsent_by_reason)
from ccm.web.console import audit, blueprint, engine, fresh, requires, safe_next

RUN_ERRORS = (PlanError, PolicyError, RunStateError, LookupError, TemplateStoreError, ChannelConfigError, ExecutorError)
PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
PAUSABLE = ("planned", "running", "waiting", "interrupted")
CANCELLABLE = ("planned", "running", "waiting", "paused", "interrupted", "failed")
RESUMABLE = ("paused", "waiting", "interrupted", "failed")


# --------------------------------------------------------------------------- the front: runs, start a cycle


@blueprint.route("/runs")
@requires("runs:view")
def runs() -> str:
    with engine().db.reader() as session:
        rows = list_runs(session, engine().settings)[:200]
        periods = imported_periods(session)
    return render_template("console/billing/runs.html", rows=rows, periods=periods)


@blueprint.route("/runs/upload", methods=["POST"])
@requires("runs:start")
def runs_upload() -> Response:
    uploaded = request.files.get("feed")
    if uploaded is None or not uploaded.filename:
        flash(_("Choose the billing feed to upload (CSV or JSONL)."), "error")
        return redirect(url_for("console.runs"))
    upload = import_upload(engine().db, engine().var_dir, uploaded.filename, uploaded.stream)
    r = upload.report
    audit("upload", "feed", upload.name, upload=upload.id, statements=r.rows, inserted=r.inserted, updated=r.updated,
          unchanged=r.unchanged, rejected=r.rejected, error=upload.error)
    return redirect(url_for("console.runs_import", upload_id=upload.id))


@blueprint.route("/runs/imports/<upload_id>")
@requires("runs:start")
def runs_import(upload_id: str) -> str:
    upload = _upload(upload_id)
    with engine().db.reader() as session:
        periods = imported_periods(session)
        touched = upload_periods(session, upload)
    return render_template("console/billing/import.html", upload=upload, rejects=read_rejects(engine().var_dir, upload),
                           periods=periods, chosen=touched[0] if touched else None,
                           communications=cycle_communications(engine()))


@blueprint.route("/runs/imports/<upload_id>/rejects.csv")
@requires("runs:view")
def runs_rejects(upload_id: str) -> Response:
    path = rejects_file(engine().var_dir, _upload(upload_id))
    if path is None:
        abort(404)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"{upload_id}.rejects.csv", max_age=0)


@blueprint.route("/runs/periods/<period>")
@requires("runs:start")
def runs_period(period: str) -> str:
    with engine().db.reader() as session:
        counts = dict(imported_periods(session))
    if not PERIOD.match(period) or period not in counts:
        abort(404)
    return render_template("console/billing/period.html", period=period, statements=counts[period],
                           communications=cycle_communications(engine()))


@blueprint.route("/runs/start", methods=["POST"])
@requires("runs:start")
def runs_start() -> Response:
    communication = request.form.get("communication", "")
    cycle = request.form.get("cycle", "")
    if communication not in dict(cycle_communications(engine())) or not PERIOD.match(cycle):
        flash(_("Choose a communication and a billing period (YYYY-MM)."), "error")
        return redirect(safe_next(request.referrer, "console.runs"))
    try:
        plan = start_cycle(engine(), communication, cycle)
    except RUN_ERRORS as exc:
        audit("start", "run", f"{communication} {cycle}", refused=str(exc)[:300])
        flash(_("The cycle did not start: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("console.runs"))
    audit("start", "run", str(plan.run_id), communication=communication, cycle=cycle, planned=plan.planned,
          records_in=plan.records_in, planned_before=plan.already_planned)
    flash(_("Cycle %(cycle)s started: %(planned)s messages planned.", cycle=cycle, planned=plan.planned))
    return redirect(url_for("console.run", run_id=plan.run_id))


def _upload(upload_id: str):  # type: ignore[no-untyped-def]
    try:
        return load_upload(engine().var_dir, upload_id)
    except LookupError:
        abort(404)


# --------------------------------------------------------------------------- one run, live


def _run_parts(run_id: int) -> dict:
    try:
        progress = run_progress(engine(), run_id)
    except LookupError:
        abort(404)
    parts: dict = {"progress": progress, "executing": executing(run_id), "pausable": PAUSABLE, "cancellable": CANCELLABLE,
                   "resumable": RESUMABLE}
    parts["live"] = progress.live or parts["executing"]
    if not parts["live"]:
        parts["report"] = report(engine(), run_id)
        with engine().db.reader() as session:
            parts["unsent"] = unsent_by_reason(session, run_id)
        parts["files"] = print_files(engine(), run_id)
    parts["failed"] = sum(c.states.get("failed", 0) for c in progress.channels)
    return parts


@blueprint.route("/runs/<int:run_id>")
@requires("runs:view")
def run(run_id: int) -> str:
    return render_template("console/billing/run.html", **_run_parts(run_id))


@blueprint.route("/runs/<int:run_id>/live")
@requires("runs:view")
def run_live(run_id: int) -> str:
    return render_template("console/billing/_live.html", **_run_parts(run_id))


@blueprint.route("/runs/<int:run_id>/<any(pause, resume, cancel, retry):action>", methods=["POST"])
@requires("runs:control")
def run_control(run_id: int, action: str) -> Response:
    try:
        if action == "pause":
            set_state(engine(), run_id, "paused")
            done = _("Run %(id)s is paused; it stops after the messages at hand.", id=run_id)
        elif action == "cancel":
            set_state(engine(), run_id, "cancelled")
            done = _("Run %(id)s is cancelled; nothing more is sent.", id=run_id)
        elif action == "resume":
            resume_in_background(engine(), run_id)
            done = _("Run %(id)s is resumed.", id=run_id)
        else:
            count = retry_failed_now(engine(), run_id)
            done = _("%(count)s failed messages are retried now.", count=count)
    except RUN_ERRORS as exc:
        audit(action, "run", str(run_id), refused=str(exc)[:300])
        flash(_("Not done: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("console.run", run_id=run_id))
    audit(action, "run", str(run_id), **({"messages": count} if action == "retry" else {}))
    flash(done)
    return redirect(url_for("console.run", run_id=run_id))


@blueprint.route("/runs/<int:run_id>/print/<folder>/<name>")
@requires("print:download")
def run_print_file(run_id: int, folder: str, name: str) -> Response:
    try:
        path = print_file(engine(), run_id, folder, name)
    except LookupError:
        abort(404)
    mimetype = "text/csv" if name.endswith(".csv") else "application/pdf"
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=f"{folder}-{name}", max_age=0)


@blueprint.route("/messages/<int:message_id>")
@requires("runs:view")
def message(message_id: int) -> str:
    with engine().db.reader() as session:
        try:
            view = message_view(session, message_id)
        except LookupError:
            abort(404)
        customer = {"external_id": view.customer.external_id, "name": view.customer.name}
    return render_template("console/billing/message.html", view=view, customer=customer)


# --------------------------------------------------------------------------- the archive


@blueprint.route("/archive")
@requires("archive:view")
def archive() -> str:
    args = {key: (request.args.get(key) or "").strip()[:100] for key in ("customer", "account", "cycle")}
    hits = None
    if any(args.values()):
        with engine().db.reader() as session:
            hits = search_archive(session, customer=args["customer"] or None, account=args["account"] or None,
                                  cycle=args["cycle"] or None)
    return render_template("console/billing/archive.html", args=args, hits=hits)


def _archived(message_id: int) -> tuple:
    with engine().db.reader() as session:
        try:
            return reprint(session, archive_root(engine().var_dir), message_id)
        except ArchiveError as exc:
            if "no such message" in str(exc) or "has no archived document" in str(exc):
                abort(404)
            raise


@blueprint.route("/archive/<int:message_id>.pdf")
@requires("archive:view")
def archive_document(message_id: int) -> Response:
    """The archived statement as sent, to look at (a reprint is the audited download)."""
    _, data = _archived(message_id)
    return send_file(io.BytesIO(data), mimetype="application/pdf", download_name=f"message-{message_id}.pdf", max_age=0)


@blueprint.route("/archive/<int:message_id>/reprint", methods=["POST"])
@requires("archive:reprint")
@fresh
def archive_reprint(message_id: int) -> Response:
    try:
        entry, data = _archived(message_id)
    except ArchiveError as exc:
        audit("reprint", "message", str(message_id), refused=str(exc)[:300])
        flash(_("No reprint: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("console.archive"))
    audit("reprint", "message", str(message_id), account=entry.account, cycle=entry.cycle, communication=entry.communication,
          sha256=entry.sha256)
    name = f"{entry.communication}-{entry.cycle}-{entry.account or 'message'}-{message_id}.pdf"
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=name, max_age=0)

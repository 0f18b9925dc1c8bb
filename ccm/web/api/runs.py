"""Runs: start one (a communication for a cycle, planned in the request and delivered in the
background, as the billing desk starts one), list them, follow one's progress, pause,
resume and cancel it, its reconciliation, its messages with their state and trace, its
print files, and reprints of its archived documents. The engine does the work
(``ccm.runs``); every action is audited as the caller's."""
from __future__ import annotations

import io
from typing import Any

import marshmallow as ma
from flask import Response, send_file
from flask_smorest import Blueprint
from sqlalchemy import select

from channels import ChannelConfigError
from ccm.authoring import TemplateStoreError
from ccm.communications import ensure_built_in, get_communication, is_marketing
from ccm.models import CHANNEL_KINDS, MESSAGE_STATES, ArchivedDocument, Customer, FeedRecord, Message
from ccm.runs import (ArchiveError, ExecutorError, PlanError, PolicyError, RunStateError, archive_root, executing, list_runs,
                      print_file, print_files, report, reprint, resume_in_background, run_progress, set_state, start_cycle)
from ccm.staff import record
from ccm.web.api.auth import caller, caller_name, engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("runs", __name__, url_prefix="/api/v1/runs", description="Runs: start, follow, control, reconcile, reprint")

RUN_STATES = ("planned", "running", "paused", "waiting", "interrupted", "cancelled", "completed", "undelivered", "failed")
CYCLE = r"^[A-Za-z0-9._-]{1,20}$"
PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


class RunStartIn(ma.Schema):
    communication = ma.fields.String(required=True, validate=ma.validate.Length(1, 100),
                                     metadata={"description": "a communication's name (statement, deals, ...)"})
    cycle = ma.fields.String(required=True, validate=ma.validate.Regexp(CYCLE),
                             metadata={"description": "YYYY-MM for a statement or bill; a label of up to 20 characters for a campaign"})
    audience = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(1, 100),
                                metadata={"description": "only the members of this segment"})


class RunChannelProgress(ma.Schema):
    channel = ma.fields.String(required=True)
    states = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                            metadata={"description": "message state -> messages"})
    total = ma.fields.Integer(required=True)
    done = ma.fields.Integer(required=True)


class RunOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    communication = ma.fields.String(required=True)
    cycle = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"description": ", ".join(RUN_STATES)})
    error = ma.fields.String(allow_none=True, required=True, metadata={"description": "why it stopped or waits"})
    started_at = UtcDateTime(allow_none=True, required=True)
    finished_at = UtcDateTime(allow_none=True, required=True)
    executing = ma.fields.Boolean(required=True, metadata={"description": "a thread of this server is delivering it now"})
    total = ma.fields.Integer(required=True)
    done = ma.fields.Integer(required=True)
    rate = ma.fields.Float(allow_none=True, required=True, metadata={"description": "messages done per minute, lately"})
    seconds_left = ma.fields.Integer(allow_none=True, required=True)
    channels = ma.fields.List(ma.fields.Nested(RunChannelProgress), required=True)


class RunStarted(RunOut):
    records_in = ma.fields.Integer(required=True)
    planned = ma.fields.Integer(required=True, metadata={"description": "messages planned by this request"})
    already_planned = ma.fields.Integer(required=True, metadata={"description": "messages planned before (a repeated start)"})


class RunSummary(ma.Schema):
    id = ma.fields.Integer(required=True)
    communication = ma.fields.String(required=True)
    cycle = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    records_in = ma.fields.Integer(required=True)
    created_at = UtcDateTime(required=True)
    finished_at = UtcDateTime(allow_none=True, required=True)


class RunListArgs(PageArgs):
    communication = ma.fields.String(load_default=None, validate=ma.validate.Length(max=100))
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(RUN_STATES))


class RunReconciliation(ma.Schema):
    run_id = ma.fields.Integer(required=True)
    communication = ma.fields.String(required=True)
    cycle = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    records_in = ma.fields.Integer(required=True)
    planned = ma.fields.Integer(required=True)
    statements = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                                metadata={"description": "state -> messages of the primary purpose"})
    by_channel = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer()),
                                required=True)
    suppressed_reasons = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    dead_reasons = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    retry_reasons = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    fallbacks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    costs = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    currency = ma.fields.String(required=True)
    problems = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "what does not add up; empty when balanced"})
    balanced = ma.fields.Boolean(required=True)
    complete = ma.fields.Boolean(required=True)
    unfinished = ma.fields.Integer(required=True)
    reconciliation = ma.fields.String(required=True, metadata={"description": "the equation in words"})
    error = ma.fields.String(allow_none=True, required=True)


class RunMessage(ma.Schema):
    id = ma.fields.Integer(required=True)
    customer = ma.fields.String(required=True, metadata={"description": "the customer's external id"})
    account = ma.fields.String(allow_none=True, required=True)
    channel = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    reason = ma.fields.String(allow_none=True, required=True)
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = UtcDateTime(allow_none=True, required=True)
    sent_at = UtcDateTime(allow_none=True, required=True)
    fallback_from = ma.fields.String(allow_none=True, required=True)
    trace = ma.fields.Dict(required=True, metadata={"description": "slot -> the content chosen and why"})
    template_versions = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    archived = ma.fields.Boolean(required=True)


class RunMessageArgs(PageArgs):
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(MESSAGE_STATES))
    channel = ma.fields.String(load_default=None, validate=ma.validate.OneOf((*CHANNEL_KINDS, "none")))


class RunPrintFile(ma.Schema):
    folder = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    production = ma.fields.Boolean(required=True, metadata={"description": "the run's postal production, not a batch"})


RUN_ERRORS = (PlanError, PolicyError, TemplateStoreError, ChannelConfigError, ExecutorError)


def _audit(action: str, name: str, **details: Any) -> None:
    with engine().db.session() as session:
        record(session, caller_name(), action, "run", name, None, via="api", **details)


def _progress(run_id: int) -> dict[str, Any]:
    try:
        shown = run_progress(engine(), run_id)
    except LookupError:
        fail(404, f"no such run: {run_id}")
    return {"id": shown.run_id, "communication": shown.communication, "cycle": shown.cycle, "state": shown.state,
            "error": shown.error, "started_at": shown.started_at, "finished_at": shown.finished_at,
            "executing": executing(run_id), "total": shown.total, "done": shown.done, "rate": shown.rate,
            "seconds_left": shown.seconds_left, "channels": shown.channels}


@blueprint.post("")
@require(blueprint, "runs:start")
@idempotent(blueprint, required=True)
@errors(blueprint, 403, 409, 422)
@blueprint.arguments(RunStartIn)
@blueprint.response(202, RunStarted)
def start(given: dict):  # type: ignore[no-untyped-def]
    """Start a run: plan the cycle now (planning again adds only what is missing) and deliver
    it in the background. A campaign needs `campaigns:send` as well. Sends: an
    `Idempotency-Key` is required."""
    with engine().db.session() as session:
        ensure_built_in(session)
        try:
            marketing = is_marketing(get_communication(session, given["communication"]))
        except LookupError as exc:
            fail(422, str(exc).strip("'\""), field="communication")
    if marketing and not caller().staff.can("campaigns:send"):
        fail(403, f"this key's account ({caller().staff.name}) lacks the permission campaigns:send", permission="campaigns:send")
    try:
        plan = start_cycle(engine(), given["communication"], given["cycle"], audience=given["audience"])
    except RunStateError as exc:
        fail(409, str(exc))
    except (*RUN_ERRORS, LookupError) as exc:
        _audit("start", f"{given['communication']} {given['cycle']}", refused=str(exc)[:300])
        fail(422, str(exc).strip("'\""))
    _audit("start", str(plan.run_id), communication=given["communication"], cycle=given["cycle"], planned=plan.planned,
           records_in=plan.records_in, planned_before=plan.already_planned)
    return {**_progress(plan.run_id), "records_in": plan.records_in, "planned": plan.planned, "already_planned": plan.already_planned}


@blueprint.get("")
@require(blueprint, "runs:view")
@blueprint.arguments(RunListArgs, location="query")
@blueprint.response(200, page_schema(RunSummary, "RunPage"))
def runs(args: dict):  # type: ignore[no-untyped-def]
    """Runs, newest first, in pages; filtered by communication or state (as observed: a run
    whose process died is `interrupted`)."""
    with engine().db.reader() as session:
        rows = [(run, name, state) for run, name, state in list_runs(session, engine().settings)
                if (args["after"] is None or run.id < args["after"]) and args["communication"] in (None, name)
                and args["state"] in (None, state)]
        found = [{"id": run.id, "communication": name, "cycle": run.cycle, "state": state, "records_in": run.records_in,
                  "created_at": run.created_at, "finished_at": run.finished_at} for run, name, state in rows[:args["limit"] + 1]]
    return page(found, args["limit"], lambda item: item["id"])


@blueprint.get("/<int(max=2147483647):run_id>")
@require(blueprint, "runs:view")
@errors(blueprint, 404)
@blueprint.response(200, RunOut)
def get(run_id: int):  # type: ignore[no-untyped-def]
    """A run's progress: its messages counted by channel and state, rate and time left."""
    return _progress(run_id)


@blueprint.post("/<int(max=2147483647):run_id>/pause")
@require(blueprint, "runs:control")
@errors(blueprint, 404, 409)
@blueprint.response(200, RunOut)
def pause(run_id: int):  # type: ignore[no-untyped-def]
    """Pause the run; it stops after the messages at hand."""
    return _control(run_id, "pause", lambda: set_state(engine(), run_id, "paused"))


@blueprint.post("/<int(max=2147483647):run_id>/resume")
@require(blueprint, "runs:control")
@idempotent(blueprint)
@errors(blueprint, 404, 409)
@blueprint.response(200, RunOut)
def resume(run_id: int):  # type: ignore[no-untyped-def]
    """Take a paused, waiting, interrupted or failed run up again, in the background."""
    return _control(run_id, "resume", lambda: resume_in_background(engine(), run_id))


@blueprint.post("/<int(max=2147483647):run_id>/cancel")
@require(blueprint, "runs:control")
@errors(blueprint, 404, 409)
@blueprint.response(200, RunOut)
def cancel(run_id: int):  # type: ignore[no-untyped-def]
    """Cancel the run: nothing more is sent; what is not sent yet is suppressed."""
    return _control(run_id, "cancel", lambda: set_state(engine(), run_id, "cancelled"))


def _control(run_id: int, action: str, act: Any) -> dict[str, Any]:
    _progress(run_id)  # 404 for an unknown run
    try:
        act()
    except (RunStateError, *RUN_ERRORS) as exc:
        _audit(action, str(run_id), refused=str(exc)[:300])
        fail(409, str(exc))
    _audit(action, str(run_id))
    return _progress(run_id)


@blueprint.get("/<int(max=2147483647):run_id>/reconciliation")
@require(blueprint, "runs:view")
@errors(blueprint, 404)
@blueprint.response(200, RunReconciliation)
def reconciliation(run_id: int):  # type: ignore[no-untyped-def]
    """The run's books: records in = planned = sent + suppressed + dead + failed + deferred
    + open, with the reasons, fallbacks and costs."""
    try:
        return report(engine(), run_id).to_json()
    except LookupError:
        fail(404, f"no such run: {run_id}")


@blueprint.get("/<int(max=2147483647):run_id>/messages")
@require(blueprint, "runs:view")
@errors(blueprint, 404)
@blueprint.arguments(RunMessageArgs, location="query")
@blueprint.response(200, page_schema(RunMessage, "RunMessagePage"))
def messages(args: dict, run_id: int):  # type: ignore[no-untyped-def]
    """The run's messages in id order, in pages, with their state and the trace of their
    content; filtered by state or channel."""
    _progress(run_id)
    query = (select(Message, Customer.external_id, FeedRecord.account, ArchivedDocument.id)
             .join(Customer, Customer.id == Message.customer_id)
             .outerjoin(FeedRecord, FeedRecord.id == Message.feed_record_id)
             .outerjoin(ArchivedDocument, ArchivedDocument.message_id == Message.id)
             .where(Message.run_id == run_id))
    if args["state"]:
        query = query.where(Message.state == args["state"])
    if args["channel"]:
        query = query.where(Message.channel == args["channel"])
    if args["after"] is not None:
        query = query.where(Message.id > args["after"])
    with engine().db.reader() as session:
        rows = session.execute(query.order_by(Message.id).limit(args["limit"] + 1)).all()
        found = [_message(message, external_id, account, archived is not None) for message, external_id, account, archived in rows]
    return page(found, args["limit"], lambda item: item["id"])


def _message(message: Message, external_id: str, account: str | None, archived: bool) -> dict[str, Any]:
    return {"id": message.id, "customer": external_id, "account": account,
            "channel": message.channel, "purpose": message.purpose, "state": message.state, "reason": message.reason,
            "attempts": message.attempts, "next_attempt_at": message.next_attempt_at, "sent_at": message.sent_at,
            "fallback_from": message.fallback_from, "trace": dict(message.decisions or {}),
            "template_versions": dict(message.template_versions or {}), "archived": archived}


@blueprint.get("/<int(max=2147483647):run_id>/print-files")
@require(blueprint, "print:download")
@errors(blueprint, 404)
@blueprint.response(200, RunPrintFile(many=True))
def files(run_id: int):  # type: ignore[no-untyped-def]
    """The run's print batches (manifest, stream) and postal production files."""
    _progress(run_id)
    return [{"folder": f.folder, "name": f.name, "size": f.size, "production": f.production} for f in print_files(engine(), run_id)]


@blueprint.get("/<int(max=2147483647):run_id>/print-files/<folder>/<name>")
@require(blueprint, "print:download")
@errors(blueprint, 404)
@blueprint.doc(responses={"200": {"description": "the file: a PDF print stream or a CSV manifest",
                                  "content": {**PDF, "text/csv": {"schema": {"type": "string"}}}}})
def download(run_id: int, folder: str, name: str) -> Response:
    """One of the run's print files, as listed."""
    try:
        path = print_file(engine(), run_id, folder, name)
    except LookupError:
        fail(404, f"run {run_id} has no print file {folder}/{name}")
    mimetype = "text/csv" if name.endswith(".csv") else "application/pdf"
    _audit("download", str(run_id), file=f"{folder}/{name}")
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=f"{folder}-{name}", max_age=0)


@blueprint.post("/<int(max=2147483647):run_id>/messages/<int(max=2147483647):message_id>/reprint")
@require(blueprint, "archive:reprint")
@errors(blueprint, 404, 409)
@blueprint.doc(responses={"200": {"description": "the archived PDF, byte for byte as sent (its hash checked)", "content": PDF}})
def reprint_message(run_id: int, message_id: int) -> Response:
    """Reprint a message of the run: its archived document, never rendered again (audited)."""
    with engine().db.reader() as session:
        if session.scalar(select(Message.run_id).where(Message.id == message_id)) != run_id:
            fail(404, f"run {run_id} has no message {message_id}")
        try:
            entry, data = reprint(session, archive_root(engine().var_dir), message_id)
        except ArchiveError as exc:
            if "has no archived document" in str(exc):
                fail(404, str(exc))
            _audit("reprint", str(run_id), message=message_id, refused=str(exc)[:300])
            fail(409, str(exc))
    with engine().db.session() as session:
        record(session, caller_name(), "reprint", "message", str(message_id), None, via="api", account=entry.account,
               cycle=entry.cycle, communication=entry.communication, sha256=entry.sha256)
    name = f"{entry.communication}-{entry.cycle}-{entry.account or 'message'}-{message_id}.pdf"
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=name, max_age=0)

"""Bulk imports as jobs: another system hands over a whole customer file or billing feed (CSV
or JSONL, gzipped or not, as the request body, up to ``[web] import_max_bytes``); it is
imported in the background with every check of the command-line import, and the caller
follows the job (lines read, then the report) and downloads its rejects: file, line,
field, reason and the raw row. Customers need ``customers:edit``, a feed ``runs:start``,
for every operation on their jobs (a rejects file holds the rows as sent)."""
from __future__ import annotations

import csv
import io
from typing import Any, BinaryIO, Callable, Iterator

import marshmallow as ma
from flask import Response, current_app, request, stream_with_context, url_for
from flask_smorest import Blueprint
from sqlalchemy import select

from ccm.imports.jobs import FORMATS, ImportRefused, claim_job, create_job, rejects_of, start_job
from ccm.models.imports import ImportJob
from ccm.runs.outbox import process_alive, worker_id
from ccm.staff import record
from ccm.web.api.auth import caller_name, engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("imports", __name__, url_prefix="/api/v1/imports", description="Bulk imports of customers and billing feeds")

PERMISSION = {"customers": "customers:edit", "feed": "runs:start"}
MEDIA_TYPES = {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}},
               "application/gzip": {"schema": {"type": "string", "format": "binary"}}}
MEDIA_FORMATS = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}


class ImportArgs(ma.Schema):
    format = ma.fields.String(validate=ma.validate.OneOf(FORMATS), load_default=None,
                              metadata={"description": "csv, jsonl, csv.gz or jsonl.gz; default from the Content-Type "
                                                       "(text/csv, application/x-ndjson)"})
    name = ma.fields.String(load_default="", validate=ma.validate.Length(max=120),
                            metadata={"description": "the file's name, for the report and the rejects (default: the kind)"})


class ImportReportOut(ma.Schema):
    file = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    rows = ma.fields.Integer(required=True, metadata={"description": "customers: data rows; feed: statements"})
    inserted = ma.fields.Integer(required=True)
    updated = ma.fields.Integer(required=True)
    unchanged = ma.fields.Integer(required=True)
    rejected = ma.fields.Integer(required=True)
    ignored_columns = ma.fields.List(ma.fields.String(), required=True)


class ImportJobOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    file = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"description": "queued, running, completed, failed, or interrupted "
                                                                       "(its process died: the active scheduler takes it up "
                                                                       "within a minute, or restart it)"})
    lines_total = ma.fields.Integer(required=True, metadata={"description": "the file's lines"})
    lines_done = ma.fields.Integer(required=True, metadata={"description": "lines read so far"})
    report = ma.fields.Nested(ImportReportOut, allow_none=True, required=True, metadata={"description": "once completed"})
    rejects = ma.fields.String(allow_none=True, required=True,
                               metadata={"description": "where to download the rejected rows (CSV), when there are any"})
    error = ma.fields.String(allow_none=True, required=True, metadata={"description": "why it failed"})
    created_by = ma.fields.String(required=True)
    created_at = UtcDateTime(required=True)
    started_at = UtcDateTime(allow_none=True, required=True)
    finished_at = UtcDateTime(allow_none=True, required=True)


def _state(job: ImportJob) -> str:
    if job.state == "running" and job.owner and process_alive(job.owner) is False:
        return "interrupted"
    return job.state


def _as_json(job: ImportJob) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "file": job.file_name, "state": _state(job), "lines_total": job.lines_total,
            "lines_done": job.lines_done, "report": job.report, "error": job.error, "created_by": job.created_by,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
            "rejects": url_for(f"imports.{job.kind}_rejects", job_id=job.id) if job.rejects_path else None}


def _job(kind: str, job_id: int) -> ImportJob:
    with engine().db.reader() as session:
        job = session.get(ImportJob, job_id)
        if job is None or job.kind != kind:
            fail(404, f"no {kind} import {job_id}")
        session.expunge(job)
        return job


def _audit(action: str, job: int | str, **details: Any) -> None:
    with engine().db.session() as session:
        record(session, caller_name(), action, "import", str(job), None, via="api", **details)


def _body() -> BinaryIO:
    """The request's body as a stream: read already when an Idempotency-Key was hashed."""
    if getattr(request, "_cached_data", None) is not None:
        return io.BytesIO(request.get_data(cache=True))
    return request.stream


def _start(job_id: int) -> None:
    start_job(engine().db, engine().var_dir, job_id, owner=worker_id())


def _routes(kind: str) -> None:
    """The operations on imports of one kind, each under ``/imports/<kind>``."""
    permission = PERMISSION[kind]
    noun = "customer file" if kind == "customers" else "billing feed"

    def named(view: Callable, name: str) -> Callable:
        view.__name__ = f"{kind}_{name}"
        view.__doc__ = view.__doc__.replace("FILE", noun)
        return view

    def create(args: dict):  # type: ignore[no-untyped-def]
        """Import a FILE in the background: the body is the file (CSV or JSONL, gzipped or
        not). A file that cannot be read at all is refused here (422); a bad row is left out
        and listed in the job's rejects with its line and field, and the rest goes on."""
        fmt = args["format"] or MEDIA_FORMATS.get(request.mimetype)
        if fmt is None:
            fail(415 if request.mimetype else 422, "say the file's format: ?format=csv, jsonl, csv.gz or jsonl.gz, or a "
                                                   "Content-Type of text/csv or application/x-ndjson", field="format")
        try:
            job_id = create_job(engine().db, engine().var_dir, kind, fmt, args["name"], _body(), created_by=caller_name())
        except ImportRefused as exc:
            fail(422, str(exc), field="body")
        _audit("import", job_id, kind=kind, format=fmt)
        _start(job_id)
        job = _job(kind, job_id)
        return _as_json(job), 202, {"Location": url_for(f"imports.{kind}_get", job_id=job_id)}

    def get(job_id: int):  # type: ignore[no-untyped-def]
        """A FILE import: its state, lines read, and once completed its report."""
        return _as_json(_job(kind, job_id))

    def listing(args: dict):  # type: ignore[no-untyped-def]
        """FILE imports, newest first, in pages."""
        with engine().db.reader() as session:
            query = select(ImportJob).where(ImportJob.kind == kind).order_by(ImportJob.id.desc()).limit(args["limit"] + 1)
            if args["after"] is not None:
                query = query.where(ImportJob.id < args["after"])
            found = [_as_json(job) for job in session.scalars(query)]
        return page(found, args["limit"], lambda item: item["id"])

    def rejects(job_id: int) -> Response:
        """The rows of a FILE import that were left out (CSV: file, line, field, reason, raw)."""
        job = _job(kind, job_id)
        rows = rejects_of(engine().var_dir, job)
        if rows is None:
            fail(404, f"{kind} import {job_id} has no rejects" + ("" if job.state == "completed" else " yet"))
        _audit("download rejects", job_id, kind=kind)

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in rows:
                writer.writerow(row)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()

        return Response(stream_with_context(lines()), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{kind}-import-{job_id}-rejects.csv"'})

    def restart(job_id: int):  # type: ignore[no-untyped-def]
        """Take up a FILE import whose process died (`interrupted`): the file is imported
        again; rows the first try stored are unchanged."""
        job = _job(kind, job_id)
        owner = worker_id()
        if _state(job) != "interrupted" or not claim_job(engine().db, job_id, "running", job.owner, owner):
            fail(409, f"{kind} import {job_id} is {_state(_job(kind, job_id))}; only an interrupted one is restarted")
        _audit("restart import", job_id, kind=kind)
        start_job(engine().db, engine().var_dir, job_id, owner=owner)
        return _as_json(_job(kind, job_id)), 202

    path = f"/{kind}/<int(max=2147483647):job_id>"
    body = {"required": True, "content": MEDIA_TYPES}
    view = named(create, "create")
    view = blueprint.response(202, ImportJobOut)(view)
    view = blueprint.arguments(ImportArgs, location="query")(view)
    view = blueprint.doc(requestBody=body)(view)
    view = errors(blueprint, 413, 415, 422)(view)
    view = idempotent(blueprint)(view)
    blueprint.post(f"/{kind}")(require(blueprint, permission)(view))

    view = blueprint.response(200, page_schema(ImportJobOut, f"{kind.title()}ImportPage"))(named(listing, "list"))
    view = blueprint.arguments(PageArgs, location="query")(view)
    blueprint.get(f"/{kind}")(require(blueprint, permission)(view))

    view = errors(blueprint, 404)(blueprint.response(200, ImportJobOut)(named(get, "get")))
    blueprint.get(path)(require(blueprint, permission)(view))

    view = blueprint.doc(responses={"200": {"description": "the rejected rows", "content": {"text/csv": {"schema": {"type": "string"}}}}})(
        named(rejects, "rejects"))
    blueprint.get(f"{path}/rejects")(require(blueprint, permission)(errors(blueprint, 404)(view)))

    view = errors(blueprint, 404, 409)(blueprint.response(202, ImportJobOut)(named(restart, "restart")))
    blueprint.post(f"{path}/restart")(require(blueprint, permission)(view))


for _kind in PERMISSION:
    _routes(_kind)


@blueprint.before_request
def _files_may_be_large() -> None:
    """A file to import may be larger than other requests (``[web] max_body_bytes``), up to
    ``[web] import_max_bytes``; set before anything reads the body."""
    if request.endpoint in {f"imports.{kind}_create" for kind in PERMISSION}:
        request.max_content_length = int(current_app.config["CCM"]["web"]["import_max_bytes"])

"""The studio's templates and content blocks: the library (with where each block is used),
a template's versions, history and diffs, the editor (the engine's save-time checks as the
author types, each problem at its line and column), the live preview of the unsaved source
as the customer will see it (rendered in the documents' sandbox, never here; the e-mail's
HTML served apart with a strict CSP into a sandboxed iframe), submit, approve or reject,
retire, and proofs to a seed list. The engine checks, stores and audits every step
(``ccm.authoring``, ``ccm.previews``) with the signed-in user as the actor."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.authoring import (BLOCK_KINDS, KINDS, TemplateStoreError, ValidationFailed, WorkflowError, approve, check_source, diff,
                           list_templates, reject, retire, save_draft, show, submit, template_history)
from ccm.feedback import find_customers
from ccm.previews import PreviewError, ProofError, keep_preview, kept_part, render_bundle, render_source, send_proof, where_used_all
from ccm.web.console import blueprint, engine, fresh, requires, staff, viewer_zone
from ccm.web.console.service import BODY_CSP
from documents import TemplateProblem

USED_KINDS = (*BLOCK_KINDS, "partial")  # what the library says "where used" of
PREVIEW_ERRORS = (PreviewError, TemplateProblem, LookupError, TemplateStoreError)
CUSTOMER_CHOICES = 10  # customers a search for the preview offers at most
PART_TYPES = {".html": "text/html; charset=utf-8", ".png": "image/png", ".pdf": "application/pdf"}


def _language(name: str, kind: str) -> str:
    """The editor's highlighting for a template."""
    if name.endswith(".css"):
        return "css"
    if name.endswith(".typ"):
        return "typst"
    if kind in ("email_subject", "email_text", "sms") or name.endswith((".txt", ".po")):
        return "text"
    return "html"


def _page(name: str) -> Response:
    return redirect(url_for("console.templates_page", name=name))  # type: ignore[return-value]


@blueprint.route("/templates")
@requires("templates:view")
def templates() -> str:
    with engine().db.session() as session:
        rows = list_templates(session)
        used = where_used_all(session, [row["name"] for row in rows if row["kind"] in USED_KINDS])
    return render_template("console/studio/templates/list.html", rows=rows, used=used, block_kinds=USED_KINDS)


@blueprint.route("/templates-new", methods=["GET", "POST"])
@requires("templates:edit")
def templates_new() -> Response:
    """A new template or content block: its name, kind and title, and a first draft that
    passes the save-time checks; then the editor."""
    form = {key: request.form.get(key, "").strip() for key in ("name", "kind", "title")}
    source = request.form.get("source", "").replace("\r\n", "\n")
    problems: list = []
    if request.method == "POST":
        with engine().db.reader() as session:
            exists = form["name"] in {row["name"] for row in list_templates(session)}
        if exists:
            flash(_("A template with this name exists: edit it instead."), "error")
        elif form["kind"] not in KINDS or not form["name"]:
            flash(_("Give the template a name and choose its kind."), "error")
        else:
            try:
                with engine().db.session() as session:
                    saved = save_draft(session, engine().settings, form["name"], source, staff().name, kind=form["kind"],
                                       title=form["title"] or None)
            except ValidationFailed as failed:
                problems = failed.problems
            except (WorkflowError, TemplateStoreError) as refused:
                flash(str(refused), "error")
            else:
                flash(_("Version %(version)s saved as a draft.", version=saved.version))
                return redirect(url_for("console.templates_edit", name=form["name"], version=saved.version))  # type: ignore[return-value]
    page = render_template("console/studio/templates/new.html", form=form, source=source, problems=problems, kinds=KINDS,
                           language=_language(form["name"], form["kind"]), choice={"sample": True})
    return Response(page, status=422 if problems else 200)


def _new_form() -> tuple[str, str]:
    """The name and kind of a template not made yet, from the new-template form; 422 with
    the reason when either is missing or wrong."""
    name, kind = request.form.get("name", "").strip(), request.form.get("kind", "").strip()
    if kind not in KINDS or not name:
        abort(Response(_("Give the template a name and choose its kind."), status=422, mimetype="text/plain"))
    return name, kind


@blueprint.route("/templates-new/check", methods=["POST"])
@requires("templates:edit")
def templates_new_check() -> Response:
    """The save-time checks of the first draft as it is typed; ``X-Editor-Language`` says
    how the editor highlights the template of that name and kind."""
    name, kind = _new_form()
    source = request.form.get("source", "").replace("\r\n", "\n")
    with engine().db.session() as session:
        try:
            problems = check_source(session, engine().settings, name, source, kind=kind)
        except TemplateStoreError as refused:
            return Response(str(refused), status=422, mimetype="text/plain")
    response = jsonify([problem.to_json() for problem in problems])
    response.headers["X-Editor-Language"] = _language(name, kind)
    return response


@blueprint.route("/templates-new/preview", methods=["POST"])
@requires("templates:edit")
def templates_new_preview() -> Response:
    """The first draft rendered as the customer will see it, as it is typed (a fragment)."""
    name, kind = _new_form()
    choice = _choice()
    preview, problem = None, None
    try:
        bundle = render_source(engine(), name, request.form.get("source", "").replace("\r\n", "\n"), kind=kind,
                               customer=choice["customer"] or None, cycle=choice["cycle"] or None, sample=choice["sample"],
                               all_variants=choice["variants"])
        preview = keep_preview(engine(), bundle)
    except PREVIEW_ERRORS as failed:
        problem = str(failed)
    page = render_template("console/studio/templates/_preview.html", preview=preview, preview_error=problem, name=name)
    return Response(page, status=200 if preview else 422)


@blueprint.route("/templates/<path:name>")
@requires("templates:view")
def templates_page(name: str) -> str:
    first, second = request.args.get("from", type=int), request.args.get("to", type=int)
    with engine().db.session() as session:
        try:
            data = show(session, name)
        except (LookupError, TemplateStoreError):
            abort(404)
        history = template_history(session, name)
        changes = None
        if first and second:
            try:
                changes = diff(session, name, first, second)
            except (LookupError, TemplateStoreError):
                changes = None
    seeds = sorted(engine().settings.get("proofs", {}).get("seed_lists", {}))
    return render_template("console/studio/templates/page.html", data=data, history=history, changes=changes,
                           first=first, second=second, seeds=seeds, used=_used_of(name, data["kind"]))


def _used_of(name: str, kind: str) -> dict[str, list[Any]] | None:
    if kind not in USED_KINDS:
        return None
    with engine().db.session() as session:
        return where_used_all(session, [name])[name]


def _editor(name: str, *, version: int | None = None, source: str | None = None, problems: list | None = None,
            preview: dict | None = None, preview_error: str | None = None, status: int = 200,
            choice: dict | None = None) -> Response:
    with engine().db.session() as session:
        try:
            data = show(session, name, version)
        except (LookupError, TemplateStoreError):
            abort(404)
    newest = data["all_versions"][-1]
    editing = data["version"] if data["state"] == "draft" else None
    page = render_template("console/studio/templates/edit.html", data=data, newest=newest, editing=editing,
                           source=data["source"] if source is None else source, problems=problems or [],
                           language=_language(name, data["kind"]), preview=preview, preview_error=preview_error,
                           choice=choice or {"sample": True})
    return Response(page, status=status)


@blueprint.route("/templates/<path:name>/edit")
@requires("templates:edit")
def templates_edit(name: str) -> Response:
    return _editor(name, version=request.args.get("version", type=int))


@blueprint.route("/templates/<path:name>/edit", methods=["POST"])
@requires("templates:edit")
def templates_save(name: str) -> Response:
    source = request.form.get("source", "").replace("\r\n", "\n")
    based_on = request.form.get("based_on", type=int)
    into = request.form.get("draft", type=int)  # the draft being edited (else: a new draft)
    try:
        with engine().db.session() as session:
            saved = save_draft(session, engine().settings, name, source, staff().name, version=into)
    except ValidationFailed as failed:
        return _editor(name, version=based_on, source=source, problems=failed.problems, status=422)
    except (WorkflowError, LookupError, TemplateStoreError) as refused:
        flash(str(refused), "error")
        return _editor(name, version=based_on, source=source, status=409)
    flash(_("Version %(version)s saved as a draft.", version=saved.version))
    return redirect(url_for("console.templates_edit", name=name, version=saved.version))  # type: ignore[return-value]


@blueprint.route("/templates/<path:name>/check", methods=["POST"])
@requires("templates:edit")
def templates_check(name: str) -> Response:
    source = request.form.get("source", "").replace("\r\n", "\n")
    with engine().db.session() as session:
        try:
            problems = check_source(session, engine().settings, name, source)
        except (LookupError, TemplateStoreError):
            abort(404)
    return jsonify([problem.to_json() for problem in problems])


def _choice() -> dict[str, Any]:
    customer = request.form.get("customer", "").strip()[:64]
    return {"customer": customer, "cycle": request.form.get("cycle", "").strip()[:7], "sample": not customer,
            "variants": request.form.get("variants") == "1"}


@blueprint.route("/templates/<path:name>/preview", methods=["POST"])
@requires("templates:view")
def templates_preview(name: str) -> Response:
    choice = _choice()
    source = request.form.get("source")
    options = {"customer": choice["customer"] or None, "cycle": choice["cycle"] or None, "sample": choice["sample"],
               "all_variants": choice["variants"]}
    preview, problem = None, None
    try:
        if source is None:
            bundle = render_bundle(engine(), name, version=request.form.get("version", type=int), **options)
        else:
            bundle = render_source(engine(), name, source.replace("\r\n", "\n"), **options)
        preview = keep_preview(engine(), bundle)
    except PREVIEW_ERRORS as failed:
        problem = str(failed)
    if request.headers.get("X-Fragment") or request.headers.get("HX-Request"):
        page = render_template("console/studio/templates/_preview.html", preview=preview, preview_error=problem, name=name)
        return Response(page, status=200 if preview else 422)
    return _editor(name, version=request.form.get("based_on", type=int), source=source, preview=preview,
                   preview_error=problem, choice=choice, status=200 if preview else 422)


@blueprint.route("/template-previews/customers")
@requires("templates:view")
def templates_preview_customers() -> str:
    """The choices of the preview's customer field: for staff who may see customers, those
    whose external id, name, e-mail or phone ``q`` finds (shown with their name); for the
    others, those whose external id contains ``q`` (their external id and language only)."""
    query = request.args.get("q", "").strip()[:64]
    named = staff().can("customers:view")
    found = find_customers(engine(), query, limit=CUSTOMER_CHOICES if named else 50)
    if not named:
        found = [c for c in found if query.lower() in c.external_id.lower()]
    return render_template("console/studio/templates/_customers.html", found=found[:CUSTOMER_CHOICES], named=named)


@blueprint.route("/template-previews/<token>/<part>")
@requires("templates:view")
def templates_preview_part(token: str, part: str) -> Response:
    suffix = part[part.rfind("."):] if "." in part else ""
    if suffix not in PART_TYPES:
        abort(404)
    try:
        data = kept_part(engine(), token, part)
    except LookupError:
        abort(404)
    response = Response(data, mimetype=PART_TYPES[suffix])
    if suffix == ".html":  # the customer's e-mail: no scripts, no requests, only in a sandboxed frame of this site
        response.headers["Content-Security-Policy"] = BODY_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    if suffix == ".pdf":
        response.headers["Content-Disposition"] = "inline; filename=preview.pdf"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _step(name: str, action: Any, done: str, **kwargs: Any) -> Response:
    version = request.form.get("version", type=int)
    if version is None:
        abort(400)
    try:
        with engine().db.session() as session:
            action(session, name, version, staff().name, **kwargs)
    except ValidationFailed as failed:
        flash(_("Version %(version)s has errors; fix them in a new draft.", version=version), "error")
        for problem in failed.problems[:5]:
            flash(str(problem), "error")
        return _page(name)
    except (WorkflowError, LookupError, TemplateStoreError) as refused:
        flash(str(refused), "error")  # the engine's reason (maker-checker, wrong state, …)
        return _page(name)
    flash(done % {"version": version})
    return _page(name)


@blueprint.route("/templates/<path:name>/submit", methods=["POST"])
@requires("templates:submit")
def templates_submit(name: str) -> Response:
    def run(session: Any, name: str, version: int, user: str) -> None:
        submit(session, engine().settings, name, version, user)

    return _step(name, run, _("Version %(version)s is in review; another person approves it."))


def _effective(value: str) -> dt.datetime | None:
    """A datetime-local of the viewer's zone as naive UTC (empty: now)."""
    if not value:
        return None
    try:
        local = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    aware = local.replace(tzinfo=viewer_zone()) if local.tzinfo is None else local
    return aware.astimezone(dt.timezone.utc).replace(tzinfo=None)


@blueprint.route("/templates/<path:name>/approve", methods=["POST"])
@requires("templates:approve")
@fresh
def templates_approve(name: str) -> Response:
    effective = request.form.get("effective_from", "").strip()
    moment = _effective(effective)
    if effective and moment is None:
        flash(_("The effective date is not a date and time."), "error")
        return _page(name)

    comment = request.form.get("comment", "").strip() or None

    def run(session: Any, name: str, version: int, user: str) -> None:
        approve(session, engine().settings, name, version, user, effective_from=moment, comment=comment)

    return _step(name, run, _("Version %(version)s approved."))


@blueprint.route("/templates/<path:name>/reject", methods=["POST"])
@requires("templates:approve")
@fresh
def templates_reject(name: str) -> Response:
    reason = request.form.get("comment", "").strip()
    if not reason:
        flash(_("Say what must change: a rejection needs a comment."), "error")
        return _page(name)
    return _step(name, lambda session, name, version, user: reject(session, name, version, user, reason),
                 _("Version %(version)s sent back to draft."))


@blueprint.route("/templates/<path:name>/retire", methods=["POST"])
@requires("templates:approve")
@fresh
def templates_retire(name: str) -> Response:
    return _step(name, lambda session, name, version, user: retire(session, name, version, user),
                 _("Version %(version)s retired."))


@blueprint.route("/templates/<path:name>/proof", methods=["POST"])
@requires("templates:edit")
def templates_proof(name: str) -> Response:
    seed = request.form.get("seed", "")
    version = request.form.get("version", type=int)
    customer = request.form.get("customer", "").strip() or None
    try:
        bundle = render_bundle(engine(), name, version=version, customer=customer, sample=customer is None)
        result = send_proof(engine(), bundle, seed, staff().name)
    except (*PREVIEW_ERRORS, ProofError) as failed:
        flash(str(failed), "error")
        return _page(name)
    flash(_("Proof of version %(version)s sent to %(sent)s address(es) of seed list %(seed)s.",
            version=bundle.version, sent=result.sent, seed=seed))
    for reason in result.failed:
        flash(_("Not sent: %(reason)s", reason=reason), "error")
    return _page(name)

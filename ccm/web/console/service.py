"""The customer service desk: find a customer, their profile and one timeline of what was
sent to them and what they did; change a consent or their preferences on their behalf
(by phone), send a statement again, erase them; and the follow-up queue (replies that are
no keyword, complaints, statements that reached no one).

What a message was sent as comes from the engine's stores (``ccm.feedback.sent_message``):
an e-mail's HTML body is served on its own, with a CSP that allows no script and no remote
content (a tracking pixel does not count an open here), into an iframe ``sandbox=""``.
Nothing a customer wrote or was sent is rendered as a template here. Audit entries and
logs name a customer by external id only.
"""
from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.feedback import (
    CONSENT_CHANNELS, PreferenceError, TaskError, archived_pdf, assign_task, change_consent, change_preferences, close_task, collect_tasks,
    comment_task, customer_by_external_id, erase_customer, find_customers, get_task, list_tasks, profile, sent_message,
)
from ccm.models import CHANNEL_KINDS, PURPOSES
from ccm.runs import ArchiveError, ResendError, resend_statement
from ccm.staff import grants, list_roles, list_users
from ccm.web.console import audit, blueprint, engine, fresh, requires, staff

BODY_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'self'; sandbox")
HISTORY = 20  # timeline entries shown with a task
SEARCH_LIMIT = 50  # customers a search shows at most


# --------------------------------------------------------------------------- customers


@blueprint.route("/customers")
@requires("customers:view")
def customers() -> str:
    query = request.args.get("q", "").strip()[:200]
    found = find_customers(engine(), query, limit=SEARCH_LIMIT) if query else []
    return render_template("console/service/search.html", query=query, found=found, limit=SEARCH_LIMIT)


def _profile_or_404(external_id: str):  # type: ignore[no-untyped-def]
    shown = profile(engine(), external_id)
    if shown is None or shown.customer.erased_at is not None:
        abort(404)
    return shown


@blueprint.route("/customers/<external_id>")
@requires("customers:view")
def customers_profile(external_id: str) -> str:
    shown = _profile_or_404(external_id)
    tasks = list_tasks(engine(), state="open", customer_id=shown.customer.id)
    feedback = engine().settings["feedback"]
    chosen = shown.customer.preferences or {}
    return render_template("console/service/profile.html", profile=shown, customer=shown.customer, tasks=tasks,
                           channels=CONSENT_CHANNELS, channel_kinds=CHANNEL_KINDS, purposes=PURPOSES, topics=feedback["topics"],
                           frequencies=feedback["frequencies"], chosen_topics=chosen.get("topics", feedback["topics"]),
                           chosen_frequency=chosen.get("frequency", feedback["frequencies"][0]))


@blueprint.route("/customers/<external_id>/consent", methods=["POST"])
@requires("customers:edit")
def customers_consent(external_id: str) -> Response:
    channel, purpose = request.form.get("channel", ""), request.form.get("purpose", "")
    granted = request.form.get("granted") == "yes"
    try:
        done = change_consent(engine(), external_id, channel, purpose, granted, staff().name)
    except LookupError:
        abort(404)
    except PreferenceError as exc:
        flash(str(exc), "error")
    else:
        if done.changed:
            audit("consent.change", "customer", external_id, channel=channel, purpose=purpose, granted=granted)
        flash(_("Consent recorded as given by phone.") if granted else _("Consent withdrawn, recorded as told by phone."))
    return redirect(url_for("console.customers_profile", external_id=external_id, _anchor="consents"))


@blueprint.route("/customers/<external_id>/preferences", methods=["POST"])
@requires("customers:edit")
def customers_preferences(external_id: str) -> Response:
    form = request.form
    try:
        done = change_preferences(engine(), external_id, staff().name, paperless=bool(form.get("paperless")),
                                  preferred_channel=form.get("preferred_channel") or None,
                                  topics=form.getlist("topics"), frequency=form.get("frequency", ""))
    except LookupError:
        abort(404)
    except PreferenceError as exc:
        flash(str(exc), "error")
    else:
        if done.changed:
            audit("preferences.change", "customer", external_id, changed=", ".join(done.changed))
        flash(_("Preferences saved."))
    return redirect(url_for("console.customers_profile", external_id=external_id, _anchor="preferences"))


# --------------------------------------------------------------------------- what was sent


@blueprint.route("/customers/<external_id>/messages/<int:message_id>")
@requires("customers:view")
def customers_message(external_id: str, message_id: int) -> str:
    customer = customer_by_external_id(engine(), external_id)
    sent = sent_message(engine(), external_id, message_id)
    if customer is None or sent is None:
        abort(404)
    return render_template("console/service/message.html", customer=customer, sent=sent,
                           text=sent.body("plain"), has_html=sent.body("html") is not None)


@blueprint.route("/customers/<external_id>/messages/<int:message_id>/body")
@requires("customers:view")
def customers_message_body(external_id: str, message_id: int) -> Response:
    """The e-mail's HTML body as sent, alone, for a sandboxed iframe."""
    sent = sent_message(engine(), external_id, message_id)
    html = sent.body("html") if sent is not None else None
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@blueprint.after_app_request
def _body_policy(response: Response) -> Response:
    """The console's CSP is set on every console response; an e-mail body gets its own."""
    if request.endpoint == "console.customers_message_body" and response.status_code == 200:
        response.headers["Content-Security-Policy"] = BODY_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@blueprint.route("/customers/<external_id>/messages/<int:message_id>/pdf")
@requires("customers:view")
def customers_pdf(external_id: str, message_id: int) -> Response:
    try:
        data = archived_pdf(engine(), external_id, message_id)
    except ArchiveError:
        abort(404)
    if data is None:
        abort(404)
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="statement-{message_id}.pdf"'
    return response


@blueprint.route("/customers/<external_id>/messages/<int:message_id>/resend", methods=["POST"])
@requires("customers:resend")
@fresh
def customers_resend(external_id: str, message_id: int) -> Response:
    if sent_message(engine(), external_id, message_id) is None:
        abort(404)
    try:
        done = resend_statement(engine(), message_id, staff().name)
    except ResendError as exc:
        flash(str(exc), "error")
    else:
        audit("statement.resend", "customer", external_id, message=message_id, new_message=done.message_id,
              channel=done.channel, state=done.state)
        flash(_("The statement was sent again by %(channel)s (message %(id)s: %(state)s).",
                channel=done.channel, id=done.message_id, state=done.state))
    return redirect(url_for("console.customers_profile", external_id=external_id, _anchor="timeline"))


# --------------------------------------------------------------------------- erasure


@blueprint.route("/customers/<external_id>/erase", methods=["GET", "POST"])
@requires("customers:erase")
@fresh
def customers_erase(external_id: str) -> Response | str:
    customer = customer_by_external_id(engine(), external_id)
    if customer is None or customer.erased_at is not None:
        abort(404)
    if request.method == "GET":
        return render_template("console/service/erase.html", customer=customer)
    if request.form.get("confirm", "").strip() != external_id:
        flash(_("Type the customer's id exactly to confirm the erasure."), "error")
        return render_template("console/service/erase.html", customer=customer), 400  # type: ignore[return-value]
    try:
        done = erase_customer(engine(), external_id, actor=staff().name, via="console")  # audited in its own transaction
    except LookupError as exc:  # ErasureError: erased already, or a message is being delivered
        flash(str(exc), "error")
        return redirect(url_for("console.customers_profile", external_id=external_id))
    return render_template("console/service/erased.html", report=done.report())


# --------------------------------------------------------------------------- follow-up tasks


@blueprint.route("/tasks")
@requires("tasks:view")
def tasks() -> str:
    collect_tasks(engine())
    show = request.args.get("show", "open")
    mine = staff().name if show == "mine" else None
    rows = list_tasks(engine(), state="closed" if show == "closed" else "open", assignee=mine,
                      unassigned=show == "unassigned", kind=request.args.get("kind") or None)
    return render_template("console/service/tasks.html", rows=rows, show=show)


def _task_or_404(task_id: int):  # type: ignore[no-untyped-def]
    try:
        return get_task(engine(), task_id)
    except TaskError:
        abort(404)


@blueprint.route("/tasks/<int:task_id>")
@requires("tasks:view")
def tasks_detail(task_id: int) -> str:
    row = _task_or_404(task_id)
    history = profile(engine(), row.external_id, limit=HISTORY) if row.external_id else None
    return render_template("console/service/task.html", row=row, task=row.task, history=history, users=_workers())


def _workers() -> list[str]:
    """The active users who may work tasks (whom a task can be given to)."""
    roles = {role.name for role in list_roles(engine()) if grants(role.permissions, "tasks:work")}
    return [user["name"] for user in list_users(engine()) if user["active"] and roles & set(user["roles"])]


def _task_change(task_id: int, action: str, change, done: str = "", **details) -> Response:  # type: ignore[no-untyped-def]
    _task_or_404(task_id)
    try:
        change()
    except TaskError as exc:
        flash(str(exc), "error")
    else:
        audit(action, "task", str(task_id), **details)
        if done:
            flash(done)
    return redirect(url_for("console.tasks_detail", task_id=task_id))


@blueprint.route("/tasks/<int:task_id>/assign", methods=["POST"])
@requires("tasks:work")
def tasks_assign(task_id: int) -> Response:
    assignee = staff().name if request.form.get("to") == "me" else (request.form.get("assignee") or None)
    if assignee is not None and assignee not in _workers():
        flash(_("No such user."), "error")
        return redirect(url_for("console.tasks_detail", task_id=task_id))
    return _task_change(task_id, "task.assign", lambda: assign_task(engine(), task_id, assignee),
                        _("Task given to %(name)s.", name=assignee) if assignee else _("Task given back to the queue."),
                        assignee=assignee or "")


@blueprint.route("/tasks/<int:task_id>/comment", methods=["POST"])
@requires("tasks:work")
def tasks_comment(task_id: int) -> Response:
    text = request.form.get("text", "")
    return _task_change(task_id, "task.comment", lambda: comment_task(engine(), task_id, staff().name, text),
                        _("Comment added."))


@blueprint.route("/tasks/<int:task_id>/close", methods=["POST"])
@requires("tasks:work")
def tasks_close(task_id: int) -> Response:
    return _task_change(task_id, "task.close", lambda: close_task(engine(), task_id, staff().name), _("Task closed."))

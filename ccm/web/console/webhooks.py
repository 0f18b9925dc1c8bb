"""Outbound webhooks (``webhooks:manage``): the subscriptions with their deliveries by state
and the last ones, a form to add one (its signing secret shown once, on the answer to the
form, never kept in the session), and disable, enable, test and delete. Every change is
audited by ``ccm.outbound``."""
from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.outbound import (EVENT_TYPES, SubscriptionError, change_subscription, create_subscription, delete_subscription,
                          deliveries_after, send_test, subscriptions_after)
from ccm.web.console import blueprint, engine, fresh, requires, staff

SHOWN_DELIVERIES = 5
MAX_SUBSCRIPTIONS = 200


def _page(status: int = 200, **extra: Any) -> tuple[str, int]:
    found = subscriptions_after(engine(), None, MAX_SUBSCRIPTIONS)
    recent = {s.id: deliveries_after(engine(), s.id, None, SHOWN_DELIVERIES) for s in found}
    types = {name: text for name, text in EVENT_TYPES.items() if name != "webhook.test"}
    return render_template("console/webhooks.html", subscriptions=found, recent=recent, event_types=types, **extra), status


@blueprint.route("/webhooks")
@requires("webhooks:manage")
def webhooks() -> tuple[str, int]:
    return _page()


@blueprint.route("/webhooks/new", methods=["POST"])
@requires("webhooks:manage")
@fresh
def webhooks_create() -> tuple[str, int]:
    form = request.form
    try:
        created = create_subscription(engine(), form.get("name", ""), form.get("url", ""), form.getlist("event_types"),
                                      staff().name)
    except SubscriptionError as exc:
        return _page(422 if exc.status == 422 else exc.status, error=str(exc), entered=form)
    return _page(created=created)


@blueprint.route("/webhooks/<int:subscription_id>/active", methods=["POST"])
@requires("webhooks:manage")
def webhooks_active(subscription_id: int) -> Response:
    active = request.form.get("active") == "1"
    try:
        changed = change_subscription(engine(), subscription_id, staff().name, active=active)
        flash(_("%(name)s is enabled.", name=changed.name) if active else _("%(name)s is disabled.", name=changed.name))
    except SubscriptionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.webhooks"))


@blueprint.route("/webhooks/<int:subscription_id>/test", methods=["POST"])
@requires("webhooks:manage")
def webhooks_test(subscription_id: int) -> Response:
    try:
        send_test(engine(), subscription_id, staff().name)
        flash(_("A test event is queued; it goes out with the next deliveries."))
    except SubscriptionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.webhooks"))


@blueprint.route("/webhooks/<int:subscription_id>/delete", methods=["POST"])
@requires("webhooks:manage")
@fresh
def webhooks_delete(subscription_id: int) -> Response:
    try:
        delete_subscription(engine(), subscription_id, staff().name)
        flash(_("The subscription and its deliveries are deleted."))
    except SubscriptionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.webhooks"))

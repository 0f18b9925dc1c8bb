"""Users and roles (``users:manage``): make a user with a first password, change their
roles, disable or enable them (which also lifts a lockout), remove a second factor; a
role's permissions as a list of boxes. Every change is audited by ``ccm.staff``."""
from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.staff import (PERMISSIONS, UnknownPermission, UserError, create_user, list_roles, list_users, remove_totp, set_active,
                       set_role_permissions, set_roles)
from ccm.web.console import blueprint, engine, fresh, requires, staff


@blueprint.route("/users")
@requires("users:manage")
def users() -> str:
    return render_template("console/users.html", users=list_users(engine()), roles=list_roles(engine()), permissions=PERMISSIONS)


@blueprint.route("/users/new", methods=["POST"])
@requires("users:manage")
@fresh
def users_create() -> Response:
    form = request.form
    try:
        made = create_user(engine(), form.get("name", "").strip().lower(), form.get("password", ""), form.getlist("roles"),
                           actor=staff().name, display_name=form.get("display_name", "").strip()[:200])
        flash(_("User %(name)s created.", name=made.name))
    except UserError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.users"))


@blueprint.route("/users/<name>/roles", methods=["POST"])
@requires("users:manage")
@fresh
def users_roles(name: str) -> Response:
    try:
        set_roles(engine(), name, request.form.getlist("roles"), actor=staff().name)
        flash(_("Roles of %(name)s saved.", name=name))
    except UserError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.users"))


@blueprint.route("/users/<name>/active", methods=["POST"])
@requires("users:manage")
@fresh
def users_active(name: str) -> Response:
    active = request.form.get("active") == "1"
    if name == staff().name and not active:
        flash(_("You cannot disable yourself."), "error")
        return redirect(url_for("console.users"))
    try:
        set_active(engine(), name, active, actor=staff().name)
        flash(_("%(name)s can sign in again.", name=name) if active else _("%(name)s is disabled.", name=name))
    except UserError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.users"))


@blueprint.route("/users/<name>/totp", methods=["POST"])
@requires("users:manage")
@fresh
def users_reset_totp(name: str) -> Response:
    try:
        remove_totp(engine(), name, actor=staff().name)
        flash(_("The second factor of %(name)s is removed.", name=name))
    except UserError as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.users"))


@blueprint.route("/roles/<role>", methods=["POST"])
@requires("users:manage")
@fresh
def roles_permissions(role: str) -> Response:
    try:
        set_role_permissions(engine(), role, request.form.getlist("permissions"), actor=staff().name)
        flash(_("Permissions of %(role)s saved.", role=role))
    except (UnknownPermission, UserError) as exc:
        flash(str(exc), "error")
    return redirect(url_for("console.users") + "#roles")

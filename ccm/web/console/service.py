"""The customer service desk (being built)."""
from __future__ import annotations

from flask import render_template

from ccm.web.console import blueprint, requires


@blueprint.route("/customers")
@requires("customers:view")
def customers() -> str:
    return render_template("console/placeholder.html", title="Customers", rows=[])


@blueprint.route("/tasks")
@requires("tasks:view")
def tasks() -> str:
    return render_template("console/placeholder.html", title="Tasks", rows=[])

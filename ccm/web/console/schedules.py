"""The scheduler desk (being built)."""
from __future__ import annotations

from flask import render_template

from ccm.web.console import blueprint, requires


@blueprint.route("/schedules")
@requires("schedules:view")
def schedules() -> str:
    return render_template("console/placeholder.html", title="Schedules", rows=[])

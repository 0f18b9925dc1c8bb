"""The billing desk (being built): runs."""
from __future__ import annotations

from flask import render_template

from ccm.runs import list_runs
from ccm.web.console import blueprint, engine, requires


@blueprint.route("/runs")
@requires("runs:view")
def runs() -> str:
    with engine().db.reader() as session:
        rows = list_runs(session, engine().settings)[:200]
    return render_template("console/placeholder.html", title="Runs", rows=[f"{r.id} {n} {r.cycle} {s}" for r, n, s in rows])


@blueprint.route("/runs/<int:run_id>")
@requires("runs:view")
def run(run_id: int) -> str:
    return render_template("console/placeholder.html", title=f"Run {run_id}", rows=[])

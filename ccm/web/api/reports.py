"""Reports: what a run or a communication's runs cost, who responded, what they earned
(per channel, variant, value tier, segment and run), and an experiment's result: each
variant's conversion rate against the hold-out's and the best variant's, with lift and a
two-proportion z-test (``ccm.feedback`` response reports)."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from ccm.feedback import communication_report, response_report
from ccm.web.api.auth import engine, require
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports of runs, communications and experiments")

COUNTS = ("messages", "sent", "delivered", "opened", "clicked", "responded", "converted", "unsubscribed", "bounced", "complained")
RATES = ("opened_rate", "clicked_rate", "responded_rate", "converted_rate", "unsubscribed_rate", "bounced_rate")


RowOut = ma.Schema.from_dict({
    **{name: ma.fields.Integer(required=True) for name in COUNTS},
    "cost": ma.fields.String(required=True, metadata={"description": "sent x the channel's cost, in the report's currency"}),
    "revenue": ma.fields.String(required=True, metadata={"description": "conversions and payments attributed to the messages"}),
    "roi": ma.fields.Float(required=True, allow_none=True, metadata={"description": "(revenue - cost) / cost; null without cost"}),
    **{name: ma.fields.Float(required=True, allow_none=True, metadata={"description": "of the messages sent"}) for name in RATES},
}, name="ReportRow")


class ComparisonOut(ma.Schema):
    variant = ma.fields.String(required=True)
    against = ma.fields.String(required=True, metadata={"description": "holdout, or the best variant"})
    rate = ma.fields.Float(required=True, allow_none=True, metadata={"description": "the variant's conversion rate"})
    other_rate = ma.fields.Float(required=True, allow_none=True)
    lift = ma.fields.Float(required=True, allow_none=True, metadata={"description": "rate / other rate - 1 (0.25: 25% better)"})
    z = ma.fields.Float(required=True, allow_none=True)
    p_value = ma.fields.Float(required=True, allow_none=True, metadata={"description": "two-sided"})
    enough_data = ma.fields.Boolean(required=True, metadata={"description": "both groups large enough for the z-test"})
    significant = ma.fields.Boolean(required=True, metadata={"description": "enough data and p below 0.05"})


class ExperimentOut(ma.Schema):
    name = ma.fields.String(required=True)
    variants = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer()),
                              required=True, metadata={"description": "variant (or holdout) -> n, converted, clicked"})
    winner = ma.fields.String(required=True, allow_none=True,
                              metadata={"description": "the best variant, when it beats the others and the hold-out significantly"})
    exposed = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                             metadata={"description": "variant -> customers shown it in real time (decisions of the API)"})
    exposed_converted = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                                       metadata={"description": "variant -> of those shown it, customers who converted after "
                                                                "it (last touch within [feedback] attribution_days)"})
    versus_holdout = ma.fields.List(ma.fields.Nested(ComparisonOut), required=True)
    versus_best = ma.fields.List(ma.fields.Nested(ComparisonOut), required=True)


class ReportOut(ma.Schema):
    title = ma.fields.String(required=True)
    runs = ma.fields.List(ma.fields.Integer(), required=True)
    currency = ma.fields.String(required=True)
    total = ma.fields.Nested(RowOut, required=True)
    by = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(RowOut)),
                        required=True, metadata={"description": "dimension (channel, variant, tier, segment, run) -> group -> measures"})
    experiments = ma.fields.List(ma.fields.Nested(ExperimentOut), required=True)
    bots_excluded = ma.fields.Integer(required=True, metadata={"description": "opens and clicks of bots left out"})
    other_currencies = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True,
                                      metadata={"description": "revenue in currencies other than the report's, not converted"})
    curve = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.List(ma.fields.Float())), required=True,
                           metadata={"description": "event type -> [hours since the first send, cumulative count]"})


def _settings() -> tuple[dict[str, str], list[str]]:
    settings = engine().settings
    return settings["costs"], settings["feedback"]["receipt_channels"]


def _communication_report(name: str) -> Any:
    costs, receipts = _settings()
    try:
        with engine().db.reader() as session:
            return communication_report(session, name, costs, receipts)
    except LookupError as exc:
        fail(404, str(exc).strip("'\""), field="name")


@blueprint.get("/runs/<int(max=2147483647):run_id>")
@require(blueprint, "reports:view")
@errors(blueprint, 404)
@blueprint.response(200, ReportOut)
def run(run_id: int):  # type: ignore[no-untyped-def]
    """A run's report: totals, per channel, variant, value tier and segment, its experiments."""
    costs, receipts = _settings()
    try:
        with engine().db.reader() as session:
            return response_report(session, run_id, costs, receipts).to_json()
    except LookupError as exc:
        fail(404, str(exc).strip("'\""), field="run_id")


@blueprint.get("/communications/<name>")
@require(blueprint, "reports:view")
@errors(blueprint, 404)
@blueprint.response(200, ReportOut)
def communication(name: str):  # type: ignore[no-untyped-def]
    """A communication's report over all its runs (with a row per run) and its experiments,
    with the customers each variant was shown to in real time; 404 before its first run."""
    return _communication_report(name).to_json()


@blueprint.get("/communications/<name>/experiments/<experiment>")
@require(blueprint, "reports:view")
@errors(blueprint, 404)
@blueprint.response(200, ExperimentOut)
def experiment(name: str, experiment: str):  # type: ignore[no-untyped-def]
    """An experiment's result over the communication's runs: each variant against the
    hold-out and against the best, with lift, p-value and significance, and the winner."""
    report = _communication_report(name)
    found = next((item for item in report.experiments if item.name == experiment), None)
    if found is None:
        known = ", ".join(item.name for item in report.experiments) or "none"
        fail(404, f"no experiment {experiment} in the report of {name} (known: {known})", field="experiment")
    return found.to_json()

"""Decisions in real time: what a slot of a communication shows one customer now (the
website's banner, the call-centre desktop's next best offer), from the same decisions the
batch uses, with its trace and the customer's computed fields; the exposure is recorded
for the experiment's report."""
from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from ccm.decisions import decide_now
from ccm.web.api.auth import caller_name, engine, require
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("decisions", __name__, url_prefix="/api/v1", description="Decisions in real time")

CUSTOMER_FIELDS = ("value_tier", "abc_code", "lifecycle_stage", "rfm", "engagement_score")


class Trace(ma.Schema):
    decision = ma.fields.String(required=True, metadata={"description": "communication/slot"})
    version = ma.fields.Integer(required=True)
    rule = ma.fields.String(required=True, metadata={"description": "the rule that hit, or default"})
    why = ma.fields.String(required=True)
    content = ma.fields.String(allow_none=True, required=True)
    experiment = ma.fields.String(allow_none=True, required=True)
    variant = ma.fields.String(allow_none=True, required=True, metadata={"description": "a variant, or holdout"})


class DecisionOut(ma.Schema):
    external_id = ma.fields.String(required=True)
    communication = ma.fields.String(required=True)
    slot = ma.fields.String(required=True)
    content = ma.fields.String(allow_none=True, required=True, metadata={"description": "the content block chosen"})
    trace = ma.fields.Nested(Trace, required=True)
    customer = ma.fields.Dict(required=True, metadata={"description": "tier, ABC code, lifecycle stage, RFM, engagement"})


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value) if isinstance(value, decimal.Decimal) else value


@blueprint.get("/customers/<external_id>/decisions/<communication>/<slot>")
@require(blueprint, "decisions:view")
@errors(blueprint, 404)
@blueprint.response(200, DecisionOut)
def decide(external_id: str, communication: str, slot: str):  # type: ignore[no-untyped-def]
    """The content a slot gives this customer now, why, and their computed fields."""
    try:
        with engine().db.session() as session:
            decided = decide_now(session, communication, slot, external_id, via=caller_name())
    except LookupError as exc:
        fail(404, str(exc).strip("'\""))
    outcome = decided.outcome
    return {"external_id": external_id, "communication": outcome.decision.split("/", 1)[0], "slot": slot,
            "content": outcome.content, "trace": outcome.trace(),
            "customer": {name: _plain(decided.values.get(name)) for name in CUSTOMER_FIELDS}}

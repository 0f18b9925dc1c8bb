"""Communications (what is sent: templates per channel, slots, channel policy) and campaigns
(owner, goal, audience, channels, communication, schedule, dates, budget, forecast): list
and read them; create and change campaigns with the studio's checks
(``ccm.feedback.save_campaign``), audited; and a campaign's report: spend, responses,
conversions, revenue and ROI against its budget and forecast, and its experiments with
significance and lift over the hold-out."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import select

from ccm.communications import get_communication
from ccm.feedback import CampaignError, campaign_report, get_campaign, list_campaigns, save_campaign
from ccm.feedback.campaigns import CHANNELS
from ccm.models import Communication
from ccm.models.campaigns import Campaign
from ccm.staff import record
from ccm.web.api.auth import caller, caller_name, engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail
from ccm.web.api.reports import ExperimentOut, ReportOut
from ccm.web.api.templates import NO_NUL

blueprint = Blueprint("campaigns", __name__, url_prefix="/api/v1", description="Communications, campaigns and their reports")

class CommunicationOut(ma.Schema):
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "statement, bill, marketing, ..."})
    title = ma.fields.String(required=True)
    critical = ma.fields.Boolean(required=True, metadata={"description": "owed to the customer: a failed channel falls back"})
    config = ma.fields.Dict(required=True, metadata={"description": "templates per channel, content slots, channel policy, audience"})
    created_at = UtcDateTime(required=True)


def _amount(description: str) -> ma.fields.String:
    return ma.fields.String(allow_none=True, load_default=None, validate=ma.validate.Regexp(r"^\d{1,12}(\.\d{1,2})?$"),
                            metadata={"description": f"{description}: an amount such as 1500.00, up to 12 digits before the point"})


class CampaignChange(ma.Schema):
    """A campaign as the studio's form takes it (its checks apply: the communication, the
    audience segment and the schedule exist, dates in order, a currency code)."""

    title = ma.fields.String(load_default="", validate=[ma.validate.Length(max=200), NO_NUL])
    owner = ma.fields.String(load_default=None, validate=[ma.validate.Length(1, 64), NO_NUL],
                             metadata={"description": "who answers for it; default the caller's account"})
    goal = ma.fields.String(load_default="", validate=[ma.validate.Length(max=5000), NO_NUL])
    communication = ma.fields.String(required=True, validate=[ma.validate.Length(1, 100), NO_NUL])
    audience = ma.fields.String(load_default=None, allow_none=True, validate=[ma.validate.Length(max=100), NO_NUL],
                                metadata={"description": "a segment; none: the communication's own audience"})
    channels = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(CHANNELS)), required=True,
                              validate=ma.validate.Length(1, len(CHANNELS)))
    schedule = ma.fields.String(load_default=None, allow_none=True, validate=[ma.validate.Length(max=100), NO_NUL],
                                metadata={"description": "a schedule's name"})
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(load_default=None, allow_none=True)
    budget = _amount("what it may spend")
    currency = ma.fields.String(load_default=None, validate=ma.validate.Regexp(r"^[A-Za-z]{3}$"),
                                metadata={"description": "ISO 4217; default the currency of [costs]"})
    forecast_responses = ma.fields.Integer(load_default=None, allow_none=True, validate=ma.validate.Range(0, 10 ** 9))
    forecast_revenue = _amount("the revenue expected")


class NewCampaign(CampaignChange):
    name = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,99}$"),
                            metadata={"description": "lower-case letters, digits and '-'"})


class CampaignOut(ma.Schema):
    name = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    owner = ma.fields.String(required=True)
    goal = ma.fields.String(required=True)
    communication = ma.fields.String(required=True)
    audience = ma.fields.String(required=True, allow_none=True)
    channels = ma.fields.List(ma.fields.String(), required=True)
    schedule = ma.fields.String(required=True, allow_none=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True, allow_none=True)
    budget = ma.fields.Decimal(as_string=True, required=True, allow_none=True)
    currency = ma.fields.String(required=True)
    forecast_responses = ma.fields.Integer(required=True, allow_none=True)
    forecast_revenue = ma.fields.Decimal(as_string=True, required=True, allow_none=True)
    winner_experiment = ma.fields.String(required=True, allow_none=True,
                                         metadata={"description": "the experiment whose winner goes to the rest by itself"})
    winner_after_hours = ma.fields.Integer(required=True, allow_none=True)
    winner_outcome = ma.fields.String(required=True, allow_none=True, metadata={"description": "what that rule did or waits for"})
    created_by = ma.fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class RunRef(ma.Schema):
    id = ma.fields.Integer(required=True)
    cycle = ma.fields.String(required=True)


class CampaignReportOut(ma.Schema):
    campaign = ma.fields.Nested(CampaignOut, required=True)
    runs = ma.fields.List(ma.fields.Nested(RunRef), required=True,
                          metadata={"description": "the runs of its communication on its dates"})
    currency = ma.fields.String(required=True)
    spend = ma.fields.Decimal(as_string=True, places=2, required=True)
    revenue = ma.fields.Decimal(as_string=True, places=2, required=True)
    responses = ma.fields.Integer(required=True)
    conversions = ma.fields.Integer(required=True)
    roi = ma.fields.Float(required=True, allow_none=True, metadata={"description": "(revenue - spend) / spend"})
    budget_used = ma.fields.Float(required=True, allow_none=True, metadata={"description": "spend / budget (1.0: all of it)"})
    roi_on_budget = ma.fields.Float(required=True, allow_none=True, metadata={"description": "(revenue - budget) / budget"})
    responses_of_forecast = ma.fields.Float(required=True, allow_none=True, metadata={"description": "responses / forecast"})
    revenue_of_forecast = ma.fields.Float(required=True, allow_none=True, metadata={"description": "revenue / forecast"})
    experiments = ma.fields.List(ma.fields.Nested(ExperimentOut), required=True)
    report = ma.fields.Nested(ReportOut, required=True, allow_none=True, metadata={"description": "null before its first run"})


# --------------------------------------------------------------------------- communications


@blueprint.get("/communications")
@require(blueprint, "campaigns:view")
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(CommunicationOut, "CommunicationPage"))
def communications(args: dict):  # type: ignore[no-untyped-def]
    """Every communication by id, in pages."""
    query = select(Communication).order_by(Communication.id).limit(args["limit"] + 1)
    if args["after"] is not None:
        query = query.where(Communication.id > args["after"])
    with engine().db.reader() as session:
        found = list(session.scalars(query))
        session.expunge_all()
    return page(found, args["limit"], lambda item: item.id)


@blueprint.get("/communications/<name>")
@require(blueprint, "campaigns:view")
@errors(blueprint, 404)
@blueprint.response(200, CommunicationOut)
def communication(name: str):  # type: ignore[no-untyped-def]
    """A communication: its templates per channel, content slots, channel policy, audience."""
    with engine().db.reader() as session:
        try:
            found = get_communication(session, name)
        except LookupError as exc:
            fail(404, str(exc).strip("'\""), field="name")
        session.expunge(found)
    return found


# --------------------------------------------------------------------------- campaigns


def _position(campaigns: list[Any], after: int | None) -> list[tuple[int, Any]]:
    numbered = list(enumerate(campaigns))
    return numbered[after + 1:] if after is not None else numbered


@blueprint.get("/campaigns")
@require(blueprint, "campaigns:view")
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(CampaignOut, "CampaignPage"))
def campaigns(args: dict):  # type: ignore[no-untyped-def]
    """Every campaign, the latest start first, in pages."""
    with engine().db.reader() as session:
        found = list_campaigns(session)
        session.expunge_all()
    result = page(_position(found, args["after"])[:args["limit"] + 1], args["limit"], lambda item: item[0])
    result["items"] = [item for _, item in result["items"]]
    return result


def _form(body: dict, name: str) -> dict[str, Any]:
    """The body as ``save_campaign`` takes it: texts, as the studio's form sends them."""
    text = {key: "" if value is None else str(value) for key, value in body.items() if key != "channels"}
    text["owner"] = body.get("owner") or caller().staff.name
    text["currency"] = (body.get("currency") or engine().settings["costs"].get("currency") or "")
    return {**text, "name": name, "channels": body["channels"]}


def _saved(form: dict[str, Any], *, change: bool) -> Any:
    try:
        with engine().db.session() as session:
            campaign = save_campaign(session, form, caller().staff.name, name=form["name"] if change else None)
            record(session, caller_name(), "campaign.change" if change else "campaign.create", "campaign", campaign.name,
                   budget=form.get("budget") or None, communication=form["communication"], via="api")
            session.flush()
            session.expunge(campaign)
            return campaign
    except CampaignError as exc:
        fail(422, str(exc), field=str(exc).partition(":")[0])


@blueprint.post("/campaigns")
@require(blueprint, "campaigns:edit")
@idempotent(blueprint)
@errors(blueprint, 400, 409, 422)
@blueprint.arguments(NewCampaign)
@blueprint.response(201, CampaignOut)
def create(body: dict):  # type: ignore[no-untyped-def]
    """Create a campaign; a name in use is 409, a field the studio would refuse 422 naming it."""
    with engine().db.reader() as session:
        if session.scalar(select(Campaign.id).where(Campaign.name == body["name"])) is not None:
            fail(409, f"a campaign named {body['name']} exists: change it with PUT", field="name")
    return _saved(_form(body, body.pop("name")), change=False)


def _found(name: str) -> Any:
    try:
        with engine().db.reader() as session:
            campaign = get_campaign(session, name)
            session.expunge(campaign)
            return campaign
    except LookupError as exc:
        fail(404, str(exc), field="name")


@blueprint.get("/campaigns/<name>")
@require(blueprint, "campaigns:view")
@errors(blueprint, 404)
@blueprint.response(200, CampaignOut)
def campaign(name: str):  # type: ignore[no-untyped-def]
    """A campaign's record."""
    return _found(name)


@blueprint.put("/campaigns/<name>")
@require(blueprint, "campaigns:edit")
@idempotent(blueprint)
@errors(blueprint, 400, 404, 422)
@blueprint.arguments(CampaignChange)
@blueprint.response(200, CampaignOut)
def change(body: dict, name: str):  # type: ignore[no-untyped-def]
    """Change a campaign: every field is given again, as in the studio's form."""
    _found(name)
    return _saved(_form(body, name), change=True)


def _share(value: Any, of: Any) -> float | None:
    return float(value) / float(of) if of else None


@blueprint.get("/campaigns/<name>/report")
@require(blueprint, "campaigns:view")
@errors(blueprint, 404)
@blueprint.response(200, CampaignReportOut)
def report(name: str):  # type: ignore[no-untyped-def]
    """Spend, responses, conversions, revenue and ROI of the campaign's runs, against its
    budget and forecast; its experiments with significance and lift over the hold-out; and
    the full report (by channel, variant, segment and run), null before its first run."""
    try:
        result = campaign_report(engine(), name)
    except LookupError as exc:
        fail(404, str(exc).strip("'\""), field="name")
    found = result.campaign
    return {"campaign": found, "runs": [{"id": run_id, "cycle": cycle} for run_id, cycle in result.runs],
            "currency": result.report.currency if result.report else found.currency,
            "spend": result.spend, "revenue": result.revenue, "responses": result.responses, "conversions": result.conversions,
            "roi": result.roi, "budget_used": result.budget_used, "roi_on_budget": result.roi_on_budget,
            "responses_of_forecast": _share(result.responses, found.forecast_responses),
            "revenue_of_forecast": _share(result.revenue, found.forecast_revenue),
            "experiments": [experiment.to_json() for experiment in result.experiments],
            "report": result.report.to_json() if result.report else None}

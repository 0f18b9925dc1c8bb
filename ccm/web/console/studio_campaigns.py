"""The studio's campaigns: the campaign records (owner, goal, audience, channels,
communication, schedule, dates, budget, forecast), each campaign's report while it runs and
after (spend, responses, conversions, revenue and ROI against the forecast and the budget;
the funnel; by variant, segment and channel; the experiments with significance and lift
over the hold-out), its CSV, "send the winner to the rest" now or by a rule set in advance,
and the channel-shift report.
The engine measures and plans (``ccm.feedback.campaigns``); changes and sends are audited."""
from __future__ import annotations

import datetime as dt

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.decisions import experiment_names
from ccm.feedback import (WINNER_AFTER_HOURS, CampaignError, campaign_report, channel_shift, form_choices, get_campaign, list_campaigns, report_csv,
                          save_campaign, send_winner_to_rest, set_winner_rule)
from ccm.runs import ExecutorError, PlanError, RunStateError
from ccm.web.console import audit, blueprint, engine, fresh, requires, staff

FUNNEL = ("sent", "delivered", "opened", "clicked", "converted")


@blueprint.route("/campaigns")
@requires("campaigns:view")
def campaigns() -> str:
    with engine().db.reader() as session:
        found = list_campaigns(session)
    return render_template("console/studio/campaigns/list.html", campaigns=found)


def _form_values() -> dict:
    values = {key: request.form.get(key, "") for key in ("name", "title", "owner", "goal", "communication", "audience", "schedule",
                                                         "starts_on", "ends_on", "budget", "currency", "forecast_responses",
                                                         "forecast_revenue")}
    values["channels"] = request.form.getlist("channels")
    return values


def _form_page(values: dict, *, name: str | None, problem: str | None = None, status: int = 200) -> Response:
    with engine().db.session() as session:
        choices = form_choices(session)
    page = render_template("console/studio/campaigns/form.html", values=values, name=name, choices=choices, problem=problem)
    return Response(page, status=status)


@blueprint.route("/campaigns/new", methods=["GET", "POST"])
@requires("campaigns:edit")
def campaigns_new() -> Response:
    if request.method == "GET":
        currency = engine().settings["costs"].get("currency", "")
        return _form_page({"owner": staff().name, "currency": currency, "channels": ["email"],
                           "starts_on": dt.date.today().isoformat()}, name=None)
    values = _form_values()
    try:
        with engine().db.session() as session:
            campaign = save_campaign(session, values, staff().name)
            name = campaign.name
    except CampaignError as exc:
        return _form_page(values, name=None, problem=str(exc), status=422)
    audit("campaign.create", "campaign", name, budget=values["budget"], communication=values["communication"])
    flash(_("Campaign %(name)s created.", name=name))
    return redirect(url_for("console.campaigns_show", name=name))  # type: ignore[return-value]


@blueprint.route("/campaigns/<name>/edit", methods=["GET", "POST"])
@requires("campaigns:edit")
def campaigns_edit(name: str) -> Response:
    if request.method == "GET":
        with engine().db.reader() as session:
            try:
                c = get_campaign(session, name)
            except LookupError:
                abort(404)
            values = {"name": c.name, "title": c.title, "owner": c.owner, "goal": c.goal, "communication": c.communication,
                      "audience": c.audience or "", "schedule": c.schedule or "", "channels": c.channels,
                      "starts_on": c.starts_on.isoformat(), "ends_on": c.ends_on.isoformat() if c.ends_on else "",
                      "budget": "" if c.budget is None else str(c.budget), "currency": c.currency,
                      "forecast_responses": "" if c.forecast_responses is None else str(c.forecast_responses),
                      "forecast_revenue": "" if c.forecast_revenue is None else str(c.forecast_revenue)}
        return _form_page(values, name=name)
    values = {**_form_values(), "name": name}
    try:
        with engine().db.session() as session:
            save_campaign(session, values, staff().name, name=name)
    except LookupError:
        abort(404)
    except CampaignError as exc:
        return _form_page(values, name=name, problem=str(exc), status=422)
    audit("campaign.change", "campaign", name, budget=values["budget"])
    flash(_("Campaign %(name)s saved.", name=name))
    return redirect(url_for("console.campaigns_show", name=name))  # type: ignore[return-value]


@blueprint.route("/campaigns/<name>")
@requires("campaigns:view")
def campaigns_show(name: str) -> str:
    try:
        result = campaign_report(engine(), name)
    except LookupError:
        abort(404)
    with engine().db.session() as session:
        experiments = experiment_names(session, result.campaign.communication)
    return render_template("console/studio/campaigns/report.html", result=result, c=result.campaign, report=result.report,
                           funnel=FUNNEL, experiments=experiments, default_hours=WINNER_AFTER_HOURS)


@blueprint.route("/campaigns/<name>/report.csv")
@requires("campaigns:view")
def campaigns_csv(name: str) -> Response:
    try:
        data = report_csv(campaign_report(engine(), name))
    except LookupError:
        abort(404)
    return Response(data, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="campaign-{name}.csv"'})


@blueprint.route("/campaigns/<name>/winner", methods=["POST"])
@requires("campaigns:send")
@fresh
def campaigns_winner(name: str) -> Response:
    experiment = request.form.get("experiment", "")
    try:
        sent = send_winner_to_rest(engine(), name, experiment)
    except LookupError:
        abort(404)
    except (CampaignError, PlanError, RunStateError, ExecutorError) as exc:
        flash(_("The winner was not sent: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("console.campaigns_show", name=name))  # type: ignore[return-value]
    audit("campaign.send_winner", "campaign", name, experiment=experiment, run=sent.run_id, cycle=sent.cycle,
          planned=sent.planned)
    flash(_("The winner goes to the rest: run %(run)s, %(count)s new messages.", run=sent.run_id, count=sent.planned))
    return redirect(url_for("console.campaigns_show", name=name))  # type: ignore[return-value]


@blueprint.route("/campaigns/<name>/winner-rule", methods=["POST"])
@requires("campaigns:send")
@fresh
def campaigns_winner_rule(name: str) -> Response:
    """Set or stop the rule that sends the winner by itself: it sends as the button does,
    so it takes the permission to send."""
    experiment = request.form.get("experiment", "") if request.form.get("action") != "stop" else ""
    try:
        with engine().db.session() as session:
            campaign = set_winner_rule(session, name, experiment or None, request.form.get("hours"))
            hours = campaign.winner_after_hours
    except LookupError:
        abort(404)
    except CampaignError as exc:
        flash(_("The winner rule was not set: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("console.campaigns_show", name=name))  # type: ignore[return-value]
    audit("campaign.winner_rule", "campaign", name, experiment=experiment or None, hours=hours)
    if experiment:
        flash(_("The winner of %(experiment)s goes to the rest by itself once significant, %(hours)s hours after the run at the earliest.",
                experiment=experiment, hours=hours))
    else:
        flash(_("The winner rule is stopped: the winner is sent by hand."))
    return redirect(url_for("console.campaigns_show", name=name))  # type: ignore[return-value]


@blueprint.route("/campaigns/channel-shift")
@requires("reports:view")
def campaigns_shift() -> Response:
    today = dt.date.today()
    try:
        start = dt.date.fromisoformat(request.args.get("start") or (today - dt.timedelta(days=30)).isoformat())
        end = dt.date.fromisoformat(request.args.get("end") or today.isoformat())
    except ValueError:
        return Response(render_template("console/studio/campaigns/shift.html", shift=None, start=request.args.get("start", ""),
                                        end=request.args.get("end", ""), problem=_("Dates as YYYY-MM-DD.")), status=422)
    shift = channel_shift(engine(), start, end)
    return Response(render_template("console/studio/campaigns/shift.html", shift=shift, start=start.isoformat(), end=end.isoformat(),
                                    problem=None))

"""Campaigns of the marketers' studio: the record (owner, goal, audience, channels,
communication, schedule, dates, budget, forecast), its measurement over the runs of its
communication created between its start and end (the response report's spend, responses,
conversions, revenue and ROI, against the forecast and the budget), its experiments'
winners sent to the rest, and the channel-shift report (customers who left paper).
"""
from __future__ import annotations

import datetime as dt
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from ccm.communications import ensure_built_in, get_communication
from ccm.decisions import experiment_names
from ccm.feedback.render import write_csv
from ccm.feedback.response_report import Experiment, Report, runs_report
from ccm.models import CHANNEL_KINDS, Communication, Customer, Message, Run, utcnow
from ccm.models.campaigns import Campaign
from ccm.models.feedback import ResponseEvent
from ccm.models.scheduling import Schedule
from ccm.runs import REST, WinnerSent, rest_cycle, send_winner
from ccm.segments import segment_names
from ccm.staff import record
from ccm.wiring import Engine

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
CHANNELS = CHANNEL_KINDS
RESERVED = ("new", "channel-shift")  # pages of the studio at /console/campaigns/<name>
FIELDS = ("name", "title", "owner", "goal", "communication", "audience", "channels", "schedule", "starts_on", "ends_on",
          "budget", "currency", "forecast_responses", "forecast_revenue")
WINNER_AFTER_HOURS = 24  # the winner rule's wait when none is given: a day of opens, clicks and purchases


class CampaignError(ValueError):
    """A campaign that cannot be saved or a winner that cannot be sent: the message names the field."""


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.name)))


def get_campaign(session: Session, name: str) -> Campaign:
    found = session.scalar(select(Campaign).where(Campaign.name == name))
    if found is None:
        raise LookupError(f"no such campaign: {name}")
    return found


def form_choices(session: Session) -> dict[str, list[str]]:
    """What the fields may name: communications, segments, schedules, channels."""
    ensure_built_in(session)
    return {"communications": list(session.scalars(select(Communication.name).order_by(Communication.name))),
            "segments": segment_names(session), "schedules": list(session.scalars(select(Schedule.name).order_by(Schedule.name))),
            "channels": list(CHANNELS)}


def save_campaign(session: Session, form: Mapping[str, Any], actor: str, *, name: str | None = None) -> Campaign:
    """Create the campaign (``name`` None) or change it; CampaignError names the bad field."""
    values = _checked(session, form)
    if name is None:
        if session.scalar(select(Campaign.id).where(Campaign.name == values["name"])):
            raise CampaignError(f"name: a campaign {values['name']} exists already")
        campaign = Campaign(created_by=actor, created_at=utcnow(), **values)
        session.add(campaign)
    else:
        campaign = get_campaign(session, name)
        values.pop("name")
        for key, value in values.items():
            setattr(campaign, key, value)
    campaign.updated_at = utcnow()
    session.flush()
    return campaign


def _checked(session: Session, form: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(form) - set(FIELDS))
    if unknown:
        raise CampaignError(f"{unknown[0]}: no such field")
    text = {key: str(form.get(key) or "").strip() for key in FIELDS if key != "channels"}
    choices = form_choices(session)
    if not NAME.match(text["name"]) or text["name"] in RESERVED:
        raise CampaignError("name: lower-case letters, digits and '-', up to 100 (not new or channel-shift)")
    if not text["owner"]:
        raise CampaignError("owner: who answers for the campaign")
    if text["communication"] not in choices["communications"]:
        raise CampaignError(f"communication: no such communication: {text['communication']}")
    if text["audience"] and text["audience"] not in choices["segments"]:
        raise CampaignError(f"audience: no such segment: {text['audience']}")
    if text["schedule"] and text["schedule"] not in choices["schedules"]:
        raise CampaignError(f"schedule: no such schedule: {text['schedule']}")
    channels = [c for c in form.get("channels") or [] if c]
    if not channels or any(c not in CHANNELS for c in channels):
        raise CampaignError(f"channels: one or more of {', '.join(CHANNELS)}")
    starts, ends = _date("starts_on", text["starts_on"], required=True), _date("ends_on", text["ends_on"])
    if ends is not None and ends < starts:
        raise CampaignError("ends_on: before the start")
    currency = text["currency"].upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise CampaignError("currency: three letters, e.g. EUR")
    forecast = text["forecast_responses"]
    if forecast and not forecast.isdigit():
        raise CampaignError("forecast_responses: a whole number")
    return {"name": text["name"], "title": text["title"], "owner": text["owner"], "goal": text["goal"],
            "communication": text["communication"], "audience": text["audience"] or None, "channels": channels,
            "schedule": text["schedule"] or None, "starts_on": starts, "ends_on": ends, "currency": currency,
            "budget": _money("budget", text["budget"]), "forecast_responses": int(forecast) if forecast else None,
            "forecast_revenue": _money("forecast_revenue", text["forecast_revenue"])}


def _date(field: str, value: str, required: bool = False) -> dt.date | None:
    if not value and not required:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CampaignError(f"{field}: a date as YYYY-MM-DD") from None


def _money(field: str, value: str) -> Decimal | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise CampaignError(f"{field}: an amount such as 1500.00") from None
    if not amount.is_finite() or amount < 0:
        raise CampaignError(f"{field}: an amount of zero or more")
    return amount.quantize(Decimal("0.01"))


# --------------------------------------------------------------------------- measurement


@dataclass
class CampaignReport:
    campaign: Campaign
    report: Report | None  # None: no run of its communication in its dates yet
    runs: list[tuple[int, str]]  # (run id, cycle)

    @property
    def spend(self) -> Decimal:
        return self.report.total.cost if self.report else Decimal("0")

    @property
    def revenue(self) -> Decimal:
        return self.report.total.revenue if self.report else Decimal("0")

    @property
    def responses(self) -> int:
        return self.report.total.responded if self.report else 0

    @property
    def conversions(self) -> int:
        return self.report.total.converted if self.report else 0

    @property
    def roi(self) -> float | None:
        return self.report.total.roi if self.report else None

    @property
    def budget_used(self) -> float | None:
        """Spend as a share of the budget (1.0 = all of it)."""
        budget = self.campaign.budget
        return float(self.spend / budget) if budget else None

    @property
    def roi_on_budget(self) -> float | None:
        """(revenue - budget) / budget: what the campaign earned against all it may spend."""
        budget = self.campaign.budget
        return float((self.revenue - budget) / budget) if budget else None

    @property
    def experiments(self) -> list[Experiment]:
        return self.report.experiments if self.report else []

    def winner_ready(self, experiment: str) -> str | None:
        found = next((e for e in self.experiments if e.name == experiment), None)
        return found.winner if found else None


def campaign_runs(session: Session, campaign: Campaign) -> list[tuple[int, str]]:
    """The runs of the campaign's communication created on its dates (end included)."""
    communication = get_communication(session, campaign.communication)
    start = dt.datetime.combine(campaign.starts_on, dt.time())
    query = select(Run.id, Run.cycle).where(Run.communication_id == communication.id, Run.created_at >= start).order_by(Run.id)
    if campaign.ends_on is not None:
        query = query.where(Run.created_at < dt.datetime.combine(campaign.ends_on + dt.timedelta(days=1), dt.time()))
    return [(run_id, cycle) for run_id, cycle in session.execute(query)]


def campaign_report(engine: Engine, name: str) -> CampaignReport:
    costs, receipts = engine.settings["costs"], engine.settings["feedback"]["receipt_channels"]
    with engine.db.reader() as session:
        campaign = get_campaign(session, name)
        runs = campaign_runs(session, campaign)
        report = runs_report(session, f"{campaign.name} · {len(runs)} runs", [r for r, _ in runs], costs, frozenset(receipts),
                         per_run=True) if runs else None
        session.expunge(campaign)
    return CampaignReport(campaign, report, runs)


def report_csv(result: CampaignReport) -> bytes:
    """The report's rows as CSV, by the engine's writer (formula cells escaped)."""
    if result.report is None:
        raise LookupError(f"{result.campaign.name} has not run yet")
    with tempfile.TemporaryDirectory() as folder:
        return write_csv(result.report, Path(folder) / "report.csv").read_bytes()


def send_winner_to_rest(engine: Engine, name: str, experiment: str, *, start: bool = True) -> WinnerSent:
    """The significant winner of ``experiment`` to the rest of the audience of the campaign's
    latest cycle; CampaignError while there is no significant winner."""
    result = campaign_report(engine, name)
    winner = result.winner_ready(experiment)
    if winner is None:
        raise CampaignError(f"experiment {experiment}: no significant winner yet")
    cycles = [cycle for _, cycle in result.runs if not cycle.endswith(REST)]
    return send_winner(engine, result.campaign.communication, cycles[-1], experiment, winner,
                       audience=result.campaign.audience, start=start)


def set_winner_rule(session: Session, name: str, experiment: str | None, hours: str | int | None = None) -> Campaign:
    """Set (or, with ``experiment`` None, stop) the campaign's winner rule: the winner of
    ``experiment`` (one of its communication's current decisions) goes to the rest by itself
    once significant, ``hours`` (default WINNER_AFTER_HOURS, at most 90 days) after the
    cycle's run at the earliest. A new rule is judged afresh."""
    campaign = get_campaign(session, name)
    if experiment:
        if experiment not in experiment_names(session, campaign.communication):
            raise CampaignError(f"experiment: the decisions of {campaign.communication} have no experiment {experiment}")
        text = str(hours if hours is not None else "").strip()
        if text and not (text.isdigit() and int(text) <= 24 * 90):
            raise CampaignError("hours: a whole number of hours, up to 2160 (90 days)")
        campaign.winner_experiment, campaign.winner_after_hours = experiment, int(text) if text else WINNER_AFTER_HOURS
    else:
        campaign.winner_experiment, campaign.winner_after_hours = None, None
    campaign.winner_checked_at, campaign.winner_outcome = None, None
    campaign.updated_at = utcnow()
    return campaign


def send_winners_due(engine: Engine, *, now: dt.datetime | None = None) -> dict[str, str]:
    """The winner rules set in advance: for each campaign running today with a
    ``winner_experiment``, once ``winner_after_hours`` have passed since its latest cycle's
    run was made and the experiment has a significant winner, that winner goes to the rest
    (as ``send_winner_to_rest`` does from the studio, audited as done by the scheduler).
    Each look is kept on the campaign (``winner_checked_at``, ``winner_outcome``); a cycle
    whose rest was sent already is left alone. Returns campaign -> what was done or awaited."""
    now = now or utcnow()
    with engine.db.reader() as session:
        names = list(session.scalars(select(Campaign.name).where(
            Campaign.winner_experiment.is_not(None), Campaign.starts_on <= now.date(),
            or_(Campaign.ends_on.is_(None), Campaign.ends_on >= now.date())).order_by(Campaign.name)))
    outcomes = {}
    for name in names:
        outcome = _winner_rule(engine, name, now)
        if outcome is not None:
            outcomes[name] = outcome
            with engine.db.session() as session:
                campaign = get_campaign(session, name)
                campaign.winner_checked_at, campaign.winner_outcome = now, outcome
    return outcomes


def _winner_rule(engine: Engine, name: str, now: dt.datetime) -> str | None:
    with engine.db.reader() as session:
        campaign = get_campaign(session, name)
        experiment, hours = campaign.winner_experiment, campaign.winner_after_hours or 0
        runs = campaign_runs(session, campaign)
        cycles = [(run_id, cycle) for run_id, cycle in runs if not cycle.endswith(REST)]
        if not cycles:
            return f"waiting for the first run of {campaign.communication}"
        run_id, cycle = cycles[-1]
        if any(other == rest_cycle(cycle) for _, other in runs):
            return None  # sent to the rest already (by the rule or from the studio)
        due = session.get(Run, run_id).created_at + dt.timedelta(hours=hours)
    if now < due:
        return f"judges {experiment} of cycle {cycle} from {due:%Y-%m-%d %H:%M} UTC"
    try:
        sent = send_winner_to_rest(engine, name, experiment)
    except CampaignError:
        return f"no significant winner of {experiment} in cycle {cycle} yet"
    with engine.db.session() as session:
        record(session, "scheduler", "campaign.send_winner", "campaign", name, experiment=experiment, run=sent.run_id,
               cycle=sent.cycle, planned=sent.planned, rule=f"after {hours} hours")
    return f"sent the winner of {experiment} to the rest: run {sent.run_id}, {sent.planned} messages"


# --------------------------------------------------------------------------- channel shift


@dataclass
class ChannelShift:
    start: dt.date
    end: dt.date
    currency: str
    moved: dict[str, int]  # new channel -> customers who left paper for it in the period
    saving_per_cycle: Decimal  # one statement each, at [costs]
    unit_saving: dict[str, Decimal]  # channel -> print cost - its cost
    sent_since: int  # statements they got by e-mail or SMS since their change, in the period
    saved: Decimal  # what those cost less than paper

    @property
    def total(self) -> int:
        return sum(self.moved.values())


def channel_shift(engine: Engine, start: dt.date, end: dt.date) -> ChannelShift:
    """Customers who moved from paper to e-mail or SMS between ``start`` and ``end``
    (inclusive), found two ways, each customer counted once (at the earliest sign):

    - seen: their last statement before the period went by post and a statement in the
      period went by e-mail or SMS, however the change came (preference centre, service
      desk, API, a re-import from the billing system);
    - declared: a ``preferences`` event in the period changed ``paperless`` to yes (to
      e-mail), or ``preferred_channel`` to e-mail or SMS after a last message by post,
      though no statement has gone out since.

    Savings at ``[costs]``: per statement cycle for all who moved, and for the statements
    they got by e-mail or SMS in the period since their move."""
    costs = engine.settings["costs"]
    unit = {c: Decimal(str(costs.get("print", 0))) - Decimal(str(costs.get(c, 0))) for c in ("email", "sms")}
    lower, upper = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    with engine.db.reader() as session:
        since = _seen_moves(session, lower, upper)
        for customer_id, move in _declared_moves(session, lower, upper).items():
            if customer_id not in since or move[1] < since[customer_id][1]:
                since[customer_id] = move
        sent, saved = 0, Decimal("0")
        for customer_id, (channel, when) in since.items():
            count = session.scalar(select(func.count()).where(
                Message.customer_id == customer_id, Message.state == "sent", Message.channel.in_(ELECTRONIC),
                Message.purpose == STATEMENT, Message.sent_at >= when, Message.sent_at < upper)) or 0
            sent += count
            saved += count * unit[channel]
    moved = {"email": 0, "sms": 0}
    for channel, _ in since.values():
        moved[channel] += 1
    return ChannelShift(start, end, costs.get("currency", ""), moved,
                        sum((unit[c] * n for c, n in moved.items()), Decimal("0")), unit, sent, saved)


ELECTRONIC, STATEMENT = ("email", "sms"), "statement"


def _seen_moves(session: Session, lower: dt.datetime, upper: dt.datetime) -> dict[int, tuple[str, dt.datetime]]:
    """customer -> (channel, when) of the first statement sent by e-mail or SMS in the
    period, for customers whose last statement before it was sent by post."""
    statement = and_(Message.purpose == STATEMENT, Message.state == "sent")
    first = (select(Message.customer_id, func.min(Message.sent_at).label("first"))
             .where(statement, Message.channel.in_(ELECTRONIC), Message.sent_at >= lower, Message.sent_at < upper)
             .group_by(Message.customer_id).subquery())
    before = aliased(Message)
    last_before = (select(before.channel).where(before.customer_id == first.c.customer_id, before.purpose == STATEMENT,
                                                before.state == "sent", before.sent_at < lower)
                   .order_by(before.sent_at.desc(), before.id.desc()).limit(1).scalar_subquery())
    at = aliased(Message)
    channel_then = (select(at.channel).where(at.customer_id == first.c.customer_id, at.purpose == STATEMENT, at.state == "sent",
                                             at.sent_at == first.c.first, at.channel.in_(ELECTRONIC))
                    .order_by(at.id).limit(1).scalar_subquery())
    rows = session.execute(select(first.c.customer_id, channel_then, first.c.first).where(last_before == "print"))
    return {customer_id: (channel, when) for customer_id, channel, when in rows}


def _declared_moves(session: Session, lower: dt.datetime, upper: dt.datetime) -> dict[int, tuple[str, dt.datetime]]:
    found: dict[int, tuple[str, dt.datetime]] = {}
    rows = session.execute(
        select(ResponseEvent.customer_id, Message.customer_id, ResponseEvent.occurred_at, ResponseEvent.data)
        .outerjoin(Message, ResponseEvent.message_id == Message.id)
        .where(ResponseEvent.type == "preferences", ResponseEvent.occurred_at >= lower, ResponseEvent.occurred_at < upper)
        .order_by(ResponseEvent.occurred_at))
    for direct, via_message, when, data in rows:
        customer_id = direct or via_message
        changed = (data or {}).get("changed", [])
        customer = session.get(Customer, customer_id) if customer_id else None
        if customer is None or customer_id in found:
            continue
        if "paperless" in changed and customer.paperless:
            found[customer_id] = ("email", when)
        elif "preferred_channel" in changed and customer.preferred_channel in ELECTRONIC \
                and _last_channel(session, customer_id, when) == "print":
            found[customer_id] = (customer.preferred_channel, when)
    return found


def _last_channel(session: Session, customer_id: int, before: dt.datetime) -> str | None:
    return session.scalar(select(Message.channel).where(Message.customer_id == customer_id, Message.state == "sent",
                                                        Message.sent_at < before).order_by(Message.sent_at.desc()).limit(1))

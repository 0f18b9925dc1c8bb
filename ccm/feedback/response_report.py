"""Measurement: what a run or a communication cost, who responded, what it earned, which
variant won and whether it beat doing nothing.

The unit is the message. Per channel, variant, value tier and named segment (tier and
membership as they are now, at the last refresh), and per run for a communication:
messages, sent, delivered, opened, clicked, responded (clicked, replied, converted or
paid), converted (a conversion or payment attributed to the message), unsubscribed
(unsubscribe or STOP), bounced, complained, cost (sent x the channel's cost), revenue
(amounts of its conversions and payments in the cost currency) and ROI ((revenue - cost) /
cost). Opens and clicks of bots are left out.

Delivered: on a channel whose provider sends delivery receipts (``[feedback]
receipt_channels``) the messages sent that a receipt confirmed; elsewhere the messages sent
and not bounced. Bounced: hard bounces, and failed receipts (the provider gave up on the
message; only a permanent failure also suppresses the address). Messages withheld from an experiment's hold-out appear only on
their own row ("(withheld)") and in the experiment: what the hold-out earns is not the
campaign's revenue.

Experiments: each variant's conversion rate (conversions and payments) among the messages sent, against the hold-out
group's among the messages withheld (lift = rate / hold-out rate - 1), and against the best
variant, each with a two-proportion z-test (two-sided p; "significant" below 0.05, and only
where both groups are large enough for the test: ``enough_for_z``).
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from statistics import NormalDist
from typing import Any, Iterable

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from ccm.models.feedback import RESPONSES
from ccm.models.feedback import DecisionExposure, ResponseEvent
from ccm.models import Communication, Customer, Message, Run
from ccm.communications import get_communication
from ccm.models.segments import Segment, SegmentMember

METRICS = ("messages", "sent", "delivered", "opened", "clicked", "responded", "converted", "unsubscribed", "bounced", "complained")
HOLDOUT = "holdout"


@dataclass
class Row:
    messages: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    responded: int = 0
    converted: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    complained: int = 0
    cost: Decimal = Decimal("0")
    revenue: Decimal = Decimal("0")

    @property
    def roi(self) -> float | None:
        return float((self.revenue - self.cost) / self.cost) if self.cost else None

    def rate(self, metric: str, base: str = "sent") -> float | None:
        denominator = getattr(self, base)
        return getattr(self, metric) / denominator if denominator else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in METRICS}
        data.update(cost=str(self.cost.quantize(Decimal("0.01"))), revenue=str(self.revenue.quantize(Decimal("0.01"))),
                    roi=None if self.roi is None else round(self.roi, 4))
        for metric in ("opened", "clicked", "responded", "converted", "unsubscribed", "bounced"):
            rate = self.rate(metric)
            data[f"{metric}_rate"] = None if rate is None else round(rate, 4)
        return data


@dataclass
class Comparison:
    variant: str
    against: str
    rate: float | None
    other_rate: float | None
    lift: float | None  # relative: 0.25 = 25% better
    z: float | None
    p_value: float | None
    enough_data: bool = False  # large enough groups for the z-test's normal approximation (``enough_for_z``)

    @property
    def significant(self) -> bool:
        return self.enough_data and self.p_value is not None and self.p_value < 0.05

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["significant"] = self.significant
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in data.items()}


@dataclass
class Experiment:
    name: str
    variants: dict[str, dict[str, int]]  # variant -> {"n", "converted", "clicked"}
    versus_holdout: list[Comparison] = field(default_factory=list)
    versus_best: list[Comparison] = field(default_factory=list)
    winner: str | None = None  # the best variant, when it beats the others and the hold-out significantly
    exposed: dict[str, int] = field(default_factory=dict)  # variant -> customers shown it in real time (the API)
    exposed_converted: dict[str, int] = field(default_factory=dict)  # variant -> of those, customers whose conversion is the exposure's

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "variants": self.variants, "winner": self.winner, "exposed": self.exposed,
                "exposed_converted": self.exposed_converted,
                "versus_holdout": [c.to_json() for c in self.versus_holdout], "versus_best": [c.to_json() for c in self.versus_best]}


@dataclass
class Report:
    title: str
    runs: list[int]
    currency: str
    total: Row
    by: dict[str, dict[str, Row]]  # dimension -> group -> row
    experiments: list[Experiment]
    curve: dict[str, list[tuple[float, int]]]  # event type -> (hours since first send, cumulative count)
    bots_excluded: int = 0
    other_currencies: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title, "runs": self.runs, "currency": self.currency, "total": self.total.to_json(),
            "by": {dim: {group: row.to_json() for group, row in rows.items()} for dim, rows in self.by.items()},
            "experiments": [e.to_json() for e in self.experiments],
            "bots_excluded": self.bots_excluded, "other_currencies": self.other_currencies,
            "curve": {kind: [[round(h, 3), n] for h, n in points] for kind, points in self.curve.items()},
        }

    def table(self) -> list[dict[str, Any]]:
        """Flat rows (dimension, group, metrics) for CSV."""
        rows = [{"dimension": "total", "group": "all", **self.total.to_json()}]
        for dim, groups in self.by.items():
            rows += [{"dimension": dim, "group": group, **row.to_json()} for group, row in groups.items()]
        return rows


def run_report(session: Session, run_id: int, costs: dict[str, str], receipts: Iterable[str] = ()) -> Report:
    """``receipts``: the channels whose provider sends delivery receipts."""
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"no such run: {run_id}")
    name = session.get(Communication, run.communication_id).name
    return runs_report(session, f"run {run.id} · {name} · cycle {run.cycle}", [run.id], costs, frozenset(receipts), per_run=False)


def communication_report(session: Session, name: str, costs: dict[str, str], receipts: Iterable[str] = ()) -> Report:
    communication = get_communication(session, name)
    runs = list(session.scalars(select(Run.id).where(Run.communication_id == communication.id).order_by(Run.id)))
    if not runs:
        raise LookupError(f"{communication.name} has not run yet")
    report = runs_report(session, f"{communication.name} · {len(runs)} runs", runs, costs, frozenset(receipts), per_run=True)
    exposed, converted = exposures(session, communication.name), exposure_conversions(session, communication.name)
    for experiment in report.experiments:
        experiment.exposed, experiment.exposed_converted = exposed.pop(experiment.name, {}), converted.get(experiment.name, {})
    report.experiments += [Experiment(name, {}, exposed=counts, exposed_converted=converted.get(name, {}))
                           for name, counts in sorted(exposed.items())]
    return report


def exposures(session: Session, communication: str) -> dict[str, dict[str, int]]:
    """experiment -> variant -> customers shown it in real time, for this communication's
    decisions (``ccm.decisions.decide_now``)."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(select(DecisionExposure.experiment, DecisionExposure.variant, func.count(distinct(DecisionExposure.customer_id)))
                           .where(DecisionExposure.communication == communication, DecisionExposure.experiment.is_not(None))
                           .group_by(DecisionExposure.experiment, DecisionExposure.variant))
    for experiment, variant, customers in rows:
        found[experiment][variant] = customers
    return dict(found)


def exposure_conversions(session: Session, communication: str) -> dict[str, dict[str, int]]:
    """experiment -> variant -> customers whose conversion was attributed to what they were
    shown in real time (``ccm.feedback.events.last_exposure``: such an event names a variant
    and no message); bots excluded."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(select(ResponseEvent.variant, func.count(distinct(ResponseEvent.customer_id)))
                           .where(ResponseEvent.communication == communication, ResponseEvent.type == "converted",
                                  ResponseEvent.message_id.is_(None), ResponseEvent.variant.is_not(None), ResponseEvent.bot.is_(False))
                           .group_by(ResponseEvent.variant))
    for variant, customers in rows:
        experiment, _, name = variant.partition("/")
        found[experiment][name] = customers
    return dict(found)


def runs_report(session: Session, title: str, runs: list[int], costs: dict[str, str], receipts: frozenset[str], *,
                per_run: bool) -> Report:
    """The report over ``runs`` (a run, a communication's runs, a campaign's runs)."""
    unit_costs = {k: Decimal(str(v)) for k, v in costs.items() if k != "currency"}
    currency = costs.get("currency", "")
    events, other_currencies, bots = _events_by_message(session, runs, currency)
    total = Row()
    by: dict[str, dict[str, Row]] = {"channel": defaultdict(Row), "variant": defaultdict(Row), "tier": defaultdict(Row),
                                     "segment": defaultdict(Row)}
    if per_run:
        by["run"] = defaultdict(Row)
    segments = _segments_of(session, runs)
    experiments: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: {"n": 0, "converted": 0, "clicked": 0}))
    query = (
        select(Message.id, Message.run_id, Message.channel, Message.state, Message.reason, Message.decisions, Customer.value_tier,
               Message.customer_id)
        .join(Customer, Message.customer_id == Customer.id)
        .where(Message.run_id.in_(runs))
        .execution_options(yield_per=5000)
    )
    for message_id, run_id, channel, state, reason, decisions, tier, customer_id in session.execute(query):
        seen = events.get(message_id, {})
        held = state == "suppressed" and (reason or "").startswith("hold-out")
        variants = _variants(decisions)
        shown = "(withheld)" if held else "(no channel)" if channel == "none" else channel
        # What the hold-out does is not the campaign's doing: it shows only on its own row and
        # in the experiment, never in the totals, tiers or runs.
        groups = [by["channel"][shown]] if held else [total, by["channel"][shown], by["tier"][tier or "(not computed)"],
                                                      *(by["segment"][name] for name in segments.get(customer_id, ()))]
        groups += [by["variant"][f"{experiment}/{variant}"] for experiment, variant in variants]
        if per_run and not held:
            groups.append(by["run"][str(run_id)])
        for row in groups:
            _count(row, state, channel, seen, unit_costs, channel in receipts)
        for experiment, variant in variants:
            if state == "sent" or held:
                cell = experiments[experiment][variant]
                cell["n"] += 1
                cell["converted"] += int(bool(seen.get("converted") or seen.get("paid")))
                cell["clicked"] += int(bool(seen.get("clicked")))
    return Report(
        title=title, runs=runs, currency=currency, total=total,
        by={dim: dict(sorted(rows.items())) for dim, rows in by.items()},
        experiments=[_experiment(name, dict(cells)) for name, cells in sorted(experiments.items())],
        curve=_curve(session, runs), bots_excluded=bots, other_currencies=other_currencies,
    )


def _segments_of(session: Session, runs: list[int]) -> dict[int, list[str]]:
    """customer id -> the named segments they are in now (their last refresh), for the
    customers these runs wrote to."""
    audience = select(Message.customer_id).where(Message.run_id.in_(runs))
    found: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(select(SegmentMember.customer_id, Segment.name).join(Segment, SegmentMember.segment_id == Segment.id)
                           .where(SegmentMember.customer_id.in_(audience)).order_by(Segment.name))
    for customer_id, name in rows:
        found[customer_id].append(name)
    return found


def _variants(decisions: dict | None) -> list[tuple[str, str]]:
    found = {}
    for trace in (decisions or {}).values():
        if trace and trace.get("experiment"):
            found[trace["experiment"]] = trace["variant"]
    return sorted(found.items())


def _count(row: Row, state: str, channel: str, seen: dict[str, Any], unit_costs: dict[str, Decimal], receipts: bool) -> None:
    row.messages += 1
    if state == "sent":
        row.sent += 1
        row.cost += unit_costs.get(channel, Decimal("0"))
        if not seen.get("bounced") and (seen.get("delivered") or not receipts):
            row.delivered += 1
    row.opened += int(bool(seen.get("opened")))
    row.clicked += int(bool(seen.get("clicked")))
    row.responded += int(any(seen.get(kind) for kind in RESPONSES))
    row.converted += int(bool(seen.get("converted") or seen.get("paid")))
    row.unsubscribed += int(bool(seen.get("unsubscribed") or seen.get("opted_out")))
    row.bounced += int(bool(seen.get("bounced")))
    row.complained += int(bool(seen.get("complained")))
    row.revenue += seen.get("revenue", Decimal("0"))


def _events_by_message(session: Session, runs: list[int], currency: str) -> tuple[dict[int, dict[str, Any]], dict[str, str], int]:
    """message id -> {event type: count, "revenue": amount}; amounts in other currencies
    are summed apart (never converted); bot hits are counted, not used."""
    found: dict[int, dict[str, Any]] = defaultdict(dict)
    others: dict[str, Decimal] = defaultdict(Decimal)
    bots = 0
    rows = session.execute(
        select(ResponseEvent.message_id, ResponseEvent.type, ResponseEvent.bot, ResponseEvent.currency,
               func.count(), func.sum(ResponseEvent.amount))
        .where(ResponseEvent.run_id.in_(runs), ResponseEvent.message_id.is_not(None))
        .group_by(ResponseEvent.message_id, ResponseEvent.type, ResponseEvent.bot, ResponseEvent.currency)
    )
    for message_id, kind, bot, event_currency, count, amount in rows:
        if bot:
            bots += count
            continue
        if kind == "bounced":
            continue  # counted below: only hard bounces and failed receipts are bounces (a soft one is usually delivered later)
        seen = found[message_id]
        seen[kind] = seen.get(kind, 0) + count
        if amount is not None and kind in ("converted", "paid"):
            if event_currency in (None, currency):
                seen["revenue"] = seen.get("revenue", Decimal("0")) + amount  # (a Money sum comes back as a Decimal)
            else:
                others[event_currency] += amount
    bounces = session.execute(
        select(ResponseEvent.message_id, ResponseEvent.data)
        .where(ResponseEvent.run_id.in_(runs), ResponseEvent.message_id.is_not(None), ResponseEvent.type == "bounced")
    )
    for message_id, data in bounces:
        if (data or {}).get("permanent") or (data or {}).get("receipt") == "failed":
            found[message_id]["bounced"] = found[message_id].get("bounced", 0) + 1
    return dict(found), {c: str(a.quantize(Decimal("0.01"))) for c, a in others.items()}, bots


def _experiment(name: str, cells: dict[str, dict[str, int]]) -> Experiment:
    experiment = Experiment(name, cells)
    variants = {v: c for v, c in cells.items() if v != HOLDOUT}
    if not variants:
        return experiment
    best = max(variants, key=lambda v: (_rate(variants[v]) or 0, variants[v]["n"]))
    holdout = cells.get(HOLDOUT)
    for variant, cell in sorted(variants.items()):
        if holdout:
            experiment.versus_holdout.append(compare(variant, cell, HOLDOUT, holdout))
        if variant != best:
            experiment.versus_best.append(compare(best, variants[best], variant, cell))
    beats_others = all(c.significant and (c.lift or 0) > 0 for c in experiment.versus_best)
    beats_holdout = next((c.significant and (c.lift or 0) > 0 for c in experiment.versus_holdout if c.variant == best), True)
    tested = bool(experiment.versus_best or experiment.versus_holdout)  # one variant and no hold-out: nothing to win against
    experiment.winner = best if tested and beats_others and beats_holdout and variants[best]["converted"] else None
    return experiment


def _rate(cell: dict[str, int]) -> float | None:
    return cell["converted"] / cell["n"] if cell["n"] else None


def compare(variant: str, cell: dict[str, int], against: str, other: dict[str, int]) -> Comparison:
    """Conversion rate of ``variant`` against ``against``: relative lift and a two-sided
    two-proportion z-test (pooled standard error)."""
    rate, other_rate = _rate(cell), _rate(other)
    z, p_value = two_proportion_z(cell["converted"], cell["n"], other["converted"], other["n"])
    lift = (rate / other_rate - 1) if rate is not None and other_rate else None
    enough = enough_for_z(cell["converted"], cell["n"], other["converted"], other["n"])
    return Comparison(variant, against, rate, other_rate, lift, z, p_value, enough)


MIN_EXPECTED = 5


def enough_for_z(x1: int, n1: int, x2: int, n2: int) -> bool:
    """The z-test stands on the normal approximation, which holds only when each group
    expects at least ``MIN_EXPECTED`` conversions and as many non-conversions at the pooled
    rate. Below that (a hold-out of a handful of customers, one conversion in all) its p-value
    is shown but nothing is called significant: a small sample, not a winner."""
    if not n1 or not n2:
        return False
    pooled = (x1 + x2) / (n1 + n2)
    return all(n * pooled >= MIN_EXPECTED and n * (1 - pooled) >= MIN_EXPECTED for n in (n1, n2))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float | None, float | None]:
    if not n1 or not n2:
        return None, None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None, None
    z = (x1 / n1 - x2 / n2) / se
    return z, 2 * (1 - NormalDist().cdf(abs(z)))


def _curve(session: Session, runs: list[int]) -> dict[str, list[tuple[float, int]]]:
    """Cumulative opens, clicks and conversions by hours since the first message was sent."""
    start = session.scalar(select(func.min(Message.sent_at)).where(Message.run_id.in_(runs)))
    if start is None:
        return {}
    curve: dict[str, list[tuple[float, int]]] = {}
    for kind in ("opened", "clicked", "converted", "paid"):
        times: Iterable[dt.datetime] = session.scalars(
            select(ResponseEvent.occurred_at).where(ResponseEvent.run_id.in_(runs), ResponseEvent.type == kind, ResponseEvent.bot.is_(False))
            .order_by(ResponseEvent.occurred_at)
        )
        points = [(max(0.0, (when - start).total_seconds() / 3600), number) for number, when in enumerate(times, start=1)]
        if points:
            curve[kind] = points
    return curve

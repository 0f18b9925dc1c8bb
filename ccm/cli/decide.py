"""``ccm decide``: which content each slot gets and why, for one customer or (dry run) the
whole audience; ``ccm decisions``: show and change the versioned decisions."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine
from ccm.decisions import DecisionError, decide_for_customer, describe_decision, dry_run, save_decision
from ccm.rules import RuleError
from ccm.segments import SegmentError

ERRORS = (DecisionError, RuleError, SegmentError, LookupError)


@click.command("decide", help="Show the content each slot of COMMUNICATION gets for CUSTOMER (an external id) and why, "
                              "or with --dry-run the count per rule and variant over the audience.")
@click.argument("communication")
@click.argument("customer", required=False)
@click.option("--dry-run", "dry_run_flag", is_flag=True, help="Count per rule and variant over the audience; nothing is sent or stored.")
@click.option("--cycle", help="Dry run: the audience is the customers with a statement in this cycle (YYYY-MM).")
@click.option("--segment", help="Dry run: only the members of this segment.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors(*ERRORS)
def decide_command(communication: str, customer: str | None, dry_run_flag: bool, cycle: str | None, segment: str | None, as_json: bool) -> None:
    if dry_run_flag == bool(customer):
        raise click.UsageError("give either a CUSTOMER or --dry-run")
    with engine().db.session() as session:
        if customer:
            _print_customer(decide_for_customer(session, communication, customer), as_json)
        else:
            _print_dry_run(dry_run(session, communication, cycle=cycle, segment=segment), as_json)


def _print_customer(result, as_json: bool) -> None:
    if as_json:
        payload = {"customer": result.external_id, "slots": {s: o.trace() for s, o in result.outcomes.items()},
                   "values": {k: _plain(v) for k, v in result.values.items()}}
        click.echo(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
        return
    if not result.outcomes:
        click.echo("this communication has no decisions")
    for slot, outcome in result.outcomes.items():
        click.echo(f"{slot}: {outcome.content or '(nothing)'}")
        click.echo(f"  why: {outcome.why} (decision {outcome.decision} version {outcome.version})")
    if result.values:
        click.echo("  values: " + ", ".join(f"{k}={_plain(v)!r}" for k, v in sorted(result.values.items()) if k != "segments"))


def _print_dry_run(result, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return
    click.echo(f"audience: {result.audience} customers (dry run: nothing sent)")
    for slot, rules in result.by_rule.items():
        click.echo(f"{slot} (version {result.versions[slot]}):")
        for rule, count in rules.most_common():
            click.echo(f"  {rule:<20} {count:>8}")
        for variant, count in sorted(result.by_variant[slot].items()):
            click.echo(f"    {variant:<30} {count:>8}")
        for content, count in result.by_content[slot].most_common():
            click.echo(f"  → {content or '(nothing)'}: {count}")


def _plain(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


@click.group("decisions", help="Show and change the content decisions of a communication (versioned).")
def decisions_group() -> None:
    pass


@decisions_group.command("show", help="The decisions of COMMUNICATION with their versions.")
@click.argument("communication")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors(*ERRORS)
def show(communication: str, as_json: bool) -> None:
    with engine().db.session() as session:
        info = describe_decision(session, communication)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False))
        return
    for decision in info:
        current = decision["versions"][-1]["spec"]
        click.echo(f"{decision['slot']} · version {decision['version']}")
        for rule in current["rules"]:
            click.echo(f"  {rule['name']}: when {rule['when']} → {json.dumps(rule['then'], ensure_ascii=False)}")
        click.echo(f"  default → {json.dumps(current['default'], ensure_ascii=False)}")


@decisions_group.command("set", help="Give SLOT of COMMUNICATION a new decision version from a JSON FILE ('-' for stdin).")
@click.argument("communication")
@click.argument("slot")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@clean_errors(*ERRORS)
def set_command(communication: str, slot: str, file) -> None:
    try:
        data = json.load(file)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{file.name}: not JSON: {exc}") from None
    ccm = engine()
    with ccm.db.session() as session:
        decision, outcome = save_decision(session, communication, slot, data, templates_dir=Path(ccm.templates_dir))
        click.echo(f"decision {decision.communication}/{decision.slot} version {decision.version}: {outcome}")


def init_app(app: Flask) -> None:
    app.cli.add_command(decide_command)
    app.cli.add_command(decisions_group)

"""``ccm segments``: create, show, list and refresh segments and the computed fields."""
from __future__ import annotations

import json

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine
from ccm.rules import RuleError
from ccm.segments import SegmentError, describe, get_segment, list_segments, refresh, save_segment

ERRORS = (RuleError, SegmentError, LookupError, ValueError)


@click.group("segments", help="Segments (named rules) and the computed customer fields.")
def segments_group() -> None:
    pass


@segments_group.command("create", help='Create a segment or give it a new version: ccm segments create lapsed_vip \'tier == "vip" and days_since(last_response_at) > 180\'.')
@click.argument("name")
@click.argument("expression")
@click.option("--description", help="What the segment is for.")
@clean_errors(*ERRORS)
def create(name: str, expression: str, description: str | None) -> None:
    with engine().db.session() as session:
        saved = save_segment(session, name, expression, description=description)
        click.echo(f"segment {saved.segment.name} version {saved.segment.version}: {saved.outcome}")
    if saved.outcome != "unchanged":
        click.echo(f"run `ccm segments refresh {name}` to count its members")


@segments_group.command("show", help="Show a segment: its rule, size over time and versions.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors(*ERRORS)
def show(name: str, as_json: bool) -> None:
    with engine().db.session() as session:
        info = describe(session, get_segment(session, name))
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False))
        return
    click.echo(f"segment {info['name']} · version {info['version']}" + (f" · {info['description']}" if info["description"] else ""))
    click.echo(f"  rule: {info['expression']}")
    members = "not refreshed yet" if info["members"] is None else f"{info['members']} (refreshed {info['refreshed_at']})"
    click.echo(f"  members: {members}")
    for count in info["counts"][1:]:
        click.echo(f"    before: {count['members']} at {count['refreshed_at']} (version {count['version']})")
    if len(info["versions"]) > 1:
        for version in info["versions"]:
            click.echo(f"  version {version['version']} by {version['author']} at {version['created_at']}: {version['expression']}")


@segments_group.command("list", help="List the segments with their latest size.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    with engine().db.session() as session:
        rows = list_segments(session)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False))
        return
    if not rows:
        click.echo("no segments yet: ccm segments create NAME EXPRESSION")
    for row in rows:
        members = "-" if row["members"] is None else row["members"]
        click.echo(f"{row['name']:<24} v{row['version']:<3} {members:>9}  {row['expression']}")


@segments_group.command("refresh", help="Recompute the computed customer fields, then every segment (or NAME and what it uses).")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors(*ERRORS)
def refresh_command(name: str | None, as_json: bool) -> None:
    ccm = engine()
    with ccm.db.session() as session:
        result = refresh(session, ccm.settings, name)
    computed = result.computed
    if as_json:
        payload = {"customers": computed.customers, "reference_period": computed.reference_period, "tiers": computed.tiers, "segments": result.counts}
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
        return
    tiers = ", ".join(f"{count} {tier}" for tier, count in computed.tiers.items())
    click.echo(f"computed fields of {computed.customers} customers (reference period {computed.reference_period}): {tiers}")
    for segment, count in result.counts.items():
        click.echo(f"  {segment}: {count} members")


def init_app(app: Flask) -> None:
    app.cli.add_command(segments_group)

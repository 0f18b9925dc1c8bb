"""``ccm webhooks``: outbound webhook subscriptions at the command line, as the API and the
console's Webhooks page have them: list, create (the signing secret printed once), change,
remove, a subscription's deliveries, a test event; and the sending and pruning the active
``ccm scheduler`` does by itself, run now (``send``, ``prune``).

Every command acts as a signed-in user with ``webhooks:manage`` (``ccm login``); changes
are audited under that user."""
from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine, require_schema
from ccm.cli.identity import acting
from ccm.outbound import (EVENT_TYPES, SubscriptionError, change_subscription, create_subscription, delete_subscription, deliver_due,
                          deliveries_after, get_subscription, prune_deliveries, send_test, subscriptions_after)

PERMISSION = "webhooks:manage"
EVENTS = click.Choice(sorted(name for name in EVENT_TYPES if name != "webhook.test"))


@click.group("webhooks", help="Other systems subscribed to the engine's events (signed POSTs, retried with backoff).")
def webhooks_group() -> None:
    pass


def _found(reference: str) -> int:
    """A subscription's id, from its id or its name."""
    subscriptions = subscriptions_after(engine(), None, 10_000)
    for subscription in subscriptions:
        if reference in (str(subscription.id), subscription.name):
            return subscription.id
    known = ", ".join(f"{s.id} {s.name}" for s in subscriptions) or "none"
    raise SubscriptionError(f"no such subscription: {reference} (known: {known})", "id", 404)


def _plain(value: Any) -> Any:
    return value.isoformat(timespec="seconds") + "Z" if hasattr(value, "isoformat") else value


@webhooks_group.command("list", help="The subscriptions, their events and their deliveries by state (never the URL's secret parts).")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(SubscriptionError)
def list_command(as_json: bool) -> None:
    require_schema()
    acting(PERMISSION)
    rows = subscriptions_after(engine(), None, 10_000)
    if as_json:
        click.echo(json.dumps([{key: _plain(value) for key, value in row.__dict__.items()} for row in rows], indent=2))
        return
    for row in rows:
        counts = ", ".join(f"{count} {state}" for state, count in row.deliveries.items() if count) or "no deliveries"
        click.echo(f"{row.id:>4} {row.name:<24} {'active' if row.active else 'disabled':<9} {', '.join(row.event_types)}  ({counts})")
    if not rows:
        click.echo("no subscriptions yet: ccm webhooks create NAME URL --event run.completed")


@webhooks_group.command("create", help="Subscribe URL to events; the signing secret (whsec_...) is printed once.")
@click.argument("name")
@click.argument("url")
@click.option("--event", "events", type=EVENTS, multiple=True, required=True, help="An event type (repeat for several).")
@click.option("--disabled", is_flag=True, help="Made disabled: nothing is sent until it is enabled.")
@clean_errors(SubscriptionError)
def create_command(name: str, url: str, events: tuple[str, ...], disabled: bool) -> None:
    require_schema()
    made = create_subscription(engine(), name, url, list(events), acting(PERMISSION).name, active=not disabled)
    click.echo(f"subscription {made.subscription.id} {made.subscription.name} created for {', '.join(made.subscription.event_types)}; "
               "its signing secret, not shown again:", err=True)
    click.echo(made.secret)


@webhooks_group.command("change", help="Change a subscription (by id or name): its name, URL, events, or enable or disable it.")
@click.argument("subscription")
@click.option("--name", default=None)
@click.option("--url", default=None)
@click.option("--event", "events", type=EVENTS, multiple=True, help="The event types, all of them (repeat for several).")
@click.option("--enable/--disable", "active", default=None, help="Disabled: its deliveries wait until it is enabled again.")
@clean_errors(SubscriptionError)
def change_command(subscription: str, name: str | None, url: str | None, events: tuple[str, ...], active: bool | None) -> None:
    require_schema()
    actor = acting(PERMISSION).name
    changes = {key: value for key, value in (("name", name), ("url", url), ("event_types", list(events) or None), ("active", active))
               if value is not None}
    if not changes:
        raise SubscriptionError("nothing to change: give --name, --url, --event, --enable or --disable")
    changed = change_subscription(engine(), _found(subscription), actor, **changes)
    click.echo(f"subscription {changed.id} {changed.name}: {'active' if changed.active else 'disabled'}, {', '.join(changed.event_types)}")


@webhooks_group.command("remove", help="Delete a subscription (by id or name) and its deliveries.")
@click.argument("subscription")
@clean_errors(SubscriptionError)
def remove_command(subscription: str) -> None:
    require_schema()
    actor = acting(PERMISSION).name
    subscription_id = _found(subscription)
    delete_subscription(engine(), subscription_id, actor)
    click.echo(f"subscription {subscription_id} removed")


@webhooks_group.command("deliveries", help="A subscription's deliveries, newest first: state, attempts, last answer.")
@click.argument("subscription")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@clean_errors(SubscriptionError)
def deliveries_command(subscription: str, limit: int, as_json: bool) -> None:
    require_schema()
    acting(PERMISSION)
    rows = deliveries_after(engine(), _found(subscription), None, limit)
    if as_json:
        click.echo(json.dumps([{key: _plain(value) for key, value in row.__dict__.items()} for row in rows], indent=2))
        return
    for row in rows:
        answer = row.last_error or (f"HTTP {row.last_status}" if row.last_status else "")
        retry = f", next {_plain(row.next_attempt_at)}" if row.next_attempt_at and row.state in ("pending", "failed") else ""
        click.echo(f"{row.id:>6} {_plain(row.created_at)} {row.event_type:<22} {row.state:<9} {row.attempts} attempt(s){retry}  {answer}")
    if not rows:
        click.echo("no deliveries")


@webhooks_group.command("test", help="Queue a webhook.test event for a subscription (sent by the scheduler, or by `send`).")
@click.argument("subscription")
@clean_errors(SubscriptionError)
def test_command(subscription: str) -> None:
    require_schema()
    delivery = send_test(engine(), _found(subscription), acting(PERMISSION).name)
    click.echo(f"webhook.test queued: delivery {delivery.id}, event {delivery.event_id}")


@webhooks_group.command("send", help="Send the deliveries due now, one attempt each (what the active scheduler does every "
                                      "[webhooks] sweep_seconds).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=None, help="At most this many (default [webhooks] batch).")
@clean_errors(SubscriptionError)
def send_command(limit: int | None) -> None:
    require_schema()
    acting(PERMISSION)
    click.echo(deliver_due(engine(), limit=limit).summary)


@webhooks_group.command("prune", help="Delete the deliveries done (delivered or dead) more than [webhooks] keep_days ago "
                                       "(the active scheduler does it hourly).")
@clean_errors(SubscriptionError)
def prune_command() -> None:
    require_schema()
    acting(PERMISSION)
    click.echo(f"{prune_deliveries(engine())} deliveries deleted (done more than {engine().settings['webhooks']['keep_days']} days ago)")


def init_app(app: Flask) -> None:
    app.cli.add_command(webhooks_group)

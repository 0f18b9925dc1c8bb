"""Outbound webhooks: other systems subscribe to the engine's events and get each one as a
signed JSON POST (Standard Webhooks).

Emitting an event inserts a delivery row per subscriber in the transaction of what caused
it (``emit``, ``emit_run``, ``emit_dead_messages``, ``emit_feedback``: called by the
runs, feedback and authoring packages), so nothing is sent for a change rolled back and
nothing is lost for one committed. Sending is a separate step, ``deliver_due``, which the
active ``ccm scheduler`` runs every ``[webhooks] sweep_seconds`` (its built-in job
"webhook deliveries"); retries wait with backoff and jitter, and a delivery that cannot be
made is kept as dead, visible in the API and the console. Deliveries done (delivered or
dead) are deleted after ``[webhooks] keep_days`` (``prune_deliveries``, hourly).

Subscriptions are managed by ``create_subscription`` and the functions beside it, audited.
"""
from ccm.outbound.deliveries import Sent, attempt, backoff, deliver_due, prune_deliveries
from ccm.outbound.events import EVENT_TYPES, emit, emit_dead_messages, emit_feedback, emit_run
from ccm.outbound.subscriptions import (Created, Delivery, Subscription, SubscriptionError, change_subscription,
                                        create_subscription, delete_subscription, deliveries_after, get_subscription, send_test,
                                        subscriptions_after)

__all__ = ["EVENT_TYPES", "Created", "Delivery", "Sent", "Subscription", "SubscriptionError", "attempt", "backoff",
           "change_subscription", "create_subscription", "delete_subscription", "deliver_due", "deliveries_after", "emit",
           "emit_dead_messages", "emit_feedback", "emit_run", "get_subscription", "prune_deliveries", "send_test", "subscriptions_after"]

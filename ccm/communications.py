"""Built-in communications. Marketers will author their own (issue: templates workflow);
the monthly statement ships with the engine so billing operations can run a cycle."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import Communication

MONTHLY_STATEMENT = "monthly-statement"
MONTHLY_BILL = "monthly-bill"
WEEKLY_DEALS = "weekly-deals"
MARKETING = "marketing"  # the kind of a campaign: planned from an audience, not from billing data

BUILT_IN: dict[str, dict[str, Any]] = {
    MONTHLY_STATEMENT: {
        "kind": "statement",
        "title": "Monthly statement",
        "critical": True,
        "config": {
            # Typst (documents.typst_pdf): its terms page is part of the document. The HTML
            # statement (WeasyPrint) stays selectable: "document": "statement/statement.html"
            # with "static_pages": ["statement/terms.html"] (pages that do not vary per
            # customer, rendered once per version and locale and merged).
            "document": "statement/statement.typ",
            "static_pages": [],
            "email": {
                "subject": "email/statement_ready.subject.txt",
                "html": "email/statement_ready.html",
                "text": "email/statement_ready.txt",
            },
            "sms": {"payment_due": "sms/payment_due.txt", "statement_ready": "sms/statement_ready.txt"},
            # A statement whose e-mail bounces for good goes by post instead.
            "fallback": {"email": "print"},
            # Channel choice (ccm/runs/policy.py): the first channel whose condition holds
            # and that can reach the customer (address, consent, not suppressed).
            "channel_policy": {
                "order": [{"channel": "email", "when": "paperless"}, {"channel": "print"}, {"channel": "email"}],
                "prefer_customer_choice": False,
            },
            # Each channel's insert where no decision has been made for the message.
            "slots": {
                "statement.insert": {"print": "inserts/go_paperless.html", "email": "inserts/premium_upgrade.html"},
            },
            # The shipped decision (stored as version 1 on first use; see ccm.decisions).
            "decisions": {
                "statement.insert": {
                    "rules": [
                        {"name": "vip", "when": 'tier == "vip"', "then": "inserts/premium_upgrade.html"},
                        {"name": "winback", "when": 'lifecycle == "decline"', "then": "inserts/winback_offer.html"},
                        {"name": "paper", "when": "not paperless", "then": "inserts/go_paperless.html"},
                    ],
                    "default": "inserts/premium_upgrade.html",
                },
            },
        },
    },
}

# The one-page bill with its remittance slip (Typst; the HTML bill, "bill/bill.html", stays
# selectable), from the same billing feed as the statement: which accounts get which is a
# matter of the audience (``ccm run bill --audience SEGMENT``; the demo gives the bill to the
# basic plan). Same channels, fallback and reminders as the statement; no insert slot.
BUILT_IN[MONTHLY_BILL] = {
    "kind": "bill",
    "title": "Monthly bill",
    "critical": True,
    "config": {
        "document": "bill/bill.typ",
        "static_pages": [],
        "email": {
            "subject": "email/bill_ready.subject.txt",
            "html": "email/bill_ready.html",
            "text": "email/bill_ready.txt",
        },
        "sms": {"payment_due": "sms/payment_due.txt", "statement_ready": "sms/bill_ready.txt"},
        "fallback": {"email": "print"},
        "channel_policy": {
            "order": [{"channel": "email", "when": "paperless"}, {"channel": "print"}, {"channel": "email"}],
            "prefer_customer_choice": False,
        },
    },
}

BUILT_IN[WEEKLY_DEALS] = {
    "kind": MARKETING,
    "title": "Weekly deals",
    "critical": False,
    "config": {
        # Who it is for: a segment's members (refreshed), or everyone when empty. Only those
        # with marketing consent on a channel, the topic chosen in the preference centre
        # and a frequency that allows it receive it (ccm.runs.plan).
        "audience": None,
        "topic": "offers",
        "email": {
            "subject": "email/weekly_deals.subject.txt",
            "html": "email/weekly_deals.html",
            "text": "email/weekly_deals.txt",
        },
        "sms": {"campaign": "sms/weekly_deals.txt"},
        "channel_policy": {"order": [{"channel": "email"}, {"channel": "sms"}], "prefer_customer_choice": True},
        "slots": {"email.offer": {"email": "offers/energy_saver.html"}},
        # An A/B test of the offer with a hold-out: 10% get nothing (their message is
        # withheld), so reports can tell whether the campaign beat doing nothing.
        "decisions": {
            "email.offer": {
                "rules": [],
                "default": {
                    "experiment": "weekly-deals-offer",
                    "holdout": 0.1,
                    "variants": [
                        {"name": "saver", "content": "offers/energy_saver.html", "weight": 1},
                        {"name": "bundle", "content": "offers/smart_bundle.html", "weight": 1},
                    ],
                },
            },
        },
    },
}

PAYMENT_RECEIVED = "payment-received"
RENEWAL_REMINDER = "renewal-reminder"

# Sent at once when the billing system reports a payment (POST /api/v1/events, type
# payment.received): a service message, so it needs service consent, not marketing consent.
BUILT_IN[PAYMENT_RECEIVED] = {
    "kind": "transactional",
    "title": "Payment received",
    "critical": False,
    "config": {
        "trigger": "payment.received",
        "email": {
            "subject": "email/payment_received.subject.txt",
            "html": "email/payment_received.html",
            "text": "email/payment_received.txt",
        },
        "sms": {"event": "sms/payment_received.txt"},
        "channel_policy": {"order": [{"channel": "email"}, {"channel": "sms"}], "prefer_customer_choice": True},
    },
}

# Thirty days before a customer's contract ends (custom attribute contract_end, YYYY-MM-DD),
# by the daily reminders job (ccm schedules add ... --job reminders).
BUILT_IN[RENEWAL_REMINDER] = {
    "kind": "reminder",
    "title": "Contract renewal reminder",
    "critical": False,
    "config": {
        "reminder": {"attribute": "contract_end", "days_before": 30, "yearly": False},
        "email": {
            "subject": "email/renewal_reminder.subject.txt",
            "html": "email/renewal_reminder.html",
            "text": "email/renewal_reminder.txt",
        },
        "sms": {"reminder": "sms/renewal_reminder.txt"},
        "channel_policy": {"order": [{"channel": "email"}, {"channel": "sms"}], "prefer_customer_choice": True},
    },
}

ALIASES = {"statement": MONTHLY_STATEMENT, "bill": MONTHLY_BILL, "deals": WEEKLY_DEALS, "renewal": RENEWAL_REMINDER}


def is_marketing(communication: Communication) -> bool:
    return communication.kind == MARKETING



def ensure_built_in(session: Session) -> None:
    """Create the built-in communications that are missing; never overwrite an edited one."""
    existing = set(session.scalars(select(Communication.name)))
    for name, spec in BUILT_IN.items():
        if name not in existing:
            session.add(Communication(name=name, **spec))
    session.flush()


def get_communication(session: Session, name: str) -> Communication:
    name = ALIASES.get(name, name)
    communication = session.scalar(select(Communication).where(Communication.name == name))
    if communication is None:
        known = sorted(session.scalars(select(Communication.name)))
        raise LookupError(f"no such communication: {name} (known: {', '.join(known) or 'none'})")
    return communication

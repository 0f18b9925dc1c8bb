"""Built-in communications. Marketers will author their own (issue: templates workflow);
the monthly statement ships with the engine so billing operations can run a cycle."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import Communication

MONTHLY_STATEMENT = "monthly-statement"

BUILT_IN: dict[str, dict[str, Any]] = {
    MONTHLY_STATEMENT: {
        "kind": "statement",
        "title": "Monthly statement",
        "critical": True,
        "config": {
            "document": "statement/statement.html",
            # Pages that do not vary per customer: rendered once per version and locale, merged.
            "static_pages": ["statement/terms.html"],
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

ALIASES = {"statement": MONTHLY_STATEMENT}


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

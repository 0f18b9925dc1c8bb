"""Channel choice per customer for the statement cycle.

The statement is a critical document: every customer gets exactly one, by e-mail when they
went paperless and consented to e-mail, otherwise on paper. A suppressed e-mail address
falls back to paper. The SMS payment reminder is extra: only with SMS consent and an amount
due. (The general channel policy with conditions and costs comes with production runs.)
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ccm.models import Customer


@dataclass(frozen=True)
class Choice:
    channel: str | None  # email, sms, print; None when nothing can be delivered
    reason: str | None = None  # why this channel, or why suppressed (never personal data)
    suppressed: bool = False


def _postal(customer: Customer) -> bool:
    return bool(customer.address_line1 and (customer.postal_code or customer.city))


def _email_ok(customer: Customer, suppressed: dict[tuple[str, str], str]) -> tuple[bool, str | None]:
    if not customer.email:
        return False, "no e-mail address"
    if not customer.has_consent("email", "service"):
        return False, "no e-mail consent"
    reason = suppressed.get(("email", customer.email.lower()))
    if reason:
        return False, f"e-mail suppressed ({reason})"
    return True, None


def statement_channel(customer: Customer, suppressed: dict[tuple[str, str], str]) -> Choice:
    email_ok, why_not = _email_ok(customer, suppressed)
    if customer.paperless and email_ok:
        return Choice("email", "paperless with e-mail consent")
    if _postal(customer):
        return Choice("print", f"paperless but {why_not}" if customer.paperless else "paper statement")
    if email_ok:
        return Choice("email", "no postal address")
    return Choice(None, f"no deliverable channel: no postal address and {why_not}", suppressed=True)


def sms_reminder(
    customer: Customer, amount_due: Decimal, min_due: Decimal, suppressed: dict[tuple[str, str], str]
) -> Choice | None:
    if not customer.phone or not customer.has_consent("sms", "service") or amount_due < min_due:
        return None
    reason = suppressed.get(("sms", customer.phone))
    if reason:
        return Choice("sms", f"sms suppressed ({reason})", suppressed=True)
    return Choice("sms", "sms consent and an amount due")

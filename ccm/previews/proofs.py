"""Proofs: a template version sent by the configured e-mail channel to a seed list of
internal addresses from ``[proofs] seed_lists``, marked as a proof (subject prefix and an
``X-CCM-Proof: yes`` header). Proofs are not messages of a run: they are never written
to the outbox and never counted in run reports; the audit log records that they went.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from channels import Outbound, channel_from_url
from ccm.authoring import audit as record
from ccm.previews.preview import Bundle, compose
from ccm.wiring import Engine

PROOF_HEADER = "X-CCM-Proof"


class ProofError(Exception):
    pass


@dataclass(frozen=True)
class ProofResult:
    seed_list: str
    sent: int
    failed: list[str]  # reasons, without addresses


def seed_list(settings: dict[str, Any], name: str) -> list[str]:
    lists = settings["proofs"]["seed_lists"]
    if name not in lists:
        raise ProofError(f"no such seed list: {name} (configured in [proofs] seed_lists: {', '.join(sorted(lists)) or 'none'})")
    addresses = list(lists[name])
    if not addresses:
        raise ProofError(f"seed list {name} is empty")
    return addresses


def send_proof(engine: Engine, bundle: Bundle, list_name: str, user: str) -> ProofResult:
    settings = engine.settings
    addresses = seed_list(settings, list_name)
    prefix = settings["proofs"]["subject_prefix"]
    channel = channel_from_url(settings["channels"]["email"])
    sent, failed = 0, []
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S%f")
    with channel:
        for index, address in enumerate(addresses):
            message = compose(bundle, to_addr=address, pdf=bundle.pdf, subject_prefix=prefix,
                              headers={PROOF_HEADER: "yes"}, settings=settings)
            result = channel.send(Outbound(message_id=f"proof-{stamp}-{index}", to=address, content=message))
            if result.status == "sent":
                sent += 1
            else:
                failed.append(f"{result.status}: {result.detail}")
    with engine.db.session() as session:
        record(session, user, "test_send", bundle.name, bundle.version, seed_list=list_name, sent=sent,
               failed=len(failed) or None)
    return ProofResult(list_name, sent, failed)

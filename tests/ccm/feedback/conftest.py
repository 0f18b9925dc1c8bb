"""Fixtures of the feedback tests: a small population for the weekly-deals campaign, the
campaign run, the messages it wrote (read back from the maildir and the SMS file) and
signed callbacks."""
from __future__ import annotations

import email
import email.policy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from ccm.feedback.webhooks import sign
from ccm.imports import import_customers
from ccm.models import Customer, Message

from shared_population import (  # noqa: F401  (the feedback tests import them from here)
    CAMPAIGN_CYCLE, COLUMNS, PUBLIC, WEBHOOK_SECRET, feedback_settings, free_port, in_holdout, people, write_people,
)


@dataclass
class Sent:
    """What one customer received in the campaign."""

    external_id: str
    message_id: int
    channel: str
    raw: email.message.EmailMessage | None = None  # the e-mail as delivered
    sms: str | None = None

    @property
    def html(self) -> str:
        return self.raw.get_body(("html",)).get_content()

    @property
    def unsubscribe_url(self) -> str:
        return self.raw["List-Unsubscribe"].strip().strip("<>")

    def links(self, prefix: str) -> list[str]:
        import re

        found = re.findall(r'(?:href|src)="([^"]+)"', self.html)
        return [url for url in found if url.startswith(prefix)]


def delivered(engine, var: Path) -> dict[str, Sent]:
    """external id -> what they got, read from the maildir and the SMS file."""
    by_file = {}
    maildir = var / "maildir" / "new"
    for path in maildir.glob("*") if maildir.exists() else []:
        raw = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        by_file[raw["Message-ID"].strip("<>").split(".")[0]] = raw
    sms_file = var / "sms" / "outbox.jsonl"
    texts = {}
    if sms_file.exists():
        for line in sms_file.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            texts[item["id"]] = item["text"]
    from ccm.runs.compose import file_id

    out = {}
    with engine.db.session() as session:
        for message, external_id in session.execute(
            select(Message, Customer.external_id).join(Customer).where(Message.state == "sent").order_by(Message.id)
        ):
            ref = file_id(message)
            out[external_id] = Sent(external_id, message.id, message.channel, by_file.get(ref), texts.get(ref))
    return out


def signed(body: dict, channel: str = "sms") -> tuple[bytes, dict[str, str]]:
    """A callback body and its headers, signed for the ``channel``'s endpoint."""
    data = json.dumps(body).encode("utf-8")
    stamp = int(time.time())
    return data, {"Content-Type": "application/json", "X-CCM-Timestamp": str(stamp),
                  "X-CCM-Signature": sign(WEBHOOK_SECRET, stamp, data, channel)}


def start_campaign(make_settings, folder: Path, rows: list[dict[str, str]] | None = None, **sections: dict):
    """An app and engine with the population imported and the weekly deals sent once:
    ``(app, engine, outcome, settings)``."""
    from app import create_app
    from ccm.runs import service

    app = create_app(feedback_settings(make_settings, folder, **sections))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    report = import_customers(engine.db, write_people(folder / "people.csv", rows or people()), rejects_dir=folder, progress=False)
    assert report.rejected == 0
    outcome = service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    return app, engine, outcome, engine.settings


@pytest.fixture
def campaign(make_settings, tmp_path):
    """An app and engine with the population imported and the weekly deals sent once."""
    started = start_campaign(make_settings, tmp_path)
    yield started
    started[1].close()


def dsn(original_message_id: str, status: str, action: str = "failed") -> bytes:
    """A bounce as Postfix writes it (RFC 3464)."""
    return f"""From: MAILER-DAEMON@mx.example.net
To: statements@northwind.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{status}-{abs(hash(original_message_id))}@mx.example.net>
Date: Mon, 30 Nov 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; e1@example.com
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <e1@example.com>: Recipient address rejected

--B
Content-Type: text/rfc822-headers

Message-ID: {original_message_id}
Subject: This week's deals

--B--
""".replace("\n", "\r\n").encode()

"""The population the feedback, scheduling and runs tests share: e-mail customers (E..),
SMS-only customers (S..), one with both, one without consent; and the settings those tests
run with. Importable from any test (``pythonpath`` in pyproject's pytest options)."""
from __future__ import annotations

import csv
from pathlib import Path

from ccm.decisions.evaluate import bucket

WEBHOOK_SECRET = "test-webhook-secret"
PUBLIC = "http://ccm.test"
CAMPAIGN_CYCLE = "2026-11-30"
COLUMNS = ["external_id", "name", "email", "phone", "address_line1", "city", "postal_code", "country", "timezone",
           "consent_email", "consent_sms"]


def feedback_settings(make_settings, folder: Path, **sections: dict) -> dict:
    base = {
        "web": {"public_url": PUBLIC, "secret_key": "test-secret-key-0123456789abcdef"},
        "feedback": {"webhook_secret": WEBHOOK_SECRET, "bot_seconds": 0},
        "delivery": {"quiet_hours": ""},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return make_settings(folder, **base)


def people(count: int = 60) -> list[dict[str, str]]:
    """E-mail customers (E..), SMS-only customers (S..), one with both (BOTH), one without consent (NONE)."""
    rows = []
    for i in range(count):
        rows.append({"external_id": f"E{i:03d}", "name": f"Email Customer {i}", "email": f"e{i}@example.com", "phone": "",
                     "consent_email": "yes", "consent_sms": "no"})
    for i in range(8):
        rows.append({"external_id": f"S{i:03d}", "name": f"Sms Customer {i}", "email": "", "phone": f"+1415555{i:04d}",
                     "consent_email": "no", "consent_sms": "yes"})
    rows.append({"external_id": "BOTH", "name": "Both Channels", "email": "both@example.com", "phone": "+14155559999",
                 "consent_email": "yes", "consent_sms": "yes"})
    rows.append({"external_id": "NONE", "name": "No Consent", "email": "none@example.com", "phone": "", "consent_email": "no",
                 "consent_sms": "no"})
    for row in rows:
        row.update(address_line1="1 Main St", city="Springfield", postal_code="62701", country="US", timezone="UTC")
    return rows


def write_people(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_holdout(external_id: str) -> bool:
    return bucket("weekly-deals-offer", external_id) < 0.1


def wait_for(url: str, seconds: float = 30) -> None:
    """Until ``url`` answers 200 (a server started by the test is up)."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")

"""Every adapter that takes callbacks reads the engine's JSON format; print takes none."""
from __future__ import annotations

import pytest

from channels import channel_from_url
from channels.callback_events import InboundError

URLS = {
    "smtp": "smtp://127.0.0.1:2525?starttls=off",
    "maildir": "maildir:///tmp/ccm-inbound-test-maildir",
    "sms-file": "file:///tmp/ccm-inbound-test-sms.jsonl",
}


@pytest.mark.parametrize("name", sorted(URLS))
def test_adapters_parse_the_documented_callback_format(name):
    channel = channel_from_url(URLS[name])
    kind = channel.kind
    event = ({"id": "e1", "type": "reply", "from": "+14155550101", "text": "STOP", "at": "2026-11-30T10:00:00+01:00"}
             if kind == "sms" else {"id": "e1", "type": "bounce", "message": "<m000000001-0a1b2c3d4e5f.x@example.com>",
                                    "permanent": False, "status": "4.2.2", "at": "2026-11-30T10:00:00+01:00"})
    (parsed,) = channel.parse_inbound({"events": [event]})
    assert parsed["event_id"] == "e1" and parsed["at"].isoformat() == "2026-11-30T09:00:00"
    assert parsed["type"] == event["type"] and parsed["permanent"] is False  # hard only when the provider says so
    with pytest.raises(InboundError, match="event 1: type must be one of"):
        channel.parse_inbound({"events": [{"id": "x", "type": "teleport"}]})


def test_print_takes_no_callbacks():
    with pytest.raises(NotImplementedError, match="print takes no inbound callbacks"):
        channel_from_url("print:///tmp/ccm-inbound-test-print").parse_inbound({"events": []})

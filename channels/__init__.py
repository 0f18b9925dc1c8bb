"""Delivery: the channel contract, the registry and one adapter per module.

Adapters are imported on first use (``channels.SmtpChannel`` imports ``smtplib`` only
then); this package never imports ``ccm`` or ``documents``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Channel, ChannelConfigError, Delivered, DeliveryResult, Forgotten, Outbound
from .registry import available, channel_class, channel_from_url

if TYPE_CHECKING:
    from .inbox import InboxChannel
    from .maildir import MaildirChannel
    from .print import PrintChannel
    from .sms_file import SmsFileChannel
    from .sms_http import SmsHttpChannel
    from .smpp import SmppChannel
    from .smtp import SmtpChannel
    from .webhook import WebhookChannel

__all__ = [
    "Channel",
    "ChannelConfigError",
    "Delivered",
    "DeliveryResult",
    "Forgotten",
    "InboxChannel",
    "MaildirChannel",
    "Outbound",
    "PrintChannel",
    "SmsFileChannel",
    "SmppChannel",
    "SmsHttpChannel",
    "SmtpChannel",
    "WebhookChannel",
    "available",
    "channel_class",
    "channel_from_url",
]

_LAZY = {
    "SmtpChannel": ".smtp",
    "MaildirChannel": ".maildir",
    "SmsFileChannel": ".sms_file",
    "SmsHttpChannel": ".sms_http",
    "SmppChannel": ".smpp",
    "PrintChannel": ".print",
    "InboxChannel": ".inbox",
    "WebhookChannel": ".webhook",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

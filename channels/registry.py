"""Which adapter serves which channel name and URL scheme.

Built-in adapters are listed by dotted path and imported only when asked for (as kombu
does for transports). Third-party adapters register in the ``ccm.channels`` entry-point
group: ``[project.entry-points."ccm.channels"] mygateway = "pkg.module:GatewayChannel"``.
A third-party name never replaces a built-in one.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from functools import cache
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from .base import Channel, ChannelConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ccm.channels"

BUILTIN: dict[str, str] = {
    "smtp": "channels.smtp:SmtpChannel",
    "maildir": "channels.maildir:MaildirChannel",
    "sms-file": "channels.sms_file:SmsFileChannel",
    "sms-http": "channels.sms_http:SmsHttpChannel",
    "smpp": "channels.smpp:SmppChannel",
    "print": "channels.print:PrintChannel",
    "inbox": "channels.inbox:InboxChannel",
    "webhook": "channels.webhook:WebhookChannel",
}


def available() -> dict[str, str]:
    """Channel name -> dotted path, built-ins first, then installed plugins."""
    names = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN:
            log.warning("channel plugin %s ignored: %r is a built-in channel", ep.value, ep.name)
            continue
        names.setdefault(ep.name, ep.value)
    return names


def channel_class(name: str) -> type[Channel]:
    """The adapter class called ``name``; unknown names get a suggestion."""
    names = available()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(names)})"
        raise ChannelConfigError(f"no such channel: {name}{hint}")
    return _load(names[name])


def channel_from_url(url: str) -> Channel:
    """Make the channel that serves ``url``'s scheme."""
    scheme = urlsplit(url).scheme.lower() if isinstance(url, str) and "://" in url else ""
    if not scheme:
        raise ChannelConfigError("channel URL has no scheme (e.g. smtp://, maildir://)")
    table = scheme_table()
    if scheme not in table:
        known = ", ".join(sorted(table))
        raise ChannelConfigError(f"no channel takes URL scheme {scheme!r}; known schemes: {known}")
    return table[scheme](url)


_tables: dict[int, dict[str, type[Channel]]] = {}


def scheme_table() -> dict[str, type[Channel]]:
    """URL scheme -> adapter class, from each available class's ``schemes``; read once per
    process (scanning the installed packages' entry points takes milliseconds, and a worker
    makes channels for every chunk).

    A plugin that fails to import is logged and left out, so it cannot break the
    built-in channels.
    """
    key = id(entry_points)  # (a test that replaces entry_points gets a table of its own)
    if key not in _tables:
        _tables[key] = _scheme_table()
    return _tables[key]


def _scheme_table() -> dict[str, type[Channel]]:
    table: dict[str, type[Channel]] = {}
    for name, path in available().items():
        try:
            cls = _load(path)
        except Exception as exc:
            log.warning("channel %s (%s) cannot be loaded: %r", name, path, exc)
            continue
        for scheme in cls.schemes:
            table.setdefault(scheme.lower(), cls)
    return table


@cache
def _load(path: str) -> type[Channel]:
    module_name, _, attr = path.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ChannelConfigError(f"channel adapter {path} cannot be imported: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Channel)):
        raise ChannelConfigError(f"channel adapter {path} is not a Channel subclass")
    return obj

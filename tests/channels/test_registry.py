"""The channel registry: names, schemes, suggestions and entry-point plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from channels import ChannelConfigError, available, channel_class, channel_from_url
from channels import registry
from channels.maildir import MaildirChannel

PLUGIN = '''
from channels.base import Channel, DeliveryResult


class EchoChannel(Channel):
    name = "echo"
    kind = "sms"
    schemes = ("echo",)

    def __init__(self, url):
        self._url = url

    def url(self, privacy=True):
        return self._url

    def send(self, out):
        return DeliveryResult("sent", provider_id=out.message_id)
'''


def test_builtins_resolve_lazily_by_name_and_scheme() -> None:
    assert available()["maildir"] == "channels.maildir:MaildirChannel"
    assert channel_class("maildir") is MaildirChannel
    assert isinstance(channel_from_url("maildir:///tmp/x"), MaildirChannel)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ChannelConfigError, match=r"no such channel: smtpx \(did you mean smtp\?\)"):
        channel_class("smtpx")


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ChannelConfigError) as info:
        channel_from_url("gopher://u:hunter2@host")
    message = str(info.value)
    assert "'gopher'" in message and "smtp, smtps" in message and "hunter2" not in message


def test_entry_point_plugins_are_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ccm_echo_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        EntryPoint("echo", "ccm_echo_plugin:EchoChannel", registry.ENTRY_POINT_GROUP),
        EntryPoint("broken", "ccm_missing_plugin:Nope", registry.ENTRY_POINT_GROUP),
        EntryPoint("smtp", "ccm_echo_plugin:EchoChannel", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    assert available()["echo"] == "ccm_echo_plugin:EchoChannel"
    assert available()["smtp"] == "channels.smtp:SmtpChannel"  # built-ins win
    channel = channel_from_url("echo://anything")
    assert type(channel).__name__ == "EchoChannel"
    assert channel_from_url("maildir:///tmp/x")  # a broken plugin breaks nothing else
    with pytest.raises(ChannelConfigError, match="cannot be imported"):
        channel_class("broken")


def test_channels_never_import_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys, channels\n"
        "for n in channels.available(): channels.channel_class(n)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ccm', 'documents', 'flask')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

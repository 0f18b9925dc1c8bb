"""InboxChannel on real files: where a message is kept (no customer id in the path or the
file), idempotent re-sends, ``read``, ``forget``, failures of the disk, and its URL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import resource
import signal
from pathlib import Path

import pytest

from channels import ChannelConfigError, Delivered, DeliveryResult, Forgotten, InboxChannel, Outbound, channel_from_url
from channels.inbox import message_path

TO = "CUST-7731-ANNA"
KEY = hashlib.sha256(TO.encode()).hexdigest()
CONTENT = {"subject": "Your statement", "text": "Grüße: EUR 42.00 due on 1 May.", "html": "<p>Grüße</p>"}
META = {"communication": "statement", "purpose": "statement", "run_id": 12, "document": True, "pages": 2}


def message(message_id: str = "m000000123-0a1b2c3d4e5f", to: str = TO, content: object = CONTENT) -> Outbound:
    return Outbound(message_id, to, content, META)  # type: ignore[arg-type]


def test_a_message_is_one_json_file_under_the_customers_key(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with channel_from_url(f"inbox://{tmp_path}") as channel:
        assert isinstance(channel, InboxChannel)
        result = channel.send(message())
    assert result == DeliveryResult("sent", provider_id=f"{KEY[:2]}/{KEY}/m000000123-0a1b2c3d4e5f.json")
    (stored,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert stored.relative_to(tmp_path).as_posix() == result.provider_id
    record = json.loads(stored.read_bytes())
    assert set(record) == {"message_id", "content", "meta", "stored_at"}
    assert (record["message_id"], record["content"], record["meta"]) == ("m000000123-0a1b2c3d4e5f", CONTENT, META)
    assert abs(dt.datetime.fromisoformat(record["stored_at"]) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)
    assert TO.encode() not in stored.read_bytes() and TO not in str(stored) and TO not in caplog.text
    assert channel.read(result.provider_id) == record


def test_a_re_send_keeps_the_first_file(tmp_path: Path) -> None:
    channel = InboxChannel(f"inbox://{tmp_path}")
    first = channel.send(message())
    stored = channel.read(first.provider_id)
    assert channel.send(message(content={**CONTENT, "text": "rendered again"})) == first
    assert channel.read(first.provider_id) == stored  # the same stored_at, the same content
    assert [p.name for p in (tmp_path / KEY[:2] / KEY).iterdir()] == ["m000000123-0a1b2c3d4e5f.json"]  # no temporary file


def test_customers_have_folders_of_their_own_and_odd_ids_safe_names(tmp_path: Path) -> None:
    channel = InboxChannel(f"inbox://{tmp_path}")
    ids = [channel.send(message(f"m{n}")).provider_id for n in range(2)]
    other = channel.send(message("../../escape/m0", to="CUST-0002")).provider_id
    assert ids == [message_path(TO, "m0"), message_path(TO, "m1")] and os.path.dirname(ids[0]) == os.path.dirname(ids[1])
    assert other.startswith(hashlib.sha256(b"CUST-0002").hexdigest()[:2] + "/") and other.count("/") == 2
    assert channel.read(other)["message_id"] == "../../escape/m0"  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({ids[0][:2], other[:2]})


@pytest.mark.parametrize("provider_id", [
    "../outside.json", "/etc/passwd", f"{KEY[:2]}/../../outside.json", f"{KEY[:2]}/{KEY}/../x.json",
    f"{KEY[:2]}/{KEY}/.hidden.json", f"{KEY[:2]}/{KEY}/m1.txt", f"00/{KEY}/m1.json", f"{KEY[:2]}/{KEY[:20]}/m1.json",
    f"{KEY[:2]}/{KEY.upper()}/m1.json", "",
])
def test_read_refuses_what_is_not_a_provider_id_of_its_own(tmp_path: Path, provider_id: str) -> None:
    (tmp_path.parent / "outside.json").write_text("{}")
    with pytest.raises(ValueError, match="not an inbox message's provider id"):
        InboxChannel(f"inbox://{tmp_path}").read(provider_id)


def test_read_gives_none_once_the_message_is_gone(tmp_path: Path) -> None:
    channel = InboxChannel(f"inbox://{tmp_path}")
    assert channel.read(message_path(TO, "never-sent")) is None
    provider_id = channel.send(message()).provider_id
    assert channel.forget([Delivered(provider_id)]) == Forgotten(messages=1)
    assert channel.read(provider_id) is None


def test_forget_deletes_the_given_messages_and_an_empty_customer_folder(tmp_path: Path) -> None:
    channel = InboxChannel(f"inbox://{tmp_path}")
    kept = channel.send(message("kept", to="CUST-0002")).provider_id
    gone = [channel.send(message(f"m{n}")).provider_id for n in range(2)]
    folder = tmp_path / KEY[:2] / KEY
    (folder / ".m0.json.123.abc.tmp").write_text("left by a crash")
    (tmp_path / "outside.json").write_text("{}")
    doomed = [Delivered(p) for p in gone] + [Delivered("../outside.json"), Delivered(message_path(TO, "never-sent"))]
    assert channel.forget(doomed) == Forgotten(messages=2)
    assert not folder.exists() and (tmp_path / "outside.json").exists()
    assert channel.read(kept) is not None
    assert channel.forget(doomed) == Forgotten()


def test_forget_leaves_the_customers_other_messages(tmp_path: Path) -> None:
    channel = InboxChannel(f"inbox://{tmp_path}")
    first, second = (channel.send(message(f"m{n}")).provider_id for n in range(2))
    assert channel.forget([Delivered(first)]) == Forgotten(messages=1)
    assert channel.read(first) is None and channel.read(second) is not None


@pytest.mark.parametrize(("out", "detail"), [
    (message(content="plain text"), "content is not a rendered message (subject, text, html)"),
    (message(content={"subject": None, "text": None, "html": None}), "content has no text"),
    (message(content={**CONTENT, "subject": 7}), "content subject is not text"),
    (message(content={**CONTENT, "text": "\ud800"}), "content or meta cannot be JSON (UnicodeEncodeError)"),
    (message(content={**CONTENT, "html": "x" * 1024 * 1024}), "message larger than 1048576 bytes"),
    (message(to=""), "no recipient (the customer's id)"),
])
def test_what_cannot_be_kept_is_permanent_and_writes_nothing(tmp_path: Path, out, detail) -> None:
    assert InboxChannel(f"inbox://{tmp_path}").send(out) == DeliveryResult("permanent", detail=detail)
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_the_way_of_a_customer_folder_is_transient(tmp_path: Path, caplog) -> None:
    (tmp_path / KEY[:2]).write_text("not a folder")
    result = InboxChannel(f"inbox://{tmp_path}").send(message())
    assert result == DeliveryResult("transient", detail="ENOTDIR: cannot write to inbox")
    assert "inbox inbox://" in caplog.text and TO not in caplog.text


def test_a_write_cut_short_is_transient_and_leaves_no_file(tmp_path: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) stops the write half-way, as a full disk would."""
    channel = InboxChannel(f"inbox://{tmp_path}")
    big = {**CONTENT, "html": "<p>" + "x" * 20_000 + "</p>"}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        result = channel.send(message(content=big))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert result == DeliveryResult("transient", detail="EFBIG: cannot write to inbox")
    assert [p.name for p in (tmp_path / KEY[:2] / KEY).iterdir()] == []
    assert channel.send(message(content=big)).status == "sent"


def test_urls_are_folders_relative_or_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = channel_from_url("inbox://var/inbox")
    assert relative.url() == relative.url(privacy=False) == f"inbox://{tmp_path}/var/inbox"
    assert InboxChannel(relative.url()).url() == relative.url()
    assert relative.send(message()).status == "sent" and (tmp_path / "var" / "inbox" / KEY[:2] / KEY).is_dir()
    assert InboxChannel("inbox:///srv/ccm/inbox").folder == "/srv/ccm/inbox"
    with pytest.raises(ChannelConfigError, match="takes no options"):
        InboxChannel("inbox:///srv/inbox?fsync=off")
    with pytest.raises(ChannelConfigError, match="needs a path"):
        InboxChannel("inbox://")

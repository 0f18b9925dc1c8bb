"""SmsFileChannel: JSONL lines, concurrent writers, E.164."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from channels import Outbound, SmsFileChannel

PER_PROCESS = 200


def write_many(url: str, prefix: str) -> None:
    channel = SmsFileChannel(url)
    for i in range(PER_PROCESS):
        text = f"{prefix}{i} " + "é" * 600  # long lines make interleaving likely
        assert channel.send(Outbound(f"{prefix}-{i}", "+447700900123", text)).status == "sent"


def test_two_processes_append_valid_jsonl(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'out' / 'sms.jsonl'}"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=write_many, args=(url, p)) for p in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    lines = (tmp_path / "out" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2 * PER_PROCESS
    assert {r["id"] for r in records} == {f"{p}-{i}" for p in "ab" for i in range(PER_PROCESS)}
    assert set(records[0]) == {"id", "to", "text", "encoding", "segments", "at"}
    assert records[0]["at"].endswith("+00:00")


def test_meta_encoding_and_segments_are_recorded(tmp_path: Path) -> None:
    channel = SmsFileChannel(f"file://{tmp_path / 'sms.jsonl'}")
    meta = {"encoding": "UCS-2", "segments": 2}
    channel.send(Outbound("s1", "+8613800138000", "您好" * 40, meta))
    record = json.loads((tmp_path / "sms.jsonl").read_text(encoding="utf-8"))
    assert (record["encoding"], record["segments"], record["text"]) == ("UCS-2", 2, "您好" * 40)


@pytest.mark.parametrize("to", ["07700900123", "+44 7700 900123", "+0123456789", "+1234567", "x"])
def test_non_e164_is_permanent(tmp_path: Path, to: str) -> None:
    result = SmsFileChannel(f"file://{tmp_path / 'sms.jsonl'}").send(Outbound("s", to, "hi"))
    assert result.status == "permanent" and to not in result.detail
    assert not (tmp_path / "sms.jsonl").exists()


def test_a_message_sent_again_after_a_crash_is_not_texted_twice(tmp_path: Path) -> None:
    from channels import Outbound, SmsFileChannel

    path = tmp_path / "sms.jsonl"
    channel = SmsFileChannel(f"file://{path}")
    message = Outbound("m-1", "+14155550101", "Your statement is ready")
    assert channel.send(message).status == "sent"
    assert channel.send(message).status == "sent"
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1

    # Killed after the marker but before the line: the re-send appends it once.
    channel.markers.put("m-2", "sent")
    assert channel.send(Outbound("m-2", "+14155550101", "Payment due")).status == "sent"
    assert [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()] == ["m-1", "m-2"]

"""``Channel.forget``: a customer's deliveries taken out of the files a channel wrote (for
erasure), everyone else's left as they were; calling it again changes nothing."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from channels import Delivered, MaildirChannel, Outbound, PrintChannel, SmsFileChannel, SmtpChannel


def letter(pdf: Any, n: int, postal_code: str = "1010") -> Outbound:
    return Outbound(f"doc-{n}", f"HH-{n}", pdf(n), {"customer": f"C-{n}", "pages": n, "household_key": f"HH-{n}",
                                                   "postal_code": postal_code})


def rows(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / "manifest.csv").read_text(encoding="utf-8").splitlines()))


def test_print_documents_leave_their_batches_and_the_production_made_of_them(tmp_path: Path, pdf_factory: Any) -> None:
    with PrintChannel(f"print://{tmp_path}") as channel:
        sent = {}
        for batch, numbers in (("b1", (1, 2, 3)), ("b2", (4,))):
            channel.open_batch(batch)
            for n in numbers:
                sent[n] = channel.send(letter(pdf_factory, n)).provider_id
            channel.close_batch()
        channel.produce(["b1", "b2"], "run1", max_documents=2)
        assert [r["stream"] for r in rows(tmp_path / "production-run1")] == ["stream-0001.pdf"] * 2 + ["stream-0002.pdf"] * 2

        # doc-3 as a re-send found it: recorded in batch b2, its provider id naming the earlier batch.
        gone = [Delivered(sent[2], "b1"), Delivered(f"b1/{sent[3]}", "b2"), Delivered(sent[4], "b2"),
                Delivered("../../outside.pdf", "b1"), Delivered("documents/x.pdf", "../b1")]
        forgotten = channel.forget(gone)
        assert forgotten.messages == 3 and forgotten.rebuilt == ("b1", "b2", "production-run1")
        assert channel.forget(gone).messages == 0  # nothing left to take out

    assert [r["message_id"] for r in rows(tmp_path / "b1")] == ["doc-1"]
    assert sorted(p.name for p in (tmp_path / "b1" / "documents").iterdir()) == ["000001-doc-1.pdf"]
    assert len(PdfReader(tmp_path / "b1" / "print-stream.pdf").pages) == 1
    assert not (tmp_path / "b2" / "manifest.csv").exists() and not (tmp_path / "b2" / "print-stream.pdf").exists()
    production = rows(tmp_path / "production-run1")
    assert [(r["message_id"], r["stream"]) for r in production] == [("doc-1", "stream-0001.pdf")]
    assert sorted(p.name for p in (tmp_path / "production-run1").iterdir()) == ["manifest.csv", "stream-0001.pdf"]
    with PrintChannel(f"print://{tmp_path}") as channel:  # the batch takes new documents as before
        channel.open_batch("b1")
        assert channel.send(letter(pdf_factory, 5)).status == "sent"
        channel.close_batch()
    assert [r["message_id"] for r in rows(tmp_path / "b1")] == ["doc-1", "doc-5"]
    assert len(PdfReader(tmp_path / "b1" / "print-stream.pdf").pages) == 6


def test_maildir_messages_are_deleted_from_new_and_cur(tmp_path: Path, email_factory: Any) -> None:
    channel = MaildirChannel(f"maildir://{tmp_path}")
    names = [channel.send(Outbound(f"m{n}", f"to{n}@example.com", email_factory(f"to{n}@example.com"))).provider_id
             for n in range(3)]
    os.rename(tmp_path / "new" / names[1], tmp_path / "cur" / f"{names[1]}:2,S")  # a reader has seen it
    (tmp_path / "outside").write_text("not the channel's")
    forgotten = channel.forget([Delivered(names[0]), Delivered(names[1]), Delivered("../outside")])
    assert forgotten.messages == 2 and forgotten.rebuilt == ()
    assert [p.name for p in (tmp_path / "new").iterdir()] == [names[2]] and not list((tmp_path / "cur").iterdir())
    assert (tmp_path / "outside").exists() and channel.forget([Delivered(names[0])]).messages == 0


def append_many(url: str, count: int, *prefixes: str) -> None:
    channel = SmsFileChannel(url)
    for i in range(count):
        for prefix in prefixes:
            text = f"{prefix} {i} " + "x" * 300
            assert channel.send(Outbound(f"{prefix}-{i}", "+447700900123", text)).status == "sent"


def test_sms_lines_are_dropped_while_another_process_appends(tmp_path: Path) -> None:
    path = tmp_path / "sms" / "outbox.jsonl"
    url = f"file://{path}"
    # The writer appends lines to keep and lines to drop, while the file is replaced again and again.
    writer = multiprocessing.get_context("fork").Process(target=append_many, args=(url, 300, "kept", "gone"))
    writer.start()
    channel = SmsFileChannel(url)
    gone = [Delivered(f"gone-{i}") for i in range(300)]
    dropped = replaced = 0
    while writer.is_alive():
        forgotten = channel.forget(gone)
        dropped, replaced = dropped + forgotten.messages, replaced + bool(forgotten.messages)
    writer.join(60)
    dropped += channel.forget(gone).messages
    assert writer.exitcode == 0 and dropped == 300 and replaced > 1
    ids = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert ids == [f"kept-{i}" for i in range(300)]  # no append lost to the file being replaced
    assert channel.forget(gone).messages == 0


def test_a_channel_that_hands_messages_to_a_server_keeps_nothing_to_forget() -> None:
    assert SmtpChannel("smtp://127.0.0.1:2525?starttls=off").forget([Delivered("queued-1")]) is None

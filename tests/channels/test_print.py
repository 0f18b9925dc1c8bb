"""PrintChannel: batches, manifest, print stream, idempotency, recovery."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from channels import Outbound, PrintChannel


def letter(pdf: Any, n: int, pages: int, customer: str = "") -> Outbound:
    meta = {
        "customer": customer or f"C-{n}",
        "pages": pages,
        "household_key": f"HH-{n}",
        "postal_code": "1010",
    }
    return Outbound(f"doc-{n}", f"HH-{n}", pdf(pages), meta)


def manifest(batch: Path) -> list[dict[str, str]]:
    with open(batch / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_batches_streams_have_the_sum_of_pages(tmp_path: Path, pdf_factory: Any) -> None:
    with PrintChannel(f"print://{tmp_path}") as channel:
        for batch, first, pages in (("b1", 1, [1, 2, 3]), ("b2", 11, [2, 2])):
            channel.open_batch(batch)
            for n, count in enumerate(pages, start=first):
                assert channel.send(letter(pdf_factory, n, count)).status == "sent"
            channel.close_batch()
    assert len(PdfReader(tmp_path / "b1" / "print-stream.pdf").pages) == 6
    assert len(PdfReader(tmp_path / "b2" / "print-stream.pdf").pages) == 4
    rows = manifest(tmp_path / "b1")
    assert [r["sequence"] for r in rows] == ["1", "2", "3"]
    assert rows[1] == {
        "sequence": "2", "message_id": "doc-2", "customer": "C-2", "pages": "2",
        "household_key": "HH-2", "postal_code": "1010", "file": "documents/000002-doc-2.pdf",
    }
    assert (tmp_path / "b1" / rows[1]["file"]).read_bytes().startswith(b"%PDF")


def test_stream_follows_sequence_order_not_send_order(tmp_path: Path, pdf_factory: Any) -> None:
    channel = PrintChannel(f"print://{tmp_path}")
    channel.open_batch("b1")
    for sequence, pages in ((3, 3), (1, 1), (2, 2)):
        out = letter(pdf_factory, sequence, pages)
        channel.send(Outbound(out.message_id, out.to, out.content, {**out.meta, "sequence": sequence}))
    channel.close_batch()
    stream = PdfReader(tmp_path / "b1" / "print-stream.pdf")
    assert len(stream.pages) == 6


def test_formula_cells_are_escaped(tmp_path: Path, pdf_factory: Any) -> None:
    channel = PrintChannel(f"print://{tmp_path}")
    channel.send(letter(pdf_factory, 1, 1, customer="=cmd|' /C calc'!A0"))
    channel.send(letter(pdf_factory, 2, 1, customer="@SUM(1+1)"))
    rows = manifest(tmp_path / "default")
    assert rows[0]["customer"] == "'=cmd|' /C calc'!A0"
    assert rows[1]["customer"] == "'@SUM(1+1)"


def test_resend_is_idempotent(tmp_path: Path, pdf_factory: Any) -> None:
    channel = PrintChannel(f"print://{tmp_path}")
    channel.open_batch("b1")
    first = channel.send(letter(pdf_factory, 1, 2))
    again = channel.send(letter(pdf_factory, 1, 2))
    assert first == again and first.status == "sent"
    channel.close()  # the worker died (the kernel releases its batch lock)
    # a new worker resuming the same batch also knows the message
    resumed = PrintChannel(f"print://{tmp_path}")
    resumed.open_batch("b1")
    assert resumed.send(letter(pdf_factory, 1, 2)) == first
    assert len(manifest(tmp_path / "b1")) == 1
    assert len(list((tmp_path / "b1" / "documents").iterdir())) == 1


def test_crashed_batch_gets_its_stream_when_the_next_batch_opens(
    tmp_path: Path, pdf_factory: Any
) -> None:
    crashed = PrintChannel(f"print://{tmp_path}")
    crashed.open_batch("b1")
    crashed.send(letter(pdf_factory, 1, 2))
    crashed.send(letter(pdf_factory, 2, 3))
    crashed.close()  # the worker died before close_batch (the kernel releases its lock)
    assert not (tmp_path / "b1" / "print-stream.pdf").exists()
    PrintChannel(f"print://{tmp_path}").open_batch("b2")
    assert len(PdfReader(tmp_path / "b1" / "print-stream.pdf").pages) == 5


def test_not_a_pdf_is_permanent(tmp_path: Path) -> None:
    result = PrintChannel(f"print://{tmp_path}").send(Outbound("d", "HH", b"hello", {}))
    assert result.status == "permanent"


def test_a_message_sent_again_in_another_batch_is_not_printed_twice(tmp_path: Path, pdf_factory: Any) -> None:
    """A worker killed after printing but before recording it: the retry lands in a new batch."""
    first = PrintChannel(f"print://{tmp_path}")
    first.open_batch("crashed")
    assert first.send(letter(pdf_factory, 1, 1)).status == "sent"
    first.close()  # the process died: no stream, lock released

    with PrintChannel(f"print://{tmp_path}") as again:
        again.open_batch("resumed")
        result = again.send(letter(pdf_factory, 1, 1))
        assert result.status == "sent" and result.provider_id == "crashed/documents/000001-doc-1.pdf"
        assert again.send(letter(pdf_factory, 2, 1)).status == "sent"
        again.close_batch()
    assert [r["message_id"] for r in manifest(tmp_path / "resumed")] == ["doc-2"]
    assert len(PdfReader(tmp_path / "crashed" / "print-stream.pdf").pages) == 1  # recovered


def test_recovery_leaves_a_batch_that_a_live_worker_has_open_alone(tmp_path: Path, pdf_factory: Any) -> None:
    busy = PrintChannel(f"print://{tmp_path}")
    busy.open_batch("busy")
    assert busy.send(letter(pdf_factory, 1, 1)).status == "sent"
    with PrintChannel(f"print://{tmp_path}") as other:
        other.open_batch("other")  # must not build "busy"'s stream while it is being written
        assert not (tmp_path / "busy" / "print-stream.pdf").exists()
        other.close_batch()
    assert busy.send(letter(pdf_factory, 2, 1)).status == "sent"
    busy.close_batch()
    assert len(PdfReader(tmp_path / "busy" / "print-stream.pdf").pages) == 2

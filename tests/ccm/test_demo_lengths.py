"""Demo data of a known statement length, without the bad rows (the benchmarks' data)."""
from __future__ import annotations

import csv
import json

import pytest

from ccm.demo import write_demo_data


def test_lines_range_and_no_bad_rows(tmp_path):
    customers, feed = write_demo_data(tmp_path, customers=60, lines=(12, 34), bad_rows=False)
    records = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    with customers.open(encoding="utf-8", newline="") as fh:
        ids = [row["external_id"] for row in csv.DictReader(fh)]
    assert len(records) == len(ids) == 60
    assert {record["customer_id"] for record in records} == set(ids)
    assert all(12 <= len(record["lines"]) <= 35 for record in records)  # one credit may be added
    assert min(len(r["lines"]) for r in records) < 20 < max(len(r["lines"]) for r in records)


def test_default_output_is_unchanged_by_the_new_options(tmp_path):
    plain = write_demo_data(tmp_path / "a", customers=30, seed=5)
    explicit = write_demo_data(tmp_path / "b", customers=30, seed=5, lines=None, bad_rows=True)
    for one, other in zip(plain, explicit):
        assert one.read_bytes() == other.read_bytes()


def test_lines_range_is_checked(tmp_path):
    with pytest.raises(ValueError, match="lines"):
        write_demo_data(tmp_path, customers=1, lines=(10, 5))

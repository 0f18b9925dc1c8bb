"""``ccm segments``: create with history, reject bad rules with the position, refresh
with materialised membership and counts over time, in_segment between segments."""
from __future__ import annotations

import json

from sqlalchemy import select

from ccm.models import Customer
from ccm.models.segments import SegmentMember

from .conftest import REFERENCE, add_customer, months_before


def populate(engine) -> None:
    with engine.db.session() as session:
        for i in range(100):
            spends = {months_before(REFERENCE, n): f"{i}.00" for n in range(4)}
            add_customer(session, f"S{i:03d}", spends, paperless=i % 2 == 0, attributes={"plan": "gold" if i % 10 == 0 else "basic"})


def test_create_refresh_show_list(engine, runner):
    populate(engine)
    made = runner.invoke(args=["segments", "create", "big", 'tier in ("vip", "key") or attributes.plan == "gold"', "--description", "big or gold"])
    assert made.exit_code == 0, made.output
    assert "segment big version 1: created" in made.output
    assert runner.invoke(args=["segments", "create", "big_paper", 'in_segment("big") and not paperless']).exit_code == 0

    refreshed = runner.invoke(args=["segments", "refresh", "--json"])
    assert refreshed.exit_code == 0, refreshed.output
    payload = json.loads(refreshed.output)
    # vip and key: the top 5% of 100 (S095 to S099); gold plans: S000, S010, ..., S090; paper: odd numbers.
    assert payload["segments"] == {"big": 15, "big_paper": 3}
    assert payload["tiers"] == {"vip": 1, "key": 4, "ordinary": 15, "small": 80}

    with engine.db.session() as session:
        members = set(session.scalars(select(Customer.external_id).join(SegmentMember, SegmentMember.customer_id == Customer.id)))
    assert {"S099", "S095", "S000"} <= members

    assert runner.invoke(args=["segments", "create", "big", 'tier == "vip"']).output.startswith("segment big version 2: new version")
    assert "unchanged" in runner.invoke(args=["segments", "create", "big", 'tier == "vip"']).output
    assert runner.invoke(args=["segments", "refresh", "big"]).exit_code == 0
    shown = json.loads(runner.invoke(args=["segments", "show", "big", "--json"]).output)
    assert shown["version"] == 2 and shown["members"] == 1
    assert [c["members"] for c in shown["counts"]] == [1, 15]
    assert [v["expression"] for v in shown["versions"]] == ['tier in ("vip", "key") or attributes.plan == "gold"', 'tier == "vip"']
    assert shown["fields"] == ["tier"] and shown["description"] == "big or gold"

    text = runner.invoke(args=["segments", "show", "big"]).output
    assert "members: 1 (refreshed" in text and "before: 15" in text
    listed = json.loads(runner.invoke(args=["segments", "list", "--json"]).output)
    assert [(row["name"], row["members"]) for row in listed] == [("big", 1), ("big_paper", 3)]  # refreshing big leaves big_paper as it was
    assert "big_paper" in runner.invoke(args=["segments", "list"]).output


def test_bad_rules_are_rejected_when_saved(engine, runner):
    result = runner.invoke(args=["segments", "create", "x", 'tier == "vip" and balnce > 500'])
    assert result.exit_code == 1
    assert "unknown field 'balnce' at column 19; did you mean 'balance_due'?" in result.output
    assert "unknown segment 'lapsd'" in runner.invoke(args=["segments", "create", "y", 'in_segment("lapsd")']).output
    assert "cannot use itself" in runner.invoke(args=["segments", "create", "z", 'in_segment("z")']).output
    assert runner.invoke(args=["segments", "create", "a", "paperless"]).exit_code == 0
    assert runner.invoke(args=["segments", "create", "b", 'in_segment("a")']).exit_code == 0
    cycle = runner.invoke(args=["segments", "create", "a", 'in_segment("b")'])
    assert cycle.exit_code == 1 and "depend on itself" in cycle.output
    assert "use lower-case letters" in runner.invoke(args=["segments", "create", "Bad Name", "paperless"]).output
    missing = runner.invoke(args=["segments", "show", "c"])
    assert missing.exit_code == 1 and "no such segment: c" in missing.output
    assert json.loads(runner.invoke(args=["segments", "list", "--json"]).output)[0]["members"] is None

"""Decisions: checked when saved, first hit wins, experiments assign stably by hash,
``ccm decide`` explains one customer and counts a dry run, and the statement run records
the trace and renders the decided insert."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select, update

from ccm.decisions import DecisionError, Experiment, assign, bucket, decide_run, parse_spec
from ccm.decisions.spec import Variant
from ccm.models import Customer, Message

CYCLE = "2026-11"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"rules": [{"when": "tier == 'vip' and balnce > 1", "then": "a"}], "default": None},
         "rule 1 (rule-1): unknown field 'balnce' at column 19; did you mean 'balance_due'?"),
        ({"rules": [{"when": "paperless", "then": "inserts/premium_upgrad.html"}], "default": None},
         "no such content block 'inserts/premium_upgrad.html' (did you mean 'inserts/premium_upgrade.html'?)"),
        ({"rules": []}, '"default" is missing'),
        ({"rules": [], "default": {"experiment": "x", "variants": [{"name": "a", "content": None, "weight": 0}]}},
         "weight must be a positive number"),
        ({"rules": [], "default": {"experiment": "x", "holdout": 1, "variants": [{"name": "a", "content": None}]}},
         "holdout is a share from 0 up to"),
        ({"rules": [{"name": "a", "when": "paperless", "then": None}, {"name": "a", "when": "paperless", "then": None}], "default": None},
         "unique"),
        ({"rules": [], "default": None, "extra": 1}, "unknown key 'extra'"),
    ],
)
def test_bad_decisions_are_rejected(data, message):
    with pytest.raises(DecisionError) as info:
        parse_spec(data, segments=[], contents=["inserts/premium_upgrade.html", "inserts/winback_offer.html"])
    assert message in str(info.value)


def test_experiment_assignment_is_stable_and_follows_the_weights():
    experiment = Experiment("exp", (Variant("a", "A", 3.0), Variant("b", "B", 1.0)), holdout=0.2, holdout_content=None)
    ids = [f"C{i}" for i in range(20000)]
    first = [assign(experiment, i, "D") for i in ids]
    assert first == [assign(experiment, i, "D") for i in ids]  # the same customer, the same variant
    counts = Counter(variant for variant, _ in first)
    assert abs(counts["holdout"] / 20000 - 0.2) < 0.015
    assert abs(counts["a"] / 20000 - 0.6) < 0.015 and abs(counts["b"] / 20000 - 0.2) < 0.015
    assert {content for variant, content in first if variant == "holdout"} == {"D"}
    assert bucket("exp", "C1") != bucket("other", "C1")  # experiments are independent


def test_decide_one_customer_and_dry_run(loaded, runner, tmp_path, decision_data):
    engine = loaded
    with engine.db.session() as session:
        session.execute(update(Customer).where(Customer.external_id == "C-EMAIL").values(value_tier="vip"))
        session.execute(update(Customer).where(Customer.external_id.in_(["C-ZH", "C-PRINT"])).values(lifecycle_stage="decline"))

    shipped = runner.invoke(args=["decide", "statement", "C-ZH"])
    assert shipped.exit_code == 0, shipped.output
    assert "statement.insert: inserts/winback_offer.html" in shipped.output
    assert "why: rule 'winback' matched: lifecycle == \"decline\" (decision monthly-statement/statement.insert version 1)" in shipped.output

    spec = tmp_path / "decision.json"
    spec.write_text(json.dumps(decision_data))
    made = runner.invoke(args=["decisions", "set", "statement", "statement.insert", str(spec)])
    assert made.output.strip() == "decision monthly-statement/statement.insert version 2: new version"
    assert "unchanged" in runner.invoke(args=["decisions", "set", "statement", "statement.insert", str(spec)]).output

    one = json.loads(runner.invoke(args=["decide", "statement", "C-ZH", "--json"]).output)
    trace = one["slots"]["statement.insert"]
    assert (trace["rule"], trace["experiment"], trace["version"]) == ("lapsing", "winback-test", 2)
    assert trace["variant"] in ("offer", "paperless", "holdout")

    dry = json.loads(runner.invoke(args=["decide", "statement", "--dry-run", "--cycle", CYCLE, "--json"]).output)
    slot = dry["slots"]["statement.insert"]
    assert dry["audience"] == 6 and slot["version"] == 2
    assert slot["rules"] == {"vip": 1, "lapsing": 2, "default": 3}
    assert sum(slot["variants"].values()) == 2
    text = runner.invoke(args=["decide", "statement", "--dry-run"]).output
    assert "audience: 6 customers" in text and "lapsing" in text and "winback-test" in text

    shown = json.loads(runner.invoke(args=["decisions", "show", "statement", "--json"]).output)
    assert [v["author"] for v in shown[0]["versions"]] == ["built-in", "cli"]
    bad = runner.invoke(args=["decide", "statement", "NOBODY"])
    assert bad.exit_code == 1 and "no such customer: NOBODY" in bad.output
    assert runner.invoke(args=["decide", "statement"]).exit_code == 2


def test_statement_run_records_the_trace_and_renders_the_decided_insert(loaded):
    from ccm.runs.executor import execute
    from ccm.runs.plan import plan_run

    engine = loaded
    with engine.db.session() as session:
        session.execute(update(Customer).where(Customer.external_id == "C-EMAIL").values(value_tier="vip"))
        session.execute(update(Customer).where(Customer.external_id == "C-ZH").values(lifecycle_stage="decline"))
    plan = plan_run(engine, "statement", CYCLE)
    with engine.db.session() as session:
        # The statements by print and e-mail (0 once planning decides by itself).
        assert decide_run(session, plan.run_id) in (5, 0)
        assert decide_run(session, plan.run_id) == 0  # decided once; a resumed run keeps it
    execute(engine, plan.run_id, workers=1, progress=False)

    with engine.db.session() as session:
        rows = session.execute(
            select(Customer.external_id, Message.channel, Message.purpose, Message.decisions, Message.template_versions)
            .join(Customer, Customer.id == Message.customer_id)
            .where(Message.run_id == plan.run_id)
        ).all()
    statements = {ext: (channel, decisions["statement.insert"], used) for ext, channel, purpose, decisions, used in rows if channel in ("print", "email")}
    assert all(not decisions for _, channel, _, decisions, _ in rows if channel not in ("print", "email"))
    expected = {
        "C-EMAIL": ("vip", "inserts/premium_upgrade.html"),
        "C-ZH": ("winback", "inserts/winback_offer.html"),
        "C-PRINT": ("paper", "inserts/go_paperless.html"),
        "C-SMSONLY": ("default", "inserts/premium_upgrade.html"),
    }
    for ext, (rule, content) in expected.items():
        channel, trace, used = statements[ext]
        assert (trace["rule"], trace["content"], trace["version"]) == (rule, content, 1), ext
        assert trace["decision"] == "monthly-statement/statement.insert" and trace["why"].startswith(("rule", "no rule"))
        shown = content.replace(".html", ".typ")  # the shipped statement is Typst: the block's Typst form is shown
        assert shown in used and trace["shown"] == shown, (ext, used, trace)  # the rendered document used the decided insert
        # (a Typst document records every block it can show: its block table includes them all)

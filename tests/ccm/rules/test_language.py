"""The rule language: what parses, what is rejected (with the column), and the defined
results for missing values, division by zero and attribute types."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from ccm.rules import Rule, RuleError

TODAY = dt.date(2026, 11, 22)


def check(expression: str, **values) -> bool:
    return Rule.parse(expression).to_python(today=TODAY)(values)


@pytest.mark.parametrize(
    "expression, message",
    [
        ('tier == "vip" and balnce > 500', "unknown field 'balnce' at column 19; did you mean 'balance_due'?"),
        ("tier > 5", "cannot compare text with a number at column 8"),
        ('tier < "vip"', "text cannot be compared with < at column 8; use ==, !=, in, contains or starts_with"),
        ("days_since(tier) < 3", "days_since() needs a date field"),
        ("lowr(name) == 'x'", "unknown function 'lowr' at column 1; did you mean 'lower'?"),
        ("tier = 'vip'", "syntax error"),
        ('__import__("os").system("x")', "only the rule helpers can be called"),
        ("tier.__class__", "only attributes.NAME may use a dot at column 1"),
        ("[x for x in tier]", "a comprehension is not allowed in a rule"),
        ("balance_due[0] > 1", "indexing with [] is not allowed"),
        ("lambda: 1", "lambda is not allowed"),
        ("balance_due ** 2 > 1", "the operator Pow is not allowed"),
        ("balance_due", "expected a condition (yes/no) but this is a number"),
        ("tier in tier", "'in' needs a list of values"),
        ('tier in ("vip", 2)', "the values after 'in' must all be of one type"),
        ("balance_due > 1e20", "numbers must be below"),
        ("balance_due == None", "None is not a value in rules at column 16; use missing(x) or present(x)"),
        ('date("2026-13-01") < created_at', "date() takes a date as YYYY-MM-DD"),
        ("between(balance_due, 1)", "between() takes 3 values"),
        ("(tier == 'vip') + 1 > 0", "a condition cannot be used as a value here"),
        ("", "the rule is empty"),
        ("tier is None", "'is' is not supported"),
    ],
)
def test_bad_rules_are_rejected_with_position_and_reason(expression, message):
    with pytest.raises(RuleError) as info:
        Rule.parse(expression)
    assert message in str(info.value)


def test_columns_count_characters_and_leading_blanks():
    expression = '  name == "王" or nope'
    assert expression.index("nope") + 1 == 18
    with pytest.raises(RuleError, match="unknown field 'nope' at column 18"):
        Rule.parse(expression)
    with pytest.raises(RuleError, match="unknown segment 'lapsd' at column 12; did you mean 'lapsed'"):
        Rule.parse('in_segment("lapsd")', segments=["lapsed"])


def test_missing_values_make_comparisons_false_even_not_equal():
    assert check("balance_due > 1", balance_due=None) is False
    assert check("balance_due != 1", balance_due=None) is False
    assert check("not (balance_due > 1)", balance_due=None) is True
    assert check('tier not in ("vip",)', tier=None) is False
    assert check("missing(tier) or tier == 'vip'", tier=None) is True


def test_division_by_zero_is_missing():
    assert check("balance_due / 0 > 1", balance_due=Decimal("5")) is False
    assert check("balance_due / 0 <= 1", balance_due=Decimal("5")) is False
    assert check("missing(balance_due % 0)", balance_due=Decimal("5")) is True
    assert check("-7 % 3 == -1 and 7.9 % 2 == 1") is True


def test_attributes_are_coerced_by_use():
    assert check('attributes.plan == "gold"', attributes={"plan": "gold"})
    assert check("attributes.seats > 10", attributes={"seats": "12"})
    assert check("attributes.seats > 10", attributes={"seats": 12})
    assert not check("attributes.seats > 10", attributes={"seats": "twelve"})
    assert not check('attributes.zip == "42"', attributes={"zip": 42})
    assert check("attributes.vip", attributes={"vip": "yes"})
    assert check("attributes.vip", attributes={"vip": True})
    assert not check("attributes.vip", attributes={"vip": 1})
    assert check('attr("plan") in ("gold", "silver")', attributes={"plan": "silver"})
    assert not check("present(attributes.plan)", attributes={"plan": None})


def test_helpers():
    assert check('lower(name) == "alice smith"', name="ALICE Smith")
    assert check('contains(email, "@example.") and starts_with(email, "al")', email="alice@example.com")
    assert check("between(engagement, 10, 20)", engagement=20)
    assert check("days_since(last_response_at) == 2", last_response_at=dt.datetime(2026, 11, 20, 23, 59))
    assert check('created_at < date("2026-01-01")', created_at=dt.datetime(2025, 12, 31, 23, 0))
    assert check('in_segment("lapsed")', segments={"lapsed"})
    assert check("1 < balance_due <= 3", balance_due=Decimal("3.00"))


def test_rule_knows_what_it_reads():
    rule = Rule.parse('tier == "vip" and balance_due > 500 and in_segment("x") and attributes.a == 1')
    assert rule.fields == {"tier", "balance_due"}
    assert rule.segments == {"x"}
    assert rule.uses_attributes


def test_sql_selects_the_same_customers(lab):
    when = dt.datetime(2026, 1, 1)
    customers = [
        {"value_tier": "vip", "balance_due": Decimal("600"), "created_at": when, "paperless": False, "attributes": {"plan": "gold"}},
        {"value_tier": "vip", "balance_due": None, "created_at": when, "paperless": True, "attributes": {"plan": 3}},
        {"value_tier": None, "balance_due": Decimal("0"), "created_at": when, "paperless": False, "attributes": {}},
    ]
    for expression, expected in [
        ('tier == "vip" and balance_due > 500', {"X0"}),
        ("not (balance_due > 500)", {"X1", "X2"}),
        ("balance_due / balance_due == 1", {"X0"}),
        ('attributes.plan == "gold" or paperless', {"X0", "X1"}),
        ('tier != "vip"', set()),
    ]:
        assert lab.both(expression, customers) == (expected, expected), expression


def test_the_readme_examples_parse():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Rule language", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    examples = [line for line in block.splitlines() if line.strip()]
    assert len(examples) == 4
    for example in examples:
        Rule.parse(example)


def test_extreme_numbers_are_missing_or_exact_alike_on_both_databases(lab):
    """Large remainders, products and quotients that would overflow or underflow a double and
    the smallest 64-bit integer give the same answer in SQL (SQLite and PostgreSQL) and in
    Python, never an error."""
    when = dt.datetime(2026, 1, 1)
    customers = [
        {"balance_due": Decimal("5000000001.00"), "created_at": when, "attributes": {"n": 5000000001, "d": 1e-10}},
        {"balance_due": Decimal("7"), "created_at": when, "attributes": {"n": 1e299, "d": 1e-10}},
        {"balance_due": Decimal("8"), "created_at": when, "attributes": {"n": -9223372036854775808}},
        {"balance_due": Decimal("9"), "created_at": when, "attributes": {"n": 1e-200, "d": 4}},
    ]
    for expression, expected in [
        ("balance_due % 7 == 1", {"X2"}),  # 5,000,000,001 % 7 == 3 (beyond 32-bit integers); 8 % 7 == 1
        ("balance_due % 7 == 3", {"X0"}),
        ("attributes.n % 7 == 3", {"X0"}),  # 1e299 and -2**63 are beyond 64-bit integers: missing
        ("attributes.n * 1e14 * 1e14 * 1e14 > 0", {"X0"}),  # for 1e299 it would overflow a double: missing, so false
        ("attributes.n > 0", {"X0", "X1", "X3"}),
        ("attributes.n < 0", {"X2"}),
        # 1e299 / 1e-10 would overflow a double (inf in Python and SQLite, an error on PostgreSQL)
        # and 1e-200 * 1e-200 underflow to 0 (an error on PostgreSQL): operands of a magnitude
        # of 1e150 or more, or below 1e-150, make * and / missing (ccm.rules.types.OPERAND_LIMIT).
        ("attributes.n / attributes.d > 0", {"X0"}),  # 5e19; X1 would overflow; X3's 1e-200 is too small
        ("attributes.n * attributes.n >= 0", {"X0", "X2"}),
        ("missing(attributes.n * attributes.n)", {"X1", "X3"}),
        ("attributes.n / 0 > 0 or attributes.n * 0 != 0", set()),
    ]:
        assert lab.both(expression, customers) == (expected, expected), expression


def test_rules_nested_too_deeply_are_refused_when_saved():
    with pytest.raises(RuleError, match="nests 102 levels deep; at most 32"):
        Rule.parse("not " * 100 + "paperless")

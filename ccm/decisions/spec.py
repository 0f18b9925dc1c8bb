"""A decision as data, checked when saved:

    {"rules": [{"name": "vip", "when": "tier == \\"vip\\"", "then": "inserts/premium_upgrade.html"},
               {"name": "winback", "when": "lifecycle == \\"decline\\"",
                "then": {"experiment": "winback-2026", "holdout": 0.1,
                         "variants": [{"name": "offer", "content": "inserts/winback_offer.html", "weight": 1}]}}],
     "default": "inserts/go_paperless.html"}

An output is a content block (a template name), null (the slot stays empty) or an
experiment. Rules are tried in order; the first whose condition holds wins.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ccm.rules import Rule, RuleError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
RULE_KEYS, EXPERIMENT_KEYS, VARIANT_KEYS = {"name", "when", "then"}, {"experiment", "variants", "holdout", "holdout_content"}, {"name", "content", "weight"}


class DecisionError(ValueError):
    """A decision that cannot be saved: the message names the rule, the key and the reason."""


@dataclass(frozen=True)
class Variant:
    name: str
    content: str | None
    weight: float


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]
    holdout: float
    holdout_content: str | None  # what the hold-out group gets; by default the decision's default

    @property
    def total_weight(self) -> float:
        return sum(v.weight for v in self.variants)


Output = str | None | Experiment


@dataclass(frozen=True)
class DecisionRule:
    name: str
    when: Rule
    then: Output


@dataclass(frozen=True)
class DecisionSpec:
    rules: tuple[DecisionRule, ...]
    default: Output

    def contents(self) -> set[str]:
        """Every content block this decision can choose."""
        found: set[str] = set()
        for output in [*(r.then for r in self.rules), self.default]:
            if isinstance(output, Experiment):
                found.update(v.content for v in output.variants if v.content)
                if output.holdout_content:
                    found.add(output.holdout_content)
            elif output:
                found.add(output)
        return found

    def experiments(self) -> list[Experiment]:
        return [o for o in [*(r.then for r in self.rules), self.default] if isinstance(o, Experiment)]


def parse_spec(data: Any, *, segments: Collection[str] | None = None, contents: Collection[str] | None = None) -> DecisionSpec:
    """Check ``data`` (parsed JSON); ``segments`` and ``contents`` check names when given."""
    if not isinstance(data, dict):
        raise DecisionError("a decision is an object with \"rules\" and \"default\"")
    unknown = set(data) - {"rules", "default"}
    if unknown:
        raise DecisionError(f"unknown key {sorted(unknown)[0]!r} (a decision has \"rules\" and \"default\")")
    if "default" not in data:
        raise DecisionError("\"default\" is missing (use null for no content)")
    rules_data = data.get("rules", [])
    if not isinstance(rules_data, list):
        raise DecisionError("\"rules\" must be a list")
    rules, names = [], set()
    for number, item in enumerate(rules_data, start=1):
        where = f"rule {number}"
        if not isinstance(item, dict) or not {"when", "then"} <= set(item) or set(item) - RULE_KEYS:
            raise DecisionError(f"{where}: a rule has \"when\", \"then\" and optionally \"name\"")
        name = str(item.get("name") or f"rule-{number}")
        where = f"rule {number} ({name})"
        if not NAME.fullmatch(name) or name in names or name == "default":
            raise DecisionError(f"{where}: names are letters, digits, . _ - and unique (not 'default')")
        names.add(name)
        try:
            when = Rule.parse(item["when"], segments=segments)
        except RuleError as exc:
            raise DecisionError(f"{where}: {exc}") from None
        rules.append(DecisionRule(name, when, _output(item["then"], f"{where}: then", contents)))
    return DecisionSpec(tuple(rules), _output(data["default"], "default", contents))


def _output(value: Any, where: str, contents: Collection[str] | None) -> Output:
    if value is None:
        return None
    if isinstance(value, str):
        _check_content(value, where, contents)
        return value
    if not isinstance(value, dict) or "experiment" not in value or set(value) - EXPERIMENT_KEYS:
        raise DecisionError(f"{where}: a content name, null, or {{\"experiment\", \"variants\", \"holdout\", \"holdout_content\"}}")
    name = value["experiment"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DecisionError(f"{where}: experiment names are letters, digits, . _ -")
    holdout = value.get("holdout", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise DecisionError(f"{where}: holdout is a share from 0 up to (not including) 1, e.g. 0.1")
    variants_data = value.get("variants")
    if not isinstance(variants_data, list) or not variants_data:
        raise DecisionError(f"{where}: an experiment needs at least one variant")
    variants, seen = [], set()
    for item in variants_data:
        if not isinstance(item, dict) or set(item) - VARIANT_KEYS or "name" not in item or "content" not in item:
            raise DecisionError(f"{where}: a variant has \"name\", \"content\" and optionally \"weight\"")
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise DecisionError(f"{where}: variant {item['name']!r}: weight must be a positive number")
        if item["name"] in seen or item["name"] == "holdout" or not NAME.fullmatch(str(item["name"])):
            raise DecisionError(f"{where}: variant names are unique, not 'holdout', letters, digits, . _ -")
        seen.add(item["name"])
        if item["content"] is not None:
            _check_content(item["content"], f"{where}: variant {item['name']!r}", contents)
        variants.append(Variant(item["name"], item["content"], float(weight)))
    holdout_content = value.get("holdout_content")
    if holdout_content is not None:
        _check_content(holdout_content, f"{where}: holdout_content", contents)
    return Experiment(name, tuple(variants), float(holdout), holdout_content)


def _check_content(name: Any, where: str, contents: Collection[str] | None) -> None:
    if not isinstance(name, str) or not name:
        raise DecisionError(f"{where}: content is a template name such as inserts/premium_upgrade.html")
    if contents is not None and name not in contents:
        import difflib

        close = difflib.get_close_matches(name, list(contents), n=1)
        raise DecisionError(f"{where}: no such content block {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))


def spec_to_data(spec: DecisionSpec) -> dict[str, Any]:
    def output(value: Output) -> Any:
        if isinstance(value, Experiment):
            data: dict[str, Any] = {"experiment": value.name, "holdout": value.holdout,
                                    "variants": [{"name": v.name, "content": v.content, "weight": v.weight} for v in value.variants]}
            if value.holdout_content:
                data["holdout_content"] = value.holdout_content
            return data
        return value

    return {"rules": [{"name": r.name, "when": r.when.text, "then": output(r.then)} for r in spec.rules], "default": output(spec.default)}

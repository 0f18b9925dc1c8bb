"""A decision as the studio's form carries it, and back: rows of rules (name, condition,
what they give: a content block, nothing, or an experiment with variants and a hold-out),
in the order the form lists them, and a default. The engine checks the result
(``ccm.decisions.parse_spec``); this only reads and writes form fields.

Field names: ``rule-N-name``, ``rule-N-when``, ``rule-N-order``, ``rule-N-remove`` and the
output fields with the prefix ``rule-N-`` (``default-`` for the default): ``then`` (a content
name, ``""`` for nothing, ``@experiment``), ``exp``, ``holdout`` (a percentage),
``holdout_content``, ``var-M-name``, ``var-M-content``, ``var-M-weight``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

EXPERIMENT = "@experiment"
SPARE_VARIANTS = 1  # empty variant rows offered to add one


@dataclass
class OutputRow:
    then: str = ""  # a content name, "" (nothing) or EXPERIMENT
    experiment: str = ""
    holdout: str = "0"  # percent, as typed
    holdout_content: str = ""
    variants: list[dict[str, str]] = field(default_factory=list)  # name, content, weight


@dataclass
class RuleRow:
    name: str = ""
    when: str = ""
    output: OutputRow = field(default_factory=OutputRow)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # the engine says what is wrong with it


def _output_data(row: OutputRow) -> Any:
    if row.then != EXPERIMENT:
        return row.then or None
    holdout = _number(row.holdout or "0")
    data: dict[str, Any] = {"experiment": row.experiment.strip(),
                            "holdout": holdout / 100 if isinstance(holdout, float) else holdout,
                            "variants": [{"name": v["name"].strip(), "content": v["content"] or None, "weight": _number(v["weight"] or "1")}
                                         for v in row.variants if v["name"].strip()]}
    if row.holdout_content:
        data["holdout_content"] = row.holdout_content
    return data


def to_data(rules: list[RuleRow], default: OutputRow) -> dict[str, Any]:
    """The decision the engine checks and stores."""
    return {"rules": [{"name": r.name.strip(), "when": r.when.strip(), "then": _output_data(r.output)} for r in rules],
            "default": _output_data(default)}


def _output_row(form: Mapping[str, str], prefix: str) -> OutputRow:
    variants = []
    number = 0
    while f"{prefix}var-{number}-name" in form:
        variants.append({key: form.get(f"{prefix}var-{number}-{key}", "").strip() for key in ("name", "content", "weight")})
        number += 1
    return OutputRow(then=form.get(f"{prefix}then", ""), experiment=form.get(f"{prefix}exp", "").strip(),
                     holdout=form.get(f"{prefix}holdout", "0").strip(), holdout_content=form.get(f"{prefix}holdout_content", ""),
                     variants=variants)


def from_form(form: Mapping[str, str]) -> tuple[list[RuleRow], OutputRow]:
    """The rows as submitted, in their order (``rule-N-order``), without removed and empty ones;
    a ``move`` button (``up:N``/``down:N``) moves rule N one place."""
    rows: list[tuple[float, RuleRow]] = []
    number = 0
    while f"rule-{number}-when" in form:
        prefix = f"rule-{number}-"
        row = RuleRow(form.get(prefix + "name", "").strip(), form.get(prefix + "when", "").strip(), _output_row(form, prefix))
        order = _number(form.get(prefix + "order", str(number)))
        if not form.get(prefix + "remove") and (row.when or row.name):
            rows.append((order if isinstance(order, float) else float(number), row))
        number += 1
    ordered = [row for _, row in sorted(rows, key=lambda pair: pair[0])]
    move = form.get("move", "")
    if ":" in move:
        direction, _, index_text = move.partition(":")
        index = int(index_text) if index_text.isdigit() else -1
        target = index - 1 if direction == "up" else index + 1
        if 0 <= index < len(ordered) and 0 <= target < len(ordered):
            ordered[index], ordered[target] = ordered[target], ordered[index]
    return ordered, _output_row(form, "default-")


def _output_row_of(data: Any) -> OutputRow:
    if isinstance(data, dict):
        holdout = float(data.get("holdout", 0)) * 100
        return OutputRow(then=EXPERIMENT, experiment=data.get("experiment", ""), holdout=f"{holdout:g}",
                         holdout_content=data.get("holdout_content") or "",
                         variants=[{"name": v["name"], "content": v.get("content") or "", "weight": f"{float(v.get('weight', 1)):g}"}
                                   for v in data.get("variants", [])])
    return OutputRow(then=data or "")


def from_data(data: dict[str, Any]) -> tuple[list[RuleRow], OutputRow]:
    """The rows of a stored decision."""
    rules = [RuleRow(rule.get("name", ""), rule.get("when", ""), _output_row_of(rule.get("then"))) for rule in data.get("rules", [])]
    return rules, _output_row_of(data.get("default"))


def with_spares(rules: list[RuleRow], default: OutputRow) -> tuple[list[RuleRow], OutputRow]:
    """The rows to show: an empty rule to add one, and an empty variant in every experiment."""
    for output in [*(rule.output for rule in rules), default]:
        output.variants = [v for v in output.variants if v["name"]] + [{"name": "", "content": "", "weight": "1"}] * SPARE_VARIANTS
    return [*rules, RuleRow()], default

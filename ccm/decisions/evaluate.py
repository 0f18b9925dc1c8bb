"""Deciding for one customer: the first rule that holds wins; an experiment assigns a
variant by a hash of the experiment and the customer, so the same customer always gets
the same variant (across runs, processes and machines) without storing anything first."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ccm.decisions.spec import DecisionSpec, Experiment, Output


@dataclass(frozen=True)
class Outcome:
    decision: str  # communication/slot
    version: int
    rule: str  # the rule that hit, or "default"
    why: str
    content: str | None
    experiment: str | None = None
    variant: str | None = None  # a variant name, or "holdout"

    def trace(self) -> dict[str, Any]:
        return asdict(self)


def bucket(experiment: str, external_id: str) -> float:
    """A stable number in [0, 1) for this customer in this experiment."""
    digest = hashlib.sha256(f"{experiment}\x00{external_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, external_id: str, default: str | None) -> tuple[str, str | None]:
    """(variant, content): the hold-out share first, then the variants by weight."""
    point = bucket(experiment.name, external_id)
    if point < experiment.holdout:
        return "holdout", experiment.holdout_content if experiment.holdout_content is not None else default
    point = (point - experiment.holdout) / (1 - experiment.holdout) * experiment.total_weight
    for variant in experiment.variants:
        if point < variant.weight:
            return variant.name, variant.content
        point -= variant.weight
    last = experiment.variants[-1]
    return last.name, last.content


class CompiledDecision:
    """One decision version, compiled once (per run or command) and applied per customer."""

    def __init__(self, name: str, version: int, spec: DecisionSpec, today: dt.date | None = None) -> None:
        self.name, self.version, self.spec = name, version, spec
        self.rules: list[tuple[str, Callable[[dict], bool], Output, str]] = [
            (rule.name, rule.when.to_python(today=today), rule.then, rule.when.text) for rule in spec.rules
        ]
        default = spec.default
        self.plain_default = None if isinstance(default, Experiment) else default
        # Outcomes without an experiment are the same for every customer: made once.
        self.fixed = {
            name: self._outcome(name, f"rule {name!r} matched: {text}", output, "")
            for name, _, output, text in self.rules if not isinstance(output, Experiment)
        }
        if not isinstance(default, Experiment):
            self.fixed["default"] = self._outcome("default", "no rule matched: default", default, "")

    @property
    def parsed_rules(self):
        return [rule.when for rule in self.spec.rules]

    def decide(self, values: dict[str, Any], external_id: str) -> Outcome:
        fixed = self.fixed
        for name, condition, output, text in self.rules:
            if condition(values):
                return fixed.get(name) or self._outcome(name, f"rule {name!r} matched: {text}", output, external_id)
        return fixed.get("default") or self._outcome("default", "no rule matched: default", self.spec.default, external_id)

    def _outcome(self, rule: str, why: str, output: Output, external_id: str) -> Outcome:
        if isinstance(output, Experiment):
            variant, content = assign(output, external_id, self.plain_default)
            why = f"{why}; experiment {output.name!r}: {variant}"
            return Outcome(self.name, self.version, rule, why, content, output.name, variant)
        return Outcome(self.name, self.version, rule, why, output)

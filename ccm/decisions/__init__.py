"""Content decisions: per slot of a communication, ordered rules (condition -> content),
first hit wins, a default; outputs may be experiments (README, "Rule language")."""
from ccm.decisions.evaluate import CompiledDecision, Outcome, assign, bucket
from ccm.decisions.service import (
    CustomerDecision, DryRun, compiled_decisions, decision_overview, decide_for_customer, decide_run, describe_decision, dry_run,
    ensure_built_in_decisions, save_decision,
)
from ccm.decisions.realtime import Decided, decide_now
from ccm.decisions.winner import apply_winner, experiment_names, winning_content
from ccm.decisions.spec import DecisionError, DecisionSpec, Experiment, parse_spec, spec_to_data

__all__ = [
    "Decided", "decide_now",
    "CompiledDecision", "CustomerDecision", "apply_winner", "experiment_names", "winning_content", "DecisionError", "DecisionSpec", "DryRun", "Experiment", "Outcome", "assign",
    "bucket", "compiled_decisions", "decide_for_customer", "decision_overview", "decide_run", "describe_decision", "dry_run",
    "ensure_built_in_decisions", "parse_spec", "save_decision", "spec_to_data",
]

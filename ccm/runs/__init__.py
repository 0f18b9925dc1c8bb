"""The runs: the only owner of runs and of the outbox (planning, triggered sends and date
reminders, fallbacks, claims, delivery, outcomes, reports). Other packages use what is
named here, never the modules behind it (``.importlinter`` keeps the layers).
"""
from ccm.runs.archive import ArchiveError, archive_root, reprint
from ccm.runs.outbox import observed_state
from ccm.runs.compose import customer_context, statement_context, typst_block
from ccm.runs.distributed import TASK, ExecutorError, make_celery, start_worker
from ccm.runs.executor import EXECUTORS, RunStateError, execute
from ccm.runs.fallback import fallback_after_bounce
from ccm.runs.local_time import hold_until_local_time, release_time, zone
from ccm.runs.plan import PlanError, PlanResult, message_key, plan_audience, plan_run
from ccm.runs.policy import ADDRESSED, PolicyError, address, hashed_address, legacy_hash
from ccm.runs.reminders import due_condition, plan_reminders
from ccm.runs.resend import ResendError, Resent, resend_statement
from ccm.runs.books import RunReport, list_runs
from ccm.runs.background import cycle_communications, executing, resume_in_background, retry_failed_now, start_cycle, wait
from ccm.runs.desk import ArchiveHit, MessageView, PrintFile, RunProgress, Unsent, message_view, print_file, print_files, run_progress, search_archive, unsent_by_reason
from ccm.runs.service import CycleOutcome, check_channels, outputs, report, resume, run_cycle, set_state
from ccm.runs.winner import REST, WinnerSent, rest_cycle, send_winner
from ccm.runs.on_demand import OnDemand, OnDemandConflict, OnDemandError, Rendered, on_demand
from ccm.runs.triggers import Dispatcher, Triggered, TriggerConflict, dispatcher, event_types, listeners, trigger

__all__ = [
    "EXECUTORS", "TASK", "OnDemand", "OnDemandConflict", "OnDemandError", "Rendered", "on_demand", "ArchiveHit", "MessageView", "PrintFile", "RunProgress", "Unsent", "cycle_communications", "executing",
    "message_view", "print_file", "print_files", "resume_in_background", "retry_failed_now", "run_progress", "search_archive",
    "start_cycle", "ADDRESSED", "unsent_by_reason", "wait", "ArchiveError", "CycleOutcome", "Dispatcher", "ExecutorError", "PlanError", "PlanResult", "PolicyError",
    "RunReport", "RunStateError", "TriggerConflict", "Triggered", "address", "archive_root", "check_channels",
    "customer_context", "dispatcher", "due_condition", "event_types", "execute", "fallback_after_bounce", "hashed_address",
    "hold_until_local_time", "legacy_hash", "list_runs", "listeners", "make_celery", "message_key", "observed_state",
    "outputs", "plan_audience", "plan_reminders", "plan_run", "release_time", "report", "reprint", "resume", "run_cycle",
    "set_state", "start_worker", "REST", "WinnerSent", "rest_cycle", "send_winner", "statement_context", "typst_block", "trigger", "zone",
]

"""Scheduling: schedules kept as data (campaigns, statement cycles, reminders, the nightly
segment refresh, the retry sweeper) and ``ccm scheduler``, the one active process that
runs them. Other packages use what is named here."""
from ccm.scheduling.process import holder_id, lease_holder, serve
from ccm.scheduling.service import ScheduleError, add_schedule, history, list_schedules, remove_schedule, set_paused

__all__ = ["ScheduleError", "add_schedule", "history", "holder_id", "lease_holder", "list_schedules", "remove_schedule", "serve",
           "set_paused"]

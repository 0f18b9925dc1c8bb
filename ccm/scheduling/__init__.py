"""Scheduling: schedules kept as data (campaigns, statement cycles, reminders, the nightly
segment refresh, the retry sweeper) and ``ccm scheduler``, the one active process that
runs them. Other packages use what is named here."""
from ccm.scheduling.process import holder_id, lease_holder, serve
from ccm.scheduling.service import (CRON_FIELDS, CronCheck, ScheduleError, Upcoming, add_schedule, audit_changes, audit_details,
                                    check_cron, get_schedule, history, list_schedules, next_fire_times, remove_schedule,
                                    schedulable_communications, set_paused, trigger_of, upcoming, update_schedule)

__all__ = ["CRON_FIELDS", "CronCheck", "ScheduleError", "Upcoming", "add_schedule", "audit_changes", "audit_details", "check_cron",
           "get_schedule", "history", "holder_id", "lease_holder", "list_schedules", "next_fire_times", "remove_schedule",
           "schedulable_communications", "serve", "set_paused", "trigger_of", "update_schedule", "upcoming"]

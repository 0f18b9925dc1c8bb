"""The feedback loop: what customers and their mail systems did (opens, clicks, replies,
bounces, complaints, conversions, payments, preferences), recorded once and applied at
once; its reports; erasure. Other packages use what is named here."""
from __future__ import annotations

from pathlib import Path

from ccm.feedback.reported_events import (API_TYPES, ApiInputError, authenticate, create_token, event_outcome, handle_api_event,
                                          list_tokens, revoke_token)
from ccm.feedback.erase import erase_customer
from ccm.feedback.provider_events import InboundResult, handle_events, read_reports
from ccm.feedback.smpp_inbound import Listened, SmppListenError, listen_smpp, smpp_inbound_channel, take_smpp_inbound
from ccm.feedback.preferences import PreferenceError, Preferences
from ccm.feedback.preferences import as_submitted as preferences_as_submitted
from ccm.feedback.preferences import load as load_preferences
from ccm.feedback.preferences import save as save_preferences
from ccm.feedback.render import print_report, write_csv
from ccm.feedback.tasks import TaskCounts, TaskError, TaskRow, assign_task, close_task, collect_tasks, comment_task, get_task, list_tasks, task_counts
from ccm.feedback.customers import Entry, Profile, Sent, archived_pdf, customer_by_external_id, customers_after, find_customers, normalise_phone, profile, sent_message
from ccm.feedback.on_behalf import (CONSENT_CHANNELS, Changed, SuppressionKept, change_consent, change_preferences, customer_suppressions,
                                    lift_suppression, suppress_customer)
from ccm.feedback.response_report import Report, communication_report
from ccm.feedback.campaigns import (WINNER_AFTER_HOURS, CampaignError, CampaignReport, ChannelShift, campaign_report, channel_shift, form_choices,
                                    get_campaign, list_campaigns, report_csv, save_campaign, send_winner_to_rest,
                                    send_winners_due, set_winner_rule)
from ccm.feedback.response_report import run_report as response_report
from ccm.feedback.inbox import InboxError, InboxItem, archive_item, inbox_items, inbox_pdf, read_item, unread_count
from ccm.feedback.inbox import FOLDERS as INBOX_FOLDERS
from ccm.feedback.tracking import Hit, UnknownLink, record_click, record_open, record_short, unsubscribe
from ccm.feedback.webhooks import SignatureError, check_headers, sign, verify


def write_chart(report: Report, path: Path) -> Path:
    """The report's chart (matplotlib, imported only when a chart is asked for)."""
    from ccm.feedback.chart import write_chart as write

    return write(report, path)


__all__ = [
    "WINNER_AFTER_HOURS", "CampaignError", "CampaignReport", "ChannelShift", "campaign_report", "channel_shift", "form_choices", "get_campaign",
    "list_campaigns", "report_csv", "save_campaign", "send_winner_to_rest", "send_winners_due", "set_winner_rule",
    "TaskCounts", "TaskError", "TaskRow", "assign_task", "close_task", "collect_tasks", "comment_task", "get_task", "list_tasks",
    "task_counts",
    "Changed", "SuppressionKept", "customer_suppressions", "lift_suppression", "suppress_customer", "Entry", "Profile", "Sent", "archived_pdf", "change_consent", "change_preferences", "customer_by_external_id", "customers_after",
    "find_customers", "normalise_phone", "profile", "sent_message",
    "API_TYPES", "ApiInputError", "Hit", "PreferenceError", "Preferences", "Report", "SignatureError", "UnknownLink",
    "authenticate", "check_headers", "communication_report", "create_token", "erase_customer", "event_outcome", "handle_api_event",
    "handle_events", "list_tokens", "load_preferences", "preferences_as_submitted", "print_report", "read_reports",
    "record_click", "record_open", "record_short", "response_report", "revoke_token", "save_preferences", "sign",
    "unsubscribe", "verify", "write_chart", "write_csv",
    "InboundResult", "Listened", "SmppListenError", "listen_smpp", "smpp_inbound_channel", "take_smpp_inbound",
    "CONSENT_CHANNELS", "INBOX_FOLDERS", "InboxError", "InboxItem", "archive_item", "inbox_items", "inbox_pdf", "read_item", "unread_count",
]

"""The ``ccm`` command line: one module per group, each registering itself on the app."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ccm.cli import (archive, db, decide, feedback, imports, runs, schedules, segments, service_accounts, smpp, templates, users,
                         webhooks)

    for module in (archive, db, imports, runs, segments, templates, decide, feedback, schedules, users, service_accounts, webhooks,
                   smpp):
        module.init_app(app)

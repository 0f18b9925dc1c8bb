"""Logging policy of the engine.

- ERROR: something the operator must act on: a run failed, a channel is misconfigured,
  a worker crashed. The run keeps going where it can.
- WARNING: degraded but working: a message failed and will be retried, a resource was
  refused while rendering, a slow fallback is in use (fonts subset without HarfBuzz).
- INFO: progress: a run planned, a chunk delivered, a file imported, with counts.
- DEBUG: per-message detail, by message id.

Never in any log line: names, e-mail addresses, phone numbers, postal addresses, message
bodies, tokens or passwords. Refer to customers by internal id and to messages by id;
channel URLs are logged with the password masked.
"""
from __future__ import annotations

import logging
import re

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_ccm", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._ccm = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("ccm").setLevel(level)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    weasyprint = logging.getLogger("weasyprint")
    weasyprint.setLevel(logging.WARNING)
    if not any(isinstance(f, UrlRedactor) for f in weasyprint.filters):
        weasyprint.addFilter(UrlRedactor())


class UrlRedactor(logging.Filter):
    """WeasyPrint logs refused resources with their whole URL; keep scheme, host and path
    only (a query string may carry a token or a customer's data)."""

    QUERY = re.compile(r"(\w+:[^\s'\"?#]*)[?#][^\s'\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.QUERY.sub(r"\1?…", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

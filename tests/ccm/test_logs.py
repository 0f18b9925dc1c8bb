"""The logging policy: no tokens or personal data in what WeasyPrint logs about URLs."""
from __future__ import annotations

import logging

from ccm.logs import configure_logging


def test_weasyprint_url_queries_are_redacted(caplog):
    configure_logging("WARNING")
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        logging.getLogger("weasyprint").error("Failed to load image at %r", "https://cdn.example/p.png?token=s3cret&to=a@b.example")
    assert "s3cret" not in caplog.text and "a@b.example" not in caplog.text
    assert "https://cdn.example/p.png?…" in caplog.text

"""Message factories for the channel tests (the SMTP server and TLS fixtures are in
``tests/conftest.py``, shared with the engine tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def make_email(to: str, subject: str = "Your statement", body: str = "Hello\n.\nBye\n") -> Any:
    from email.message import EmailMessage
    from email.utils import make_msgid

    message = EmailMessage()
    message["From"] = "billing@example.com"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="ccm.example.com")
    message.set_content(body)
    return message


def make_pdf(pages: int) -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture
def email_factory() -> Callable[..., Any]:
    return make_email


@pytest.fixture
def pdf_factory() -> Callable[[int], bytes]:
    return make_pdf

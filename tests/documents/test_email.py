"""E-mail composition: inlining, MIME structure, safe headers."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from documents import Attachment, compose_email, inline_css, make_message_id

HTML = """<html><head><style>
p.lead { color: #123456; font-weight: bold; }
@media only screen and (max-width: 600px) { .container { width: 100% !important; } }
</style></head><body><div class="container"><p class="lead">Hello</p></div></body></html>"""
PDF = b"%PDF-1.7\n% fake but bytes are bytes\n%%EOF\n"


def compose(**overrides: object) -> EmailMessage:
    arguments: dict[str, object] = {
        "subject": "Your statement", "html": HTML, "text": "Hello", "from_addr": "billing@acme.example",
        "to_addr": "alice@example.com", "to_name": "Alice", "message_id": make_message_id("k1", "acme.example"),
    }
    arguments.update(overrides)
    return compose_email(**arguments)  # type: ignore[arg-type]


def reparse(message: EmailMessage) -> EmailMessage:
    return message_from_bytes(message.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def test_css_inline_keeps_media_query_with_important() -> None:
    html = inline_css(HTML)
    assert 'style="color: #123456;font-weight: bold;"' in html or "color: #123456" in html.split("<p", 1)[1]
    assert "@media only screen and (max-width: 600px)" in html
    assert "width: 100% !important" in html


def test_premailer_is_selectable() -> None:
    html = inline_css(HTML, engine="premailer")
    assert "color:#123456" in html.replace(" ", "")
    assert "@media" in html and "!important" in html


def test_unknown_inliner() -> None:
    with pytest.raises(ValueError, match="unknown CSS inliner"):
        inline_css(HTML, engine="nope")


def test_remote_stylesheets_are_not_loaded() -> None:
    html = '<html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head><body><p>x</p></body></html>'
    assert "<p>x</p>" in inline_css(html)


def test_structure_without_attachments() -> None:
    message = reparse(compose())
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Hello"
    assert html is not None and "color: #123456" in html.get_content()
    assert message["Date"] and message["Message-ID"] == make_message_id("k1", "acme.example")


def test_pdf_attachment_decodes() -> None:
    message = reparse(compose(attachments=[Attachment("statement-2026-11.pdf", PDF)], reply_to="help@acme.example"))
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_filename() == "statement-2026-11.pdf"
    assert attachments[0].get_content() == PDF
    assert message["Reply-To"] == "help@acme.example"


def test_chinese_display_name_round_trips() -> None:
    raw = compose(to_name="张伟", subject="您的对账单").as_bytes()
    assert b"\xe5" not in raw.split(b"\r\n\r\n", 1)[0] and b"\xe5" not in raw.split(b"\n\n", 1)[0]
    message = reparse(compose(to_name="张伟", subject="您的对账单"))
    address = message["To"].addresses[0]
    assert (address.display_name, address.addr_spec) == ("张伟", "alice@example.com")
    assert message["Subject"] == "您的对账单"


def test_header_injection_is_blocked() -> None:
    message = compose(to_name="Bob\r\nBcc: evil@x.com", subject="Hi\r\nBcc: evil@x.com",
                      headers={"X-Campaign": "a\r\nBcc: evil@x.com"})
    parsed = reparse(message)
    assert parsed["Bcc"] is None
    assert "\n" not in parsed["Subject"] and "\n" not in str(parsed["To"])
    for bad in ("alice@example.com\r\nBcc: evil@x.com", "a@b.com, evil@x.com", "nobody"):
        with pytest.raises(ValueError):
            compose(to_addr=bad)
    with pytest.raises(ValueError):
        compose(headers={"Bcc": "evil@x.com"})
    with pytest.raises(ValueError):
        compose(headers={"X-Bad\r\nBcc": "x"})


def test_message_id_is_deterministic() -> None:
    first = make_message_id("run-7:cust-42:email", "acme.example")
    assert first == make_message_id("run-7:cust-42:email", "acme.example")
    assert first != make_message_id("run-7:cust-43:email", "acme.example")
    assert first.startswith("<") and first.endswith("@acme.example>")
    with pytest.raises(ValueError):
        make_message_id("k", "evil>\r\nBcc: x")


def test_sender_headers_parsed_once_stay_right_for_every_message() -> None:
    """From and Reply-To are parsed once per sender and shared: each message still names its
    own sender, and a bad sender address is refused every time, not only the first."""
    first = reparse(compose(from_name="Acme Billing", reply_to="help@acme.example"))
    other = reparse(compose(from_addr="news@acme.example", from_name="Acme News"))
    again = reparse(compose(from_name="Acme Billing", reply_to="help@acme.example"))
    assert [(a.display_name, a.addr_spec) for a in first["From"].addresses] == [("Acme Billing", "billing@acme.example")]
    assert [(a.display_name, a.addr_spec) for a in other["From"].addresses] == [("Acme News", "news@acme.example")]
    assert str(again["From"]) == str(first["From"]) and str(again["Reply-To"]) == "help@acme.example" and other["Reply-To"] is None
    assert first["Date"] and first["Date"].datetime.tzinfo is not None
    for _ in range(2):
        with pytest.raises(ValueError):
            compose(from_addr="billing@acme.example\r\nBcc: evil@x.com")

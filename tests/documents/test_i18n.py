"""Locale negotiation and .po loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents import load_po, negotiate


@pytest.mark.parametrize(("locale", "expected"), [
    ("zh_CN", "zh_Hans"), ("zh-CN", "zh_Hans"), ("zh_Hans_CN", "zh_Hans"), ("zh", "zh_Hans"),
    ("zh_SG", "zh_Hans"), ("zh_TW", None), ("en_GB", None), ("en", None), ("de_DE", None),
    ("", None), ("not a locale", None),
])
def test_negotiate(locale: str, expected: str | None) -> None:
    assert negotiate(locale, ["zh_Hans", "fr"]) == expected


def test_negotiate_prefers_exact_territory() -> None:
    assert negotiate("fr_CA", ["fr", "fr_CA"]) == "fr_CA"
    assert negotiate("fr_BE", ["fr_CA", "fr"]) == "fr"


def test_load_po_skips_fuzzy_and_empty(tmp_path: Path) -> None:
    po = tmp_path / "x.po"
    po.write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Hello"\nmsgstr "你好"\n\n'
        '#, fuzzy\nmsgid "Maybe"\nmsgstr "也许"\n\n'
        'msgid "Empty"\nmsgstr ""\n', encoding="utf-8")
    assert load_po(po) == {"Hello": "你好"}

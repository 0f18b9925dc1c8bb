"""Translation catalogs and locale negotiation.

English is the source language: an English locale negotiates to ``None``
(use the msgids as they are). Other locales map to the best available catalog,
e.g. ``zh_CN``, ``zh-CN``, ``zh_Hans_CN`` and ``zh`` all map to ``zh_Hans``.
"""

from __future__ import annotations

import functools
import io

from collections.abc import Iterable
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.messages.pofile import read_po

__all__ = ["SOURCE_LANGUAGE", "load_po", "negotiate", "parse_locale", "parse_po"]

SOURCE_LANGUAGE = "en"


def load_po(path: str | Path) -> dict[str, str]:
    """Read a ``.po`` file into ``{msgid: msgstr}``, skipping fuzzy and empty entries."""
    with open(path, "rb") as handle:
        return parse_po(handle.read())


def parse_po(source: str | bytes) -> dict[str, str]:
    """Parse the text of a ``.po`` catalog (e.g. a version kept in a template store)."""
    data = source.encode("utf-8") if isinstance(source, str) else source
    catalog = read_po(io.BytesIO(data))
    messages: dict[str, str] = {}
    for message in catalog:
        if not message.id or message.fuzzy or message.pluralizable:
            continue
        if isinstance(message.string, str) and message.string:
            messages[str(message.id)] = message.string
    return messages


@functools.lru_cache(maxsize=1024)
def parse_locale(tag: str) -> Locale:
    """Parse ``zh-CN``/``zh_CN``/``en``; an unknown or empty tag gives English (cached:
    every render asks, and Babel's parsing is slow)."""
    try:
        return Locale.parse(tag.strip().replace("-", "_")) if tag.strip() else Locale("en")
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale("en")


def negotiate(locale: str, available: Iterable[str]) -> str | None:
    """Return the catalog in ``available`` that best serves ``locale``, or None.

    None means "use the source language" (English, or nothing suitable).
    """
    return _negotiate(locale, tuple(available))


@functools.lru_cache(maxsize=1024)
def _negotiate(locale: str, available: tuple[str, ...]) -> str | None:
    wanted = _with_script(parse_locale(locale))
    if wanted.language == SOURCE_LANGUAGE:
        return None
    best: tuple[int, str] | None = None
    for tag in available:
        offer = _with_script(parse_locale(tag))
        if offer.language != wanted.language or offer.script != wanted.script:
            continue
        score = 2 if offer.territory == wanted.territory else (1 if offer.territory is None else 0)
        if best is None or score > best[0]:
            best = (score, tag)
    return best[1] if best else None


@functools.lru_cache(maxsize=1024)
def _with_script(locale: Locale) -> Locale:
    """Fill in the likely script (``zh`` -> ``zh_Hans``) so scripts can be compared."""
    if locale.script:
        return locale
    likely: dict[str, str] = get_global("likely_subtags")
    for key in (f"{locale.language}_{locale.territory}", locale.language):
        if key in likely:
            script = Locale.parse(likely[key]).script
            return Locale(locale.language, locale.territory, script)
    return locale

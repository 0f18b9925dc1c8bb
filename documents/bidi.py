"""Bidirectional text: data cannot reorder the document around it, and what direction
documents are laid out in.

A string with Unicode bidi embedding, override or isolate controls (U+202A to U+202E,
U+2066 to U+2069) would reverse the rest of the sentence it is printed in (a name ending
in RIGHT-TO-LEFT OVERRIDE). Every such string of a render's data reaches the template
as a first-strong isolate, FSI + text + PDI, with its own controls removed: the same
for HTML (where the isolate characters do what ``<bdi>`` does), PDF, plain-text e-mail
and SMS. Strings without controls are passed as they are.

Documents are laid out left to right only, so far: a render for a right-to-left locale
(Arabic, Hebrew...) formats and translates in English rather than print garbled dates
and amounts (``ccm`` refuses such locales at import).
"""

from __future__ import annotations

import re
from typing import Any

from babel import Locale

__all__ = ["FSI", "PDI", "isolate", "isolate_data", "layout_locale"]

FSI, PDI = "\u2068", "\u2069"
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def isolate(text: str) -> str:
    """``text`` as an isolate without its own controls, if it has any; else as it is."""
    if not BIDI_CONTROLS.search(text):
        return text
    return FSI + BIDI_CONTROLS.sub("", text) + PDI


def isolate_data(value: Any) -> Any:
    """``value`` with every plain string in it (dicts, lists, tuples) passed through
    :func:`isolate`; the same object where nothing changes (copies only what does)."""
    kind = type(value)
    if kind is str:  # isascii() is constant-time: most data never meets the regex
        return value if value.isascii() or not BIDI_CONTROLS.search(value) else isolate(value)
    if kind is dict:
        changed = None
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                new = isolate_data(item)
                if new is not item:
                    changed = changed or dict(value)
                    changed[key] = new
        return value if changed is None else changed
    if kind is list or kind is tuple:
        items = [isolate_data(item) if type(item) in _CONTAINERS else item for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        return items if kind is list else tuple(items)
    return value


_CONTAINERS = frozenset({str, dict, list, tuple})


def layout_locale(locale: Locale) -> Locale:
    """The locale documents are made in for ``locale``: English for right-to-left ones."""
    return Locale("en") if locale.character_order == "right-to-left" else locale

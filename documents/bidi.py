"""Bidirectional text: data cannot reorder the document around it, and what direction
documents are laid out in.

A string with Unicode bidi embedding, override or isolate controls (U+202A to U+202E,
U+2066 to U+2069) would reverse the rest of the sentence it is printed in (a name ending
in RIGHT-TO-LEFT OVERRIDE). Every such string of a render's data reaches the template
as a first-strong isolate, FSI + text + PDI, with its own controls removed: the same
for HTML (where the isolate characters do what ``<bdi>`` does), PDF, plain-text e-mail
and SMS. Strings without controls are passed as they are.

Right-to-left documents: Arabic and Hebrew renders are made in their own locale, and
the sandbox tells templates the ``direction`` ("rtl") to put on the document. In such a
render every formatted amount, date and number, every parameter of a translated sentence
and every string passed through the ``isolate`` filter (names, addresses, transaction
descriptions) is printed as a first-strong isolate, so a Latin name, a ``12 Elm Street``
or a date cannot be reordered by the Arabic or Hebrew text around it (the garbled
``012026/11/30``). Left-to-right renders are untouched: no isolates, no extra work.
Other right-to-left locales (Persian, Urdu, Yiddish...) have no catalog, layout or
number forms checked yet: a render for one is made in English rather than printed
wrong, and ``ccm`` refuses them at import (:func:`locale_supported`).
"""

from __future__ import annotations

import re
from typing import Any

from babel import Locale

__all__ = ["FSI", "PDI", "RIGHT_TO_LEFT_LANGUAGES", "is_right_to_left", "isolate", "isolate_data",
           "isolated", "layout_locale", "locale_supported"]

FSI, PDI = "\u2068", "\u2069"
# Right-to-left languages documents are made in: catalogs shipped, layout and the PDF
# text read back in tests. Add one only with all three.
RIGHT_TO_LEFT_LANGUAGES = frozenset({"ar", "he"})
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


def isolated(text: str) -> str:
    """``text`` as a first-strong isolate (FSI + text + PDI), unless it is one already
    or empty: what right-to-left renders print for every value they insert."""
    if not text or (text[0] == FSI and text[-1] == PDI):
        return text
    return FSI + text + PDI


def is_right_to_left(locale: Locale) -> bool:
    """Whether ``locale``'s script is written right to left."""
    return locale.character_order == "right-to-left"


def locale_supported(locale: Locale) -> bool:
    """Whether documents can be made in ``locale``: any left-to-right one, and the
    right-to-left languages of :data:`RIGHT_TO_LEFT_LANGUAGES`."""
    return not is_right_to_left(locale) or locale.language in RIGHT_TO_LEFT_LANGUAGES


def layout_locale(locale: Locale) -> Locale:
    """The locale documents are made in for ``locale``: itself when :func:`locale_supported`,
    else English (an unsupported right-to-left locale is never printed wrong)."""
    return locale if locale_supported(locale) else Locale("en")

"""SMS encoding and segmentation (GSM 03.38 7-bit or UCS-2).

GSM-7 when every character is in the GSM basic set or its extension table
(extension characters cost two septets and are never split from their escape);
otherwise UCS-2, counted in UTF-16 code units, never splitting a surrogate pair.
An empty text is one (empty) segment, as reference segment counters have it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec

__all__ = ["SmsInfo", "sms_info"]

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    """How a text travels as SMS: encoding, segment count, units and the parts."""

    encoding: str  # "GSM-7" | "UCS-2"
    segments: int
    units: int
    parts: tuple[str, ...]


def sms_info(text: str) -> SmsInfo:
    """Encoding, size and concatenated-SMS parts of ``text``."""
    costs = _gsm_costs(text)
    if costs is not None:
        encoding, single, part = "GSM-7", GSM_SINGLE, GSM_PART
    else:
        costs = [len(char.encode("utf-16-le")) // 2 for char in text]
        encoding, single, part = "UCS-2", UCS2_SINGLE, UCS2_PART
    units = sum(costs)
    parts = (text,) if units <= single else _split(text, costs, part)
    return SmsInfo(encoding, len(parts), units, parts)


def _gsm_costs(text: str) -> list[int] | None:
    """Septets per character, or None if some character is not GSM-7."""
    costs = []
    for char in text:
        try:
            costs.append(len(char.encode("gsm03.38")))
        except UnicodeEncodeError:
            return None
    return costs


def _split(text: str, costs: list[int], limit: int) -> tuple[str, ...]:
    """Cut ``text`` into parts of at most ``limit`` units, never inside a character."""
    parts: list[str] = []
    start, used = 0, 0
    for index, cost in enumerate(costs):
        if used + cost > limit:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return tuple(parts)

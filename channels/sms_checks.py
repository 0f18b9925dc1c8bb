"""What every SMS adapter checks before it sends: text for a number in E.164 form, no longer
than the channel allows. A message that fails is permanent: sending it again changes nothing."""

from __future__ import annotations

import re

from .base import Outbound

E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def sms_problem(out: Outbound, max_body: int | None) -> str:
    """Why ``out`` cannot go as an SMS (a short reason without the number or the text), or ""."""
    if not isinstance(out.content, str):
        return "content is not SMS text"
    if not E164.fullmatch(out.to):
        return "recipient is not an E.164 number"
    if max_body is not None and len(out.content) > max_body:
        return f"text longer than {max_body} characters"
    return ""

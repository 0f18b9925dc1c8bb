"""Keep personal data out of ``DeliveryResult.detail`` and log lines."""

from __future__ import annotations

import errno
import re

_EMAIL = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
_PHONE = re.compile(r"\+?\d(?:[ ().-]{0,2}\d){7,}")
MAX_DETAIL = 200


def redact(text: str, *secrets: str) -> str:
    """``text`` without the given secrets, e-mail addresses or phone numbers, one line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    text = _EMAIL.sub("<address>", text)
    text = _PHONE.sub("<number>", text)
    text = " ".join(text.split())
    return text[:MAX_DETAIL]


def os_error_detail(exc: OSError, doing: str) -> str:
    """``"ENOSPC: writing message"`` — the errno name, never the path."""
    code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return f"{code}: {doing}"

"""Parsing and rebuilding channel URLs; passwords are masked whenever a URL is shown."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, SplitResult

from .base import ChannelConfigError

MASK = "****"


def split_url(url: str, schemes: Iterable[str], name: str) -> SplitResult:
    """Split ``url`` and check its scheme is one of ``schemes``."""
    if not isinstance(url, str) or "://" not in url:
        raise ChannelConfigError(f"{name} URL must look like scheme://..., got no scheme")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port lazily
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith("Port could not be cast"):  # (it quotes what follows the ':', maybe a password)
            reason = "the port is not a number (%-escape '/', '?', '#' and '@' in a password)"
        raise ChannelConfigError(f"{name} URL: {reason}") from None
    allowed = tuple(schemes)
    if parts.scheme.lower() not in allowed:
        raise ChannelConfigError(
            f"{name} URL scheme {parts.scheme!r} is not one of {', '.join(allowed)}"
        )
    if parts.fragment:
        raise ChannelConfigError(f"{name} URL must not have a #fragment")
    return parts


def query_options(parts: SplitResult, allowed: Iterable[str], name: str) -> dict[str, str]:
    """The query string as a dict; unknown or repeated keys are rejected."""
    try:
        raw = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ChannelConfigError(f"{name} URL: malformed query string") from None
    known = set(allowed)
    options: dict[str, str] = {}
    for key, values in raw.items():
        if key not in known:
            hint = f" (known: {', '.join(sorted(known))})" if known else ""
            raise ChannelConfigError(f"{name} URL: unknown option {key!r}{hint}")
        if len(values) > 1:
            raise ChannelConfigError(f"{name} URL: option {key!r} given more than once")
        options[key] = values[0]
    return options


def folder_from_url(parts: SplitResult, name: str) -> str:
    """``scheme:///abs/path`` is absolute, ``scheme://rel/path`` is relative to the cwd.

    The result is absolute: a relative folder is resolved when the channel is made.
    """
    if parts.query:
        raise ChannelConfigError(f"{name} URL takes no options")
    raw = unquote(parts.netloc + parts.path)
    if not raw or raw == "/":
        raise ChannelConfigError(f"{name} URL needs a path, e.g. {parts.scheme}:///var/ccm/out")
    return os.path.abspath(raw)


def folder_url(scheme: str, folder: str) -> str:
    """Inverse of :func:`folder_from_url` (always the absolute form)."""
    return f"{scheme}://{quote(folder)}"


def server_url(
    scheme: str,
    host: str,
    port: int,
    user: str | None,
    password: str | None,
    options: Mapping[str, str],
    privacy: bool,
) -> str:
    """``scheme://user:pass@host:port?options`` with the password masked if ``privacy``."""
    auth = ""
    if user is not None:
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + (MASK if privacy else quote(password, safe=""))
        auth += "@"
    shown_host = f"[{host}]" if ":" in host else host
    query = f"?{urlencode(dict(options))}" if options else ""
    return f"{scheme}://{auth}{shown_host}:{port}{query}"


def seconds_option(value: str, option: str, name: str, most: float = 3600) -> float:
    """A URL option in seconds: more than 0 and at most ``most``; else an error naming it."""
    try:
        number = float(value)
    except ValueError:
        raise ChannelConfigError(f"{name} URL: {option} must be a number of seconds") from None
    if not 0 < number <= most:
        raise ChannelConfigError(f"{name} URL: {option} must be more than 0 and at most {most:g} seconds")
    return number


def format_number(value: float) -> str:
    """Seconds as a URL shows them: 5, not 5.0."""
    return str(int(value)) if value.is_integer() else repr(value)


def count_option(value: str, option: str, name: str, most: int) -> int:
    """A URL option that is a whole number from 1 to ``most``; else an error naming it."""
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise ChannelConfigError(f"{name} URL: {option} must be a whole number from 1 to {most}")
    return int(value)

"""External resources in HTML, CSS and SVG templates: only allowed assets.

A resource (img/src, link/href, url() in a style, @import, srcset, ...) must be a
relative path to an asset of the library (no ``..``, no leading ``/``), a ``data:`` URL,
or an ``http(s)`` URL on a host listed in ``[authoring] asset_hosts``. ``file:`` URLs,
other schemes and computed (templated) resource URLs are refused, but for the ones the
engine makes itself (``{{ links.pay_qr }}``, ``{{ qr("https://...") }}``: ``data:`` URLs). Links (a/href) may
point anywhere except ``javascript:``, ``file:`` and ``data:``. Scripts are refused.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ccm.authoring.problems import Problem, at_offset

TAG = re.compile(r"<([a-zA-Z][\w:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
# A quoted value may hold Jinja expressions with quotes of their own: src="{{ qr("https://...") }}".
ATTRIBUTE = re.compile(r"([\w:-]+)\s*=\s*(\"((?:\{\{.*?\}\}|[^\"{]|\{(?!\{))*)\"|'((?:\{\{.*?\}\}|[^'{]|\{(?!\{))*)'"
                       r"|\"([^\"]*)\"|'([^']*)'|([^\s>\"']+))", re.S)
CSS_URL = re.compile(r"url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^)\s]*))\s*\)", re.I)
CSS_IMPORT = re.compile(r"@import\s+(?:\"([^\"]*)\"|'([^']*)')", re.I)
COMPUTED_TAG = re.compile(r"<\s*/?\s*(?:\{\{|\{%)")
RESOURCE_ATTRIBUTES = {"src", "srcset", "data", "poster", "background", "xlink:href", "lowsrc", "dynsrc", "longdesc"}
LINK_TAGS = {"a", "area", "base"}
SAFE_LINK_SCHEMES = {"http", "https", "mailto", "tel", ""}
# Computed resources the engine makes itself, never from customer data: the QR code of the
# payment link and qr("a fixed URL"), data: URLs (ccm.links.tracked).
ENGINE_RESOURCE = re.compile(r"\{\{\s*(?:links\.pay_qr|qr\(\s*(?:\"[^\"{}]*\"|'[^'{}]*')\s*\))\s*\}\}")


def check_resources(name: str, source: str, *, is_asset: Callable[[str], bool], hosts: list[str]) -> list[Problem]:
    problems = []
    for offset, url, kind in _references(source):
        reason = _refusal(url, kind, is_asset, hosts)
        if reason:
            line, column = at_offset(source, offset)
            problems.append(Problem(name, line, column, reason))
    for match in re.finditer(r"<script\b", source, re.I):
        line, column = at_offset(source, match.start())
        problems.append(Problem(name, line, column, "scripts are not allowed in templates"))
    return problems


def _references(source: str) -> Iterator[tuple[int, str, str]]:
    """(offset, url, "resource" | "link" | "tag") for every URL the markup or styles refer to."""
    for match in COMPUTED_TAG.finditer(source):
        yield match.start(), match.group(0), "tag"
    for tag in TAG.finditer(source):
        tag_name = tag.group(1).lower()
        attributes = [(a.group(1).lower(), next(v for v in a.groups()[2:] if v is not None), tag.start(2) + a.start(2))
                      for a in ATTRIBUTE.finditer(tag.group(2))]
        # <a rel="attachment" href=...> makes WeasyPrint embed the target: a resource, not a link
        embeds = any(attr == "rel" and "attachment" in value.lower().split() for attr, value, _ in attributes)
        for attr, value, offset in attributes:
            if attr == "href":
                yield offset, value, "link" if tag_name in LINK_TAGS and not embeds else "resource"
            elif attr == "rel" and "{{" in value:
                yield offset, value, "resource"  # a computed rel could turn a link into an attachment
            elif attr == "srcset":
                for candidate in value.split(","):
                    if candidate.strip():
                        yield offset, candidate.split()[0], "resource"
            elif attr in RESOURCE_ATTRIBUTES or attr.startswith("on"):
                yield offset, value, "script" if attr.startswith("on") else "resource"
    for pattern in (CSS_URL, CSS_IMPORT):
        for match in pattern.finditer(source):
            value = next((v for v in match.groups() if v is not None), "")
            yield match.start(), value, "resource"


def _refusal(url: str, kind: str, is_asset: Callable[[str], bool], hosts: list[str]) -> str | None:
    url = url.strip()
    if kind == "script":
        return "event handler attributes (on...) are not allowed"
    if kind == "tag":
        return "tag names must be written out, not computed with {{ }} or {% %}"
    if "{{" in url or "{%" in url:
        if kind == "link" or ENGINE_RESOURCE.fullmatch(url):
            return None
        return f"resource URL {url!r} is computed; resources must be fixed asset paths"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if kind == "link":
        return None if scheme in SAFE_LINK_SCHEMES else f"link to a {scheme}: URL is not allowed ({url[:60]!r})"
    if not url or url.startswith("#"):
        return None
    if scheme == "data":
        return None
    if scheme == "file":
        return f"file: URLs are refused ({url[:60]!r}); use an asset of the library"
    if scheme in ("http", "https") or url.startswith("//"):
        host = (parts.hostname or "").lower()
        if host and host in [h.lower() for h in hosts]:
            return None
        return f"remote resource {url[:60]!r} refused: host {host or '?'} is not in [authoring] asset_hosts"
    if scheme:
        return f"{scheme}: URLs are refused ({url[:60]!r})"
    path = PurePosixPath(parts.path)
    if parts.path.startswith("/") or ".." in path.parts or "\\" in url:
        return f"asset path {url!r} must be relative to the library, without '..'"
    if not is_asset(str(path)):
        return f"unknown asset {url!r}"
    return None

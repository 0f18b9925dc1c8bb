"""The URL fetcher WeasyPrint uses: asset folders and data: URLs only.

``file:`` URLs are served only when their real path (symlinks resolved) lies
inside one of the asset folders; ``http(s):`` only when the network is allowed;
everything else is refused. A refusal raises inside the fetcher, so WeasyPrint
drops the resource and carries on; it is logged without any query string.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse

__all__ = ["RefusedResource", "RestrictedFetcher"]

LOGGER = logging.getLogger(__name__)


class RefusedResource(ValueError):
    """The document asked for a resource outside what it may read."""


class RestrictedFetcher(URLFetcher):
    """Serve ``data:`` URLs and files inside ``asset_dirs``; network only if allowed."""

    def __init__(self, asset_dirs: Sequence[Path], *, allow_network: bool = False,
                 assets: Callable[[str], str | bytes | None] | None = None) -> None:
        super().__init__(timeout=10, allow_redirects=allow_network)
        self._roots = [Path(root).resolve() for root in asset_dirs]
        self._assets = assets  # content by path relative to the first root, before the disk
        self._allow_network = allow_network
        self.refusals = 0

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            return self._fetch_file(url)
        if scheme in ("http", "https") and self._allow_network:
            return super().fetch(url, headers)
        self._refuse(url, "scheme not allowed")

    def _fetch_file(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            self._refuse(url, "remote file host")
        path = Path(url2pathname(unquote(parts.path))).resolve()
        if not any(path.is_relative_to(root) for root in self._roots):
            self._refuse(url, "outside the asset folders")
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if self._assets is not None and path.is_relative_to(self._roots[0]):
            supplied = self._assets(path.relative_to(self._roots[0]).as_posix())
            if supplied is not None:
                data = supplied.encode("utf-8") if isinstance(supplied, str) else supplied
                return URLFetcherResponse(path.as_uri(), data, {"Content-Type": mimetype})
        if not path.is_file():
            self._refuse(url, "no such asset")
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": mimetype})

    def _refuse(self, url: str, reason: str) -> NoReturn:
        self.refusals += 1
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]
        LOGGER.warning("refused to fetch %s (%s)", shown, reason)
        raise RefusedResource(f"refused: {reason}")

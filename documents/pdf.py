"""PDF rendering with WeasyPrint behind a small interface.

One ``FontConfiguration`` per renderer, stylesheets parsed once and cached,
a restricted URL fetcher, PDF/A on request.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

__all__ = ["PdfDocument", "PdfRenderer", "WeasyPrintRenderer", "harfbuzz_subset_available",
           "pdf_fonts"]

LOGGER = logging.getLogger(__name__)
ARCHIVE_VARIANT = "pdf/a-3b"


@dataclass(frozen=True)
class PdfDocument:
    """A rendered PDF and its page count."""

    data: bytes
    pages: int


class PdfRenderer(Protocol):
    """Turns HTML into a PDF."""

    def render(self, html: str, *, stylesheets: Sequence[str] = (),
               archive: bool = False) -> PdfDocument: ...


class WeasyPrintRenderer:
    """WeasyPrint renderer reading assets (CSS, images, fonts) only from ``asset_dirs``.

    Stylesheet and image paths are relative to the first asset folder.
    """

    def __init__(self, asset_dirs: Sequence[str | Path], *, allow_network: bool = False,
                 assets: Callable[[str], str | bytes | None] | None = None) -> None:
        """``assets(name)``, when given, supplies an asset's content by its path relative to
        the first asset folder (e.g. a stylesheet version kept in a template store) before
        the file on disk is read; None means "read the file"."""
        from weasyprint.text.fonts import FontConfiguration

        from .fetcher import RestrictedFetcher

        if not asset_dirs:
            raise ValueError("WeasyPrintRenderer needs at least one asset folder")
        self.asset_dirs = tuple(Path(folder).resolve() for folder in asset_dirs)
        self.assets = assets
        self.fetcher = RestrictedFetcher(self.asset_dirs, allow_network=allow_network, assets=assets)
        self._font_config = FontConfiguration()
        self._stylesheets: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.stylesheet_parses = 0
        if not harfbuzz_subset_available():
            LOGGER.warning(
                "HarfBuzz subsetting (libharfbuzz-subset) is not available: WeasyPrint will "
                "subset fonts with fontTools, 1.75x to 17x slower. Install the Debian package "
                "libharfbuzz-subset0 (or your system's HarfBuzz >= 4.1 subset library).")

    def render(self, html: str, *, stylesheets: Sequence[str] = (),
               archive: bool = False) -> PdfDocument:
        """Render ``html`` with the named stylesheets; ``archive`` gives PDF/A-3b."""
        from weasyprint import HTML

        options: dict[str, Any] = {"pdf_variant": ARCHIVE_VARIANT} if archive else {}
        sheets = [self.stylesheet(name) for name in stylesheets]
        source = HTML(string=html, base_url=self.asset_dirs[0].as_uri() + "/",
                      url_fetcher=self.fetcher)
        document = source.render(font_config=self._font_config, stylesheets=sheets, **options)
        with _quiet_srgb_leak() if archive else nullcontext():
            data = document.write_pdf(**options)
        return PdfDocument(data=data, pages=len(document.pages))

    def stylesheet(self, name: str) -> Any:
        """The parsed ``weasyprint.CSS`` for ``name``, parsed on first use only."""
        with self._lock:
            if name not in self._stylesheets:
                self._stylesheets[name] = self._parse(name)
            return self._stylesheets[name]

    def _parse(self, name: str) -> Any:
        from weasyprint import CSS

        supplied = self.assets(name) if self.assets is not None else None
        if supplied is not None:
            path = (self.asset_dirs[0] / name).resolve()
            if not path.is_relative_to(self.asset_dirs[0]):
                raise FileNotFoundError(f"stylesheet {name!r} is not in the asset folders")
            self.stylesheet_parses += 1
            text = supplied.decode("utf-8") if isinstance(supplied, bytes) else supplied
            return CSS(string=text, base_url=path.as_uri(), url_fetcher=self.fetcher, font_config=self._font_config)
        for root in self.asset_dirs:
            path = (root / name).resolve()
            if path.is_relative_to(root) and path.is_file():
                self.stylesheet_parses += 1
                return CSS(filename=str(path), url_fetcher=self.fetcher,
                           font_config=self._font_config)
        raise FileNotFoundError(f"stylesheet {name!r} is not in the asset folders")


@contextmanager
def _quiet_srgb_leak() -> Iterator[None]:
    """WeasyPrint 70 leaves its sRGB profile file open when writing PDF/A; hush that warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def harfbuzz_subset_available() -> bool:
    """Whether WeasyPrint found a HarfBuzz subset library it can use (>= 4.1)."""
    try:
        from weasyprint.text.ffi import harfbuzz, harfbuzz_subset
    except (ImportError, OSError):
        return False
    return harfbuzz_subset is not None and bool(harfbuzz.hb_version_atleast(4, 1, 0))


def pdf_fonts(data: bytes) -> list[str]:
    """BaseFont names of the fonts used by a PDF's pages (subset prefixes kept)."""
    from pypdf import PdfReader

    names: set[str] = set()
    for page in PdfReader(BytesIO(data)).pages:
        _collect_fonts(page.get("/Resources"), names, depth=0)
    return sorted(names)


def _collect_fonts(resources: Any, names: set[str], depth: int) -> None:
    if resources is None or depth > 8:
        return
    resources = resources.get_object()
    for font in (resources.get("/Font") or {}).values():
        base = font.get_object().get("/BaseFont")
        if base is not None:
            names.add(str(base).lstrip("/"))
    for xobject in (resources.get("/XObject") or {}).values():
        _collect_fonts(xobject.get_object().get("/Resources"), names, depth + 1)

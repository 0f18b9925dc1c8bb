"""PDF rendering with WeasyPrint behind a small interface.

One ``FontConfiguration`` per renderer, stylesheets parsed once and cached,
a restricted URL fetcher, PDF/A on request. Pages that do not vary per document
(terms, a back page) are laid out once (:meth:`WeasyPrintRenderer.static_pages`) and
drawn into each document that appends them: no second layout, one font subset per
document, no PDF re-parsing.

Python's cyclic garbage collector is held off while WeasyPrint lays out and draws:
a statement allocates hundreds of thousands of boxes that live until the page is done,
and the collector walked them again and again (a fifth to a quarter of a statement's
render time, more in a worker that also holds the engine's objects). Reference counting frees most of them at once;
the cycles left are collected once, after the render.
"""

from __future__ import annotations

import gc
import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

__all__ = ["PdfDocument", "PdfRenderer", "StaticPages", "WeasyPrintRenderer",
           "harfbuzz_subset_available", "pdf_fonts"]

LOGGER = logging.getLogger(__name__)
ARCHIVE_VARIANT = "pdf/a-3b"


@dataclass(frozen=True)
class PdfDocument:
    """A rendered PDF and its page count."""

    data: bytes
    pages: int


@dataclass(frozen=True)
class StaticPages:
    """Pages laid out once, to be appended to many documents of the same renderer."""

    document: Any  # a laid-out weasyprint.Document
    archive: bool

    @property
    def pages(self) -> int:
        return len(self.document.pages)


class PdfRenderer(Protocol):
    """Turns HTML into a PDF."""

    def render(self, html: str, *, stylesheets: Sequence[str] = (),
               archive: bool = False, append: Sequence[StaticPages] = ()) -> PdfDocument: ...


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
               archive: bool = False, append: Sequence[StaticPages] = ()) -> PdfDocument:
        """Render ``html`` with the named stylesheets; ``archive`` gives PDF/A-3b.

        ``append``: pages from :meth:`static_pages` of this renderer, drawn after the
        document's own pages (its metadata, language and PDF/A identification kept)."""
        options: dict[str, Any] = {"pdf_variant": ARCHIVE_VARIANT} if archive else {}
        for static in append:
            if static.archive != archive:
                raise ValueError("static pages must be laid out for the same PDF variant as the document")
        with _collector_held():
            document = self._layout(html, stylesheets, options)
            if append:
                document = document.copy([*document.pages, *(page for static in append for page in static.document.pages)])
            with _quiet_srgb_leak() if archive else nullcontext():
                data = document.write_pdf(finisher=_serialise_streams_once if archive else None, **options)
            return PdfDocument(data=data, pages=len(document.pages))

    def static_pages(self, html: str, *, stylesheets: Sequence[str] = (),
                     archive: bool = False) -> StaticPages:
        """Lay ``html`` out once, to be appended to documents by :meth:`render`."""
        options: dict[str, Any] = {"pdf_variant": ARCHIVE_VARIANT} if archive else {}
        with _collector_held():
            return StaticPages(self._layout(html, stylesheets, options), archive)

    def _layout(self, html: str, stylesheets: Sequence[str], options: dict[str, Any]) -> Any:
        from weasyprint import HTML

        sheets = [self.stylesheet(name) for name in stylesheets]
        source = HTML(string=html, base_url=self.asset_dirs[0].as_uri() + "/",
                      url_fetcher=self.fetcher)
        return source.render(font_config=self._font_config, stylesheets=sheets, **options)

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


_collector_lock = threading.Lock()
_collector_holders = 0
_collector_was_enabled = False


@contextmanager
def _collector_held() -> Iterator[None]:
    """Keep the cyclic garbage collector off while any thread renders; when the last
    render ends, restore it as it was and collect the young generation once (the render's
    cycles: a few thousand objects, not the hundreds of thousands it walked before)."""
    global _collector_holders, _collector_was_enabled
    with _collector_lock:
        if _collector_holders == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_holders += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_holders -= 1
            if _collector_holders == 0 and _collector_was_enabled:
                gc.enable()
                gc.collect(0)


_SERIALISED_ONCE: dict[type, type] = {}


def _serialise_streams_once(document: Any, pdf: Any) -> None:
    """A ``write_pdf`` finisher: each stream of ``pdf`` keeps its serialised (compressed)
    bytes. The file identifier PDF/A requires is a hash that pydyf computes by serialising
    every object a second time, compressing fonts and page contents again at level 9
    (about a tenth of a statement's render); the streams do not change after this point,
    so the bytes written are the same."""
    import pydyf

    for obj in pdf.objects:
        if isinstance(obj, pydyf.Stream):
            cls = type(obj)
            if cls not in _SERIALISED_ONCE:
                _SERIALISED_ONCE[cls] = type(f"SerialisedOnce{cls.__name__}", (cls,), {"data": property(_stream_data_once)})
            obj.__class__ = _SERIALISED_ONCE[cls]


def _stream_data_once(stream: Any) -> bytes:
    data = stream.__dict__.get("_serialised")
    if data is None:
        data = stream.__dict__["_serialised"] = super(type(stream), stream).data
    return data


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

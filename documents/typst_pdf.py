"""PDF rendering with Typst, the second document engine.

A Typst template gets its data only as JSON: the document's data is the input ``data``
(``#let data = json(bytes(sys.inputs.data))``), never text pasted into Typst source, so a
customer's name with markup or Typst syntax prints as typed. The compiler reads files only
under its root (the template assets: fonts, images, the terms page); a template that names
a package (``@preview/...``) or imports a path it builds at run time is refused before it
is compiled, so nothing is ever fetched from the network.

One compiler per thread, kept: it loads the fonts once, and Typst's own caches keep what
did not change between documents of the same template, so each document costs little more
than its layout (about 3 ms a page here). The source is given with every document (the
binding serves it as a file at the root, so paths in a template are relative to the root).
PDF/A-3b for the archive and tagged PDF/UA-1 are written together on request.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from .errors import RenderError, TemplateProblem, TemplateSyntaxProblem
from .pdf import PdfDocument

__all__ = ["BLOCKS", "Located", "TypstProblem", "TypstRenderError", "TypstRenderer", "blocks_source", "build_root",
           "check_typst_source", "page_count", "typst_references"]

ARCHIVE_STANDARDS = ("a-3b", "ua-1")  # PDF/A-3b for the archive, tagged PDF/UA-1 for screen readers
DATA_INPUT = "data"
# "@namespace/name:version" in an import or include: a package, fetched from the network.
_PACKAGE = re.compile(r'"@[A-Za-z0-9_-]+/')
# import/include not followed by a string literal: a path computed at run time.
_DYNAMIC = re.compile(r"(?<![\w.-])#?(?:import|include)\s+(?!\")(?=[^\s:])")
_DIAGNOSTIC = re.compile(r"^(error|warning): (.+?)\n\s*┌─ [^\n]*?:(\d+):(\d+)", re.M)


@dataclass(frozen=True)
class Located:
    severity: str
    line: int
    column: int
    message: str


class TypstProblem(TemplateSyntaxProblem):
    """A Typst template refused or that does not compile: every problem with its line and
    column (the first one is the error's own)."""

    def __init__(self, message: str, *, template: str = "", lineno: int | None = None,
                 column: int | None = None, problems: Sequence[Located] = ()) -> None:
        super().__init__(message, template=template, lineno=lineno)
        self.column = column
        self.problems = list(problems)

    def located(self, template: str, lineno: int | None) -> TemplateProblem:
        return type(self)(self.message, template=template, lineno=lineno, column=self.column, problems=self.problems)


class TypstRenderError(TypstProblem, RenderError):
    """A Typst template that failed with one document's data (a field it lacks, a wrong
    value): the document fails, not the template."""


def check_typst_source(source: str, *, template: str = "") -> list[Located]:
    """What this module refuses in a Typst source before compiling it: packages (the
    network) and imports or includes of a path built at run time."""
    found = []
    for pattern, message in ((_PACKAGE, "packages are not allowed: a template uses only its own files"),
                             (_DYNAMIC, "import and include take a file name in quotes")):
        for match in pattern.finditer(source):
            line = source.count("\n", 0, match.start()) + 1
            column = match.start() - (source.rfind("\n", 0, match.start()) + 1) + 1
            found.append(Located("error", line, column, message))
    return sorted(found, key=lambda p: (p.line, p.column))


class TypstRenderer:
    """Typst templates compiled with their data, reading files only under ``root``.

    ``font_paths``: folders of fonts besides the system's (``system_fonts``)."""

    def __init__(self, root: str | Path, *, font_paths: Sequence[str | Path] = (), system_fonts: bool = True,
                 package_cache: str | Path | None = None) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"Typst root {self.root} is not a folder")
        self.font_paths = [str(Path(p).resolve()) for p in font_paths]
        self.system_fonts = system_fonts
        # An empty folder of our own as the package cache: no package is ever found there,
        # and the source check refuses every package before the compiler could fetch one.
        self.package_cache = str(Path(package_cache).resolve()) if package_cache else str(self.root / ".no-packages")
        self._local = threading.local()
        self._checked: set[str] = set()  # sources that passed the refusals
        self._lock = threading.Lock()
        self.compilers_made = 0
        self._touched = 0.0  # when the root was last marked in use (its folder's time), for prune_roots

    def render(self, source: str, data: Any, *, template: str = "", archive: bool = False) -> PdfDocument:
        """The PDF of ``source`` with ``data`` (anything JSON can hold, given to the template
        as the input ``data``); ``archive`` gives PDF/A-3b with PDF/UA-1 tags."""
        import typst

        self._refuse(source, template)
        self._in_use()
        inputs = {DATA_INPUT: json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)}
        try:
            pdf = self._compiler().compile(input=source.encode("utf-8"), format="pdf", sys_inputs=inputs,
                                           pdf_standards=list(ARCHIVE_STANDARDS) if archive else [], pdf_tags=True)
        except typst.TypstError as exc:
            raise _problem(exc, template) from None
        return PdfDocument(data=pdf, pages=page_count(pdf))

    def check(self, source: str, sample: Any, *, template: str = "") -> list[Located]:
        """Every problem of ``source`` compiled with ``sample`` data: refusals, then the
        compiler's errors (or its warnings when it compiles), each at its line and column."""
        import typst

        refused = check_typst_source(source, template=template)
        if refused:
            return refused
        inputs = {DATA_INPUT: json.dumps(sample, ensure_ascii=False, default=str)}
        try:
            _, warnings = self._compiler().compile_with_warnings(input=source.encode("utf-8"), format="pdf", sys_inputs=inputs)
        except typst.TypstError as exc:
            return _located(exc) or [Located("error", 1, 1, exc.message)]
        return _warnings(warnings)

    def _in_use(self) -> None:
        """Mark the root as in use (its folder's modification time), at most every ``TOUCH_SECONDS``:
        ``prune_roots`` leaves alone what was used lately."""
        import os
        import time

        now = time.time()
        if now - self._touched > TOUCH_SECONDS:
            self._touched = now
            try:
                os.utime(self.root)
            except OSError:
                pass  # a read-only root is never pruned by us either

    def _refuse(self, source: str, template: str) -> None:
        if source in self._checked:
            return
        refused = check_typst_source(source, template=template)
        if refused:
            first = refused[0]
            raise TypstProblem(first.message, template=template, lineno=first.line, column=first.column, problems=refused)
        with self._lock:
            self._checked.add(source)

    def _compiler(self) -> Any:
        compiler = getattr(self._local, "compiler", None)
        if compiler is None:
            import typst

            Path(self.package_cache).mkdir(exist_ok=True)
            compiler = self._local.compiler = typst.Compiler(
                root=str(self.root), font_paths=self.font_paths, ignore_system_fonts=not self.system_fonts,
                package_path=self.package_cache, package_cache_path=self.package_cache)
            with self._lock:
                self.compilers_made += 1
        return compiler


_PAGE_TREE = re.compile(rb"/Type\s*/Pages\s*/Count\s+(\d+)")


def page_count(pdf: bytes) -> int:
    """Pages of a PDF Typst wrote: its page tree says so near the start (object 1), read in
    microseconds where parsing the file took milliseconds; pypdf where it does not."""
    counts = _PAGE_TREE.findall(pdf[:65536])
    if counts:
        return max(int(count) for count in counts)
    from pypdf import PdfReader

    return len(PdfReader(BytesIO(pdf)).pages)


def _located(exc: Any) -> list[Located]:
    """The problems of a Typst diagnostic (its columns count from 0; ours from 1)."""
    return [Located(severity, int(line), int(column) + 1, message)
            for severity, message, line, column in _DIAGNOSTIC.findall(getattr(exc, "diagnostic", "") or "")]


def _warnings(warnings: Sequence[Any]) -> list[Located]:
    found = []
    for warning in warnings or ():
        found.extend(_located(warning) or [Located("warning", 1, 1, str(getattr(warning, "message", warning)))])
    return found


def _problem(exc: Any, template: str) -> TypstRenderError:
    located = [p for p in _located(exc) if p.severity == "error"]
    first = located[0] if located else Located("error", 0, 0, str(getattr(exc, "message", exc)))
    return TypstRenderError(first.message, template=template, lineno=first.line or None, column=first.column or None,
                            problems=located)


_REFERENCE = re.compile(r'#?\b(?:import|include)\s+"([^"@][^"]*)"')
ROOT_SUFFIXES = (".typ", ".svg", ".png", ".jpg", ".jpeg", ".pdf")  # what a Typst root holds besides fonts
BLOCKS = "typst/blocks.typ"


def typst_references(source: str, name: str) -> list[str]:
    """The templates a Typst source imports or includes, as names under the root (a path
    starting with "/" is from the root, another from the source's own folder)."""
    import posixpath

    found = []
    for path in _REFERENCE.findall(source):
        joined = path.lstrip("/") if path.startswith("/") else posixpath.join(posixpath.dirname(name), path)
        found.append(posixpath.normpath(joined))
    return found


def blocks_source(blocks: Sequence[str]) -> str:
    """``typst/blocks.typ``: every content block a slot may show, by name."""
    lines = ["// Written by the engine: the content blocks of this root, by template name.", "#let blocks = ("]
    lines += [f'  {json.dumps(name)}: include {json.dumps("/" + name)},' for name in sorted(blocks)]
    return "\n".join([*lines, ")", ""])


TOUCH_SECONDS = 3600


def prune_roots(parent: str | Path, keep_days: float) -> int:
    """Delete the Typst roots under ``parent`` not used for ``keep_days`` (their folder's time:
    made, or marked by a render at most an hour ago), and folders a process left half made a
    day ago. A root pruned and needed again is made again from the run's pinned templates.
    Returns how many were deleted."""
    import shutil
    import time

    parent = Path(parent)
    if not parent.is_dir():
        return 0
    now, pruned = time.time(), 0
    for folder in parent.iterdir():
        if not folder.is_dir():
            continue
        limit = 86400.0 if folder.name.startswith(".") else keep_days * 86400.0
        try:
            idle = now - folder.stat().st_mtime
        except OSError:
            continue
        if idle > limit:
            shutil.rmtree(folder, ignore_errors=True)
            pruned += 1
    return pruned


def build_root(parent: str | Path, sources: Mapping[str, str | bytes], *, blocks: Sequence[str] = (),
               assets_dir: str | Path | None = None) -> Path:
    """A Typst root holding ``sources`` (templates and assets by name, as a run pinned
    them), the files of ``assets_dir``'s ``assets/`` folder that ``sources`` lack (images,
    from disk), and ``typst/blocks.typ`` listing ``blocks``. Named by its content's digest
    under ``parent``, made once (in a folder of its own, then renamed: processes that make
    the same root at once agree), then only read."""
    import hashlib
    import os
    import shutil

    files: dict[str, bytes] = {}
    disk = Path(assets_dir).resolve() / "assets" if assets_dir else None
    if disk is not None and disk.is_dir():
        for path in sorted(disk.rglob("*")):
            if path.is_file() and path.suffix.lower() in ROOT_SUFFIXES:
                files[path.relative_to(disk.parent).as_posix()] = path.read_bytes()
    for name, content in sources.items():
        if name.lower().endswith(ROOT_SUFFIXES):
            files[name] = content.encode("utf-8") if isinstance(content, str) else content
    if blocks:
        files[BLOCKS] = blocks_source(blocks).encode("utf-8")
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(files[name]).digest())
    parent = Path(parent).resolve()
    root = parent / digest.hexdigest()[:24]
    if root.is_dir():
        return root
    parent.mkdir(parents=True, exist_ok=True)
    making = parent / f".{root.name}.{os.getpid()}.{threading.get_ident()}"
    for name, content in files.items():
        target = (making / name).resolve()
        if not target.is_relative_to(making.resolve()):
            raise ValueError(f"a template name leaves the Typst root: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    try:
        making.rename(root)
    except OSError:  # another process made the same root first
        shutil.rmtree(making, ignore_errors=True)
    return root

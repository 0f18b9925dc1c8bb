"""The vendored front-end files in ccm/web/static/vendor agree with the npm lockfile.

scripts/build-assets.sh builds them once from assets/package-lock.json and writes
VERSIONS; the built files are committed, so these checks need no node.
"""

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
VENDOR = ROOT / "ccm" / "web" / "static" / "vendor"
LOCKFILE = ROOT / "assets" / "package-lock.json"

EXPECTED_FILES = {
    "htmx.min.js",
    "htmx.LICENSE",
    "chart.umd.js",
    "chart.LICENSE",
    "codemirror.js",
    "codemirror.LICENSE",
}


def versions_entries() -> dict[str, tuple[list[str], str]]:
    """VERSIONS as {file name: ([package@version, ...], sha256)}; '#' lines are comments."""
    entries = {}
    for line in (VENDOR / "VERSIONS").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, *packages, digest = line.split()
        assert packages, f"{name} names no package"
        entries[name] = (packages, digest)
    return entries


def lock_packages() -> dict:
    lock = json.loads(LOCKFILE.read_text(encoding="utf-8"))
    assert lock["lockfileVersion"] == 3
    return lock["packages"]


def locked_version(package: str) -> str:
    return lock_packages()[f"node_modules/{package}"]["version"]


def split_package(spec: str) -> tuple[str, str]:
    """'@scope/name@1.2.3' -> ('@scope/name', '1.2.3')."""
    name, _, version = spec.rpartition("@")
    assert name and version, spec
    return name, version


def assert_all_locked(packages: list[str]) -> None:
    for spec in packages:
        name, version = split_package(spec)
        assert version == locked_version(name), f"{spec} is not the locked version"


def test_htmx_is_the_locked_version():
    for name in ("htmx.min.js", "htmx.LICENSE"):
        packages, _ = versions_entries()[name]
        assert packages == [f"htmx.org@{locked_version('htmx.org')}"]


def test_chart_js_is_the_locked_version():
    for name in ("chart.umd.js", "chart.LICENSE"):
        packages, _ = versions_entries()[name]
        assert packages == [f"chart.js@{locked_version('chart.js')}"]
    assert locked_version("chart.js").startswith("4.")


def test_codemirror_bundle_lists_locked_versions_of_what_it_bundles():
    entries = versions_entries()
    packages, _ = entries["codemirror.js"]
    assert entries["codemirror.LICENSE"][0] == packages
    assert_all_locked(packages)
    names = {split_package(spec)[0] for spec in packages}
    assert {
        "codemirror",
        "@codemirror/view",
        "@codemirror/state",
        "@codemirror/lint",
        "@codemirror/lang-html",
        "@codemirror/lang-css",
        "@codemirror/language",  # StreamLanguage, for assets/typst-mode.js
        "@lezer/highlight",
        "esbuild",
    } <= names
    # esbuild builds the bundle; it is pinned as a devDependency, not shipped.
    assert lock_packages()["node_modules/esbuild"].get("dev") is True
    # Every bundled package (all but esbuild) has its license in codemirror.LICENSE.
    license_text = (VENDOR / "codemirror.LICENSE").read_text(encoding="utf-8")
    for spec in packages:
        if not spec.startswith("esbuild@"):
            assert f"== {spec} " in license_text, f"{spec} license missing"


def test_codemirror_bundle_defines_ccmeditor_without_eval():
    text = (VENDOR / "codemirror.js").read_text(encoding="utf-8")
    assert "CCMEditor" in text
    assert not re.search(r"\beval\(", text)
    assert not re.search(r"new Function\(", text)


def test_every_vendored_file_matches_its_recorded_sha256():
    entries = versions_entries()
    assert set(entries) == EXPECTED_FILES
    on_disk = {p.name for p in VENDOR.iterdir() if p.name != "VERSIONS"}
    assert on_disk == EXPECTED_FILES, "a vendored file is missing from VERSIONS or disk"
    for name, (_, digest) in entries.items():
        data = (VENDOR / name).read_bytes()
        assert data, f"{name} is empty"
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs from VERSIONS"

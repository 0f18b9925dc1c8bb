"""The vendored front-end files in ccm/web/static/vendor agree with the npm lockfile.

scripts/build-assets.sh builds them once from assets/package-lock.json and writes
VERSIONS; the built files are committed, so these checks need no node.
"""

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
VENDOR = ROOT / "ccm" / "web" / "static" / "vendor"
LOCKFILE = ROOT / "assets" / "package-lock.json"


def versions_entries() -> dict[str, tuple[str, str]]:
    """VERSIONS as {file name: (package@version, sha256)}; '#' lines are comments."""
    entries = {}
    for line in (VENDOR / "VERSIONS").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, package, digest = line.split()
        entries[name] = (package, digest)
    return entries


def locked_version(package: str) -> str:
    lock = json.loads(LOCKFILE.read_text(encoding="utf-8"))
    assert lock["lockfileVersion"] == 3
    return lock["packages"][f"node_modules/{package}"]["version"]


def test_htmx_is_the_locked_version():
    package, _ = versions_entries()["htmx.min.js"]
    assert package == f"htmx.org@{locked_version('htmx.org')}"


def test_every_vendored_file_matches_its_recorded_sha256():
    entries = versions_entries()
    assert "htmx.min.js" in entries
    for name, (_, digest) in entries.items():
        data = (VENDOR / name).read_bytes()
        assert data, f"{name} is empty"
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs from VERSIONS"

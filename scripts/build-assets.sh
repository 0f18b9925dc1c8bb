#!/bin/sh
# Builds the staff console's vendored front-end files (htmx) from the npm
# registry, pinned by assets/package.json and assets/package-lock.json, into
# ccm/web/static/vendor/, and records what was copied in VERSIONS there.
# Only run it to change or refresh a vendored package, then commit the result:
# the built files are committed, so running or testing the app needs none of
# this (no node, no npm, no network).
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
vendor="$root/ccm/web/static/vendor"

cd "$root/assets"
npm ci --no-audit --no-fund

pkg=htmx.org
version=$(node -p "require('./node_modules/$pkg/package.json').version")

mkdir -p "$vendor"
cp "node_modules/$pkg/dist/htmx.min.js" "$vendor/htmx.min.js"
cp "node_modules/$pkg/LICENSE" "$vendor/htmx.LICENSE"

{
    echo "# Written by scripts/build-assets.sh: file, package@version, sha256."
    for f in htmx.min.js htmx.LICENSE; do
        sum=$(sha256sum "$vendor/$f" | cut -d' ' -f1)
        echo "$f $pkg@$version $sum"
    done
} > "$vendor/VERSIONS"

echo "vendored $pkg@$version into $vendor"

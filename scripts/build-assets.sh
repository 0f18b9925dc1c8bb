#!/bin/sh
# Builds the staff console's vendored front-end files from the npm registry,
# pinned by assets/package.json and assets/package-lock.json, into
# ccm/web/static/vendor/, and records what was copied in VERSIONS there:
#   - htmx.min.js: htmx.org's own build, copied;
#   - chart.umd.js: Chart.js's own UMD build, copied;
#   - codemirror.js: CodeMirror 6 bundled by esbuild (a devDependency, pinned
#     too) from assets/codemirror-entry.js (and typst-mode.js, its own Typst
#     highlighter) into one minified IIFE that defines
#     window.CCMEditor; codemirror.LICENSE holds the license of every package
#     the bundle contains.
# Only run it to change or refresh a vendored package, then commit the result:
# the built files are committed, so running or testing the app needs none of
# this (no node, no npm, no network).
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
vendor="$root/ccm/web/static/vendor"

cd "$root/assets"
npm ci --no-audit --no-fund

version_of() {
    node -p "require('./node_modules/$1/package.json').version"
}

mkdir -p "$vendor"

# htmx
htmx="htmx.org@$(version_of htmx.org)"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$vendor/htmx.LICENSE"

# Chart.js (its chart.umd.js is already minified)
chart="chart.js@$(version_of chart.js)"
cp node_modules/chart.js/dist/chart.umd.js "$vendor/chart.umd.js"
cp node_modules/chart.js/LICENSE.md "$vendor/chart.LICENSE"

# CodeMirror 6
meta=node_modules/.codemirror-meta.json
node_modules/.bin/esbuild codemirror-entry.js --bundle --format=iife \
    --target=es2019 --minify --metafile="$meta" --log-level=warning \
    --outfile="$vendor/codemirror.js"
# The packages the bundle contains (from esbuild's metafile), as
# "pkg@version ...", and their licenses concatenated into codemirror.LICENSE.
codemirror=$(node - "$meta" "$vendor/codemirror.LICENSE" <<'JS'
const fs = require("fs");
const path = require("path");
const [meta, licenseOut] = process.argv.slice(2);
const names = new Set();
for (const input of Object.keys(JSON.parse(fs.readFileSync(meta, "utf8")).inputs)) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(input);
  if (m) names.add(m[1]);
}
const sorted = [...names].sort();
const parts = [];
for (const name of sorted) {
  const dir = path.join("node_modules", name);
  const version = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version;
  const file = fs.readdirSync(dir).filter((f) => /^licen[sc]e(\.(md|txt))?$/i.test(f)).sort()[0];
  if (!file) throw new Error(`no license file in ${dir}`);
  const text = fs.readFileSync(path.join(dir, file), "utf8").trimEnd();
  parts.push(`== ${name}@${version} (${file}) ==\n\n${text}\n`);
}
fs.writeFileSync(licenseOut,
  "codemirror.js bundles the following packages, each under its own license below.\n\n" +
  parts.join("\n"));
console.log(sorted.map((name) => `${name}@${
  JSON.parse(fs.readFileSync(path.join("node_modules", name, "package.json"), "utf8")).version
}`).join(" "));
JS
)
codemirror="$codemirror esbuild@$(version_of esbuild)"

{
    echo "# Written by scripts/build-assets.sh: file, package@version (one or more), sha256."
    for entry in \
        "htmx.min.js|$htmx" "htmx.LICENSE|$htmx" \
        "chart.umd.js|$chart" "chart.LICENSE|$chart" \
        "codemirror.js|$codemirror" "codemirror.LICENSE|$codemirror"
    do
        f=${entry%%|*}
        sum=$(sha256sum "$vendor/$f" | cut -d' ' -f1)
        echo "$f ${entry#*|} $sum"
    done
} > "$vendor/VERSIONS"

echo "vendored $htmx, $chart and $codemirror into $vendor"

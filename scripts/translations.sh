#!/bin/sh
# The web pages' catalogues (ccm/web/translations): extract the strings marked with _() from
# the views and pages (and the permissions' and roles' descriptions), merge them into each language's messages.po, and compile messages.mo.
# Run after changing a page's text; commit the .pot, the .po files and the .mo files.
#   sh scripts/translations.sh            extract, update, compile
#   sh scripts/translations.sh compile    compile only (after translating)
set -eu
cd "$(dirname "$0")/.."
BABEL="${PYBABEL:-.venv/bin/pybabel}"
OUT=ccm/web/translations
if [ "${1:-}" != compile ]; then
    "$BABEL" -q extract -F ccm/web/babel.cfg --no-location --sort-output --omit-header -o "$OUT/messages.pot" ccm/web ccm/staff/permissions.py
    "$BABEL" -q update -i "$OUT/messages.pot" -d "$OUT" --no-fuzzy-matching --ignore-obsolete
fi
"$BABEL" -q compile -d "$OUT" --statistics

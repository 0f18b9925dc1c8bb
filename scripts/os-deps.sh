#!/bin/sh
# Install what the OS must provide for rendering, where we can (Debian/Ubuntu with apt as
# root or with sudo); otherwise say exactly what to install. Safe to run again: it only
# installs what is missing.
#   Pango (WeasyPrint's text layout)        Debian: libpango-1.0-0 libpangoft2-1.0-0
#   HarfBuzz subsetting (fast font subsets) Debian: libharfbuzz-subset0
#   A CJK font (Chinese names, addresses)   Debian: fonts-noto-cjk
#   Arabic and Hebrew (DejaVu Sans)         Debian: fonts-dejavu-core
#   An emoji font (emoji in names, lines)   Debian: fonts-noto-color-emoji
#   pdftotext/pdffonts (tests read PDFs)    Debian: poppler-utils
#   wrk (make bench: the open/click load)  Debian: wrk
# Usage: os-deps.sh [venv|demo|test|bench]; for "test", missing PDF tools are an error.
set -u
purpose="${1:-demo}"
missing=""
python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$missing python3-venv"
command -v fc-list >/dev/null 2>&1 || missing="$missing fontconfig"
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib 'libpango-1.0.so'     || missing="$missing libpango-1.0-0 libpangoft2-1.0-0"
have_lib 'libharfbuzz-subset.so' || missing="$missing libharfbuzz-subset0"
fc-list ':lang=zh' 2>/dev/null | grep -qi 'cjk' || missing="$missing fonts-noto-cjk"
{ fc-list ':lang=ar' family | grep -q 'DejaVu Sans' && fc-list ':lang=he' family | grep -q 'DejaVu Sans'; } 2>/dev/null || missing="$missing fonts-dejavu-core"
fc-list 2>/dev/null | grep -qi 'emoji' || missing="$missing fonts-noto-color-emoji"
command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"
# For `make bench` (the peer the PDF benchmark compares with) and `make test` (the web pages
# in a real browser; those tests skip where it is missing): Debian's chromium.
case "$purpose" in bench|test) command -v chromium >/dev/null 2>&1 || missing="$missing chromium";; esac
# For `make bench`: wrk drives the load test of the open and click endpoints on loopback.
case "$purpose" in bench) command -v wrk >/dev/null 2>&1 || missing="$missing wrk";; esac
[ -z "$missing" ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
    if [ "$SUDO" != "none" ]; then
        echo "os-deps: installing$missing"
        $SUDO apt-get update -qq >/dev/null && \
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null && exit 0
        echo "os-deps: apt-get failed" >&2
    fi
fi
cat >&2 <<MSG
os-deps: cannot install these OS packages here; please install them (names are Debian's):
   $missing
  - without Pango, WeasyPrint cannot render PDFs at all;
  - without libharfbuzz-subset0, fonts subset 1.75x (Latin) to 17x (Chinese) slower;
  - without a CJK font (fonts-noto-cjk), Chinese text prints as empty boxes;
  - without DejaVu Sans (fonts-dejavu-core), Arabic and Hebrew documents print as empty boxes;
  - without an emoji font (fonts-noto-color-emoji), emoji print as empty boxes;
  - without poppler-utils, the tests that read PDFs back cannot run;
  - without wrk, make bench skips the load test of the open and click endpoints;
  - without python3-venv, the project's virtual environment cannot be made.
MSG
case "$missing" in *pango*|*python3-venv*) exit 1;; esac
case "$purpose:$missing" in test:*poppler*) exit 1;; esac
exit 0

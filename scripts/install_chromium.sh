#!/usr/bin/env bash
# Debian's chromium for the browser test (tests/test_browser.py). Playwright drives this
# executable; it never downloads a browser of its own. Needs root (apt-get) the first time.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "no $CHROMIUM: install Debian's chromium (sudo apt-get install chromium), or set CHROMIUM to a Chromium executable" >&2
  exit 1
fi
echo "== Installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version

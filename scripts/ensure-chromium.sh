#!/usr/bin/env bash
# Before `npm test`: the browser tests (test/browser/) drive Debian's Chromium at /usr/bin/chromium (playwright's
# own browser download needs the internet). On a fresh Debian machine, as root, this installs it; otherwise it
# says what to run, and the browser tests fail with the same advice.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium for the browser tests (apt-get install chromium)…"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  "$CHROMIUM" --version
else
  echo "Chromium is not installed at $CHROMIUM; the browser tests need it: sudo apt-get install -y chromium" >&2
fi

#!/usr/bin/env bash
# Make sure a headless Chromium (and a font for its text) is here for the coverage-picture test
# (tests/cli/test_status_html.py) and `make coverage-png`.
#
#   scripts/chromium.sh    install Debian's `chromium` and `fonts-dejavu-core` packages when missing
#                          (as root, with apt-get, like scripts/timescaledb.sh); print the browser's path
#
# Both present: returns at once (`command -v` and `dpkg -s`, well under a second). Not root, or no
# apt-get: prints a note on stderr and exits 0 — the browser test then skips and says why.
set -euo pipefail

say() { printf 'chromium: %s\n' "$*" >&2; }

find_browser() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true; }

missing=()
[ -n "$(find_browser)" ] || missing+=(chromium)
# a minimal image may have no font at all: Chromium would then draw no text
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s fonts-dejavu-core >/dev/null 2>&1 \
   && ! { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list 2>/dev/null | head -1)" ]; }; then
  missing+=(fonts-dejavu-core)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "${missing[*]} not installed, and installing needs root: apt-get install ${missing[*]} (the browser test skips without chromium)"
    exit 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "${missing[*]} not installed and no apt-get here: install them yourself (the browser test skips without chromium)"
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  say "installing ${missing[*]} from apt"
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq  # a fresh machine has no package lists yet
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [ -n "$(find_browser)" ] || { say "error: apt-get installed chromium but no chromium is on PATH"; exit 1; }
fi
find_browser

#!/usr/bin/env bash
# Make sure a headless Chromium is on PATH for the coverage-picture test and `make coverage-png`.
#
#   scripts/chromium.sh          install Debian's `chromium` package when it is missing (as root, with
#                                apt-get); print the browser's path
#
# Already installed: returns at once (one `command -v`). Not root, or no apt-get: prints a note on
# stderr and exits 0 — the browser test then skips and says why.
set -euo pipefail

say() { printf 'chromium: %s\n' "$*" >&2; }

find_browser() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true; }

b=$(find_browser)
if [ -z "$b" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "not installed, and installing it needs root: apt-get install chromium (the browser test skips)"
    exit 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "not installed and no apt-get here: install Chromium yourself (the browser test skips)"
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  say "installing chromium from apt"
  if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  b=$(find_browser)
  [ -n "$b" ] || { say "error: apt-get installed chromium but no chromium is on PATH"; exit 1; }
fi
printf '%s\n' "$b"

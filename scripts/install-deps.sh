#!/usr/bin/env bash
# Installs the real peers and tools the test suite talks to (Debian packages).
# Idempotent and quiet when everything is already there; needs root (or sudo) only
# when something is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have sipp        || need+=(sip-tester)
have baresip     || need+=(baresip)
have espeak-ng   || need+=(espeak-ng)
have sox         || need+=(sox libsox-fmt-all)
have kamailio    || need+=(kamailio)
have sqlite3     || need+=(sqlite3)
have chromium    || need+=(chromium)
have chromedriver || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers the tests talk to
# (SIPp, baresip, espeak-ng, sox, Kamailio, Chromium), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cargo test --workspace --locked "$@"

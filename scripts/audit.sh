#!/usr/bin/env bash
# Supply-chain check of the workspace with cargo-deny (policy in deny.toml):
# licences, banned/duplicate crates, sources, and RustSec advisories when reachable.
#   scripts/audit.sh            # exits non-zero on a violation
# The advisory database is a git clone from GitHub. Where GitHub is unreachable (the build
# machines of this project: package registries only) the advisories check cannot run; the
# script then runs the other checks offline and says so on stderr, so a green run never
# looks like an advisory-clean run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null; then
  # A debug build: about 2 min on 2 cores instead of 10 for an optimised one, and the checks
  # of this workspace still take seconds, so CI can afford it on every run.
  echo "audit.sh: installing cargo-deny (cargo install --debug, about 2 min on 2 cores)" >&2
  cargo install cargo-deny --locked --debug --version ^0.20
fi
# `--offline` below reads the whole lock file's metadata, including crates only other platforms
# build (Windows console crates, ...) that a Linux build never downloads: fetch them first from
# crates.io, which the build machines reach.
cargo fetch --locked --quiet
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
  exec cargo deny --offline check
fi
echo "audit.sh: NOTICE: the RustSec advisory database could not be fetched (no access to github.com);" >&2
echo "audit.sh: NOTICE: advisories NOT checked; checking licenses, bans and sources offline" >&2
exec cargo deny --offline check licenses bans sources

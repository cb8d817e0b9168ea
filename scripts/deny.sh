#!/usr/bin/env bash
# Checks the dependency graph with cargo-deny (deny.toml): licences, banned and duplicate
# crates, sources. RustSec's advisory database is fetched from GitHub; where GitHub cannot
# be reached (an air-gapped CI machine) the advisories are skipped with a notice rather
# than the whole check failing, and the other checks still hold.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
if ! command -v cargo-deny >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-deny" ]; then
    echo "== installing cargo-deny $DENY_VERSION"
    # A debug build compiles in about a minute instead of several; checking a graph of a
    # few hundred crates takes it seconds either way.
    cargo install cargo-deny --locked --version "$DENY_VERSION" --debug --quiet \
        --target-dir /var/tmp/cargo-deny-target
fi
export PATH="$HOME/.cargo/bin:$PATH"

cargo deny --all-features check licenses bans sources
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
    cargo deny --all-features check advisories
else
    echo "cargo deny: RustSec's advisory database cannot be fetched here; advisories not checked" >&2
fi

#!/usr/bin/env bash
# Smoke run of every fuzz target (docs/fuzzing.md): builds them once, then runs each for
# SECONDS (default 20) from its corpus and seeds. Any crash, panic, leak, timeout or
# out-of-memory fails the run; the failing input is left in fuzz/artifacts/<target>/.
#
# Runs on stable Rust without a sanitizer (`-s none`): the targets are safe Rust over
# crates that forbid `unsafe`, so panics, overflows, OOM and timeouts are still caught.
# The release budget with AddressSanitizer is in docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
TARGET_DIR="${ISPVM_FUZZ_TARGET_DIR:-/var/tmp/ispvm-fuzz-target}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2 -q
fi

echo "== cargo fuzz build"
cargo fuzz build -s none --target-dir "$TARGET_DIR"

for target in $(cargo fuzz list); do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    if [ -d "fuzz/seeds/$target" ]; then
        # Binary seeds are kept as hex text (`*.hex`); they go into the working corpus.
        for hex in "fuzz/seeds/$target"/*.hex; do
            [ -e "$hex" ] || continue
            python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(open(sys.argv[1]).read()))' \
                "$hex" > "$corpus/seed-$(basename "$hex" .hex)"
        done
        dirs+=("fuzz/seeds/$target")
    fi
    echo "== fuzz $target (${SECONDS_PER_TARGET}s)"
    log="$(mktemp)"
    if ! cargo fuzz run -s none --target-dir "$TARGET_DIR" "$target" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
    rm -f "$log"
done

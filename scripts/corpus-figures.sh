#!/usr/bin/env bash
# Runs the scenario corpus through `ispvm scenario run --json` and prints the figures
# docs/rca.md reports: top-1 root cause right, detection latency (median, p95, in
# scenario seconds), suppression ratio and false "device down" count.
#
#   scripts/corpus-figures.sh [SPEED] [PROCESSES]     (default: speed 1, 6 processes)
#
# At speed 1 (production intervals) the corpus takes about five minutes per file; the
# files run in PROCESSES `ispvm` processes at once (a scenario mostly waits).
set -euo pipefail
cd "$(dirname "$0")/.."
SPEED="${1:-1}"
PROCS="${2:-6}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build -q -p ispvm-cli
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
mapfile -t FILES < <(ls simulations/scenarios/*.toml)
for ((p = 0; p < PROCS; p++)); do
    group=()
    for ((i = p; i < ${#FILES[@]}; i += PROCS)); do group+=("${FILES[$i]}"); done
    [ ${#group[@]} -gt 0 ] || continue
    RUST_LOG=error "$TARGET/debug/ispvm" scenario run --json --speed "$SPEED" "${group[@]}" \
        >"$OUT/$p.json" || true &
done
wait
python3 - "$SPEED" "$OUT"/*.json <<'PY'
import json, sys
speed, paths = sys.argv[1], sys.argv[2:]
expects = []
for p in paths:
    for f in json.load(open(p))["files"]:
        if f.get("error"):
            print(f"{f['file']}: ERROR {f['error']}")
        for e in f["expectations"]:
            expects.append((f["file"].split("/")[-1], e))
judged = [(n, e) for n, e in expects if e["expects_incident"]]
right = [e for _, e in judged if e["cause_right"]]
lat = sorted(e["latency_s"] for _, e in judged if e["latency_s"] is not None)
def pct(q):
    return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else float("nan")
sup = sum(e["suppressed_alerts"] for _, e in expects)
unsup = sum(e["unsuppressed_alerts"] for _, e in expects)
down = sum(1 for _, e in expects for r in e["reasons"] if r.endswith("was reported down"))
print(f"speed {speed}: {len(expects)} expectations, {sum(e['pass'] for _, e in expects)} pass")
print(f"top-1 root cause right: {len(right)}/{len(judged)} faults ({100 * len(right) / max(1, len(judged)):.0f} %)")
print(f"detection latency: median {pct(0.5):.1f} s, p95 {pct(0.95):.1f} s (scenario seconds)")
print(f"suppression ratio: {sup}/{sup + unsup} child alerts suppressed ({100 * sup / max(1, sup + unsup):.1f} %)")
print(f"false device down: {down}")
for n, e in expects:
    if not e["pass"]:
        print(f"  FAIL {n}: {e['name']}: {'; '.join(e['reasons'])}")
PY

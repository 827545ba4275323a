#!/usr/bin/env bash
# The deadlock detector's cost: runs `gosync-bench detect` in the plain build and in the build
# with the detector, then prints the detector-on figures against the plain ones.
# tracing-mutex and parking_lot are the same code in both runs: their ratios show the noise.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/gosync-bench
mkdir -p "$out"
cargo run --release -p gosync-bench -- detect "$@" --json "$out/detect-off.json" --out-dir "$out/detect-off"
cargo run --release -p gosync-bench --features detect -- detect "$@" --json "$out/detect-on.json" \
  --out-dir "$out/detect-on" --compare "$out/detect-off.json"

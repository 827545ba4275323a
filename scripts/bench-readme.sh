#!/usr/bin/env bash
# Regenerates the README's results section from a fresh benchmark run.
#
#   scripts/bench-readme.sh            # quick run of every family (with Go when `go` is on PATH)
#   scripts/bench-readme.sh --full     # the full run (~20 minutes)
#   scripts/bench-readme.sh --from target/gosync-bench/results.json   # no new run
#
# The table between the `bench:begin` and `bench:end` markers in README.md is replaced by the
# run's summary (date, machine and the exact command line included).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/gosync-bench
json="$out/results.json"
mode=(--quick)
from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --full) mode=() ;;
    --from) from="$2"; shift ;;
    *) echo "usage: $0 [--full] [--from results.json]" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$from" ]; then
  go_flag=()
  command -v go >/dev/null 2>&1 && go_flag=(--go)
  cargo run --release -p gosync-bench -- "${mode[@]}" "${go_flag[@]}"
  from="$json"
fi

table=$(cargo run --release -q -p gosync-bench -- --report-only "$from" --markdown --out-dir "$out" | grep -v '^report:')
python3 - "$table" <<'PY'
import sys
table = sys.argv[1].strip()
text = open("README.md", encoding="utf-8").read()
begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
if begin not in text or end not in text:
    sys.exit("README.md has no bench:begin / bench:end markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open("README.md", "w", encoding="utf-8").write(head + begin + "\n" + table + "\n" + end + tail)
print("README.md results section updated")
PY

#!/usr/bin/env bash
# Regenerates docs/benchmarks.md and the README's results block (between the bench:begin and
# bench:end markers) from a real benchmark run. Nothing in either is edited by hand.
#
#   scripts/bench-readme.sh                  quick run of every family, with Go when `go` is on PATH
#   scripts/bench-readme.sh --per-family     one quick run per family, merged into one report
#                                            (when the machine is not quiet for a whole run)
#   scripts/bench-readme.sh --full           full runs (7 rounds of ~100 ms instead of 3 of ~25 ms)
#   scripts/bench-readme.sh --from A.json [B.json ...]
#                                            no new run: regenerate from saved results (merged)
#   scripts/bench-readme.sh --no-build ...   use target/release/gosync-bench as it is
#
# Environment:
#   FAMILIES="mutex cond"  only these families (default: every family, `gosync-bench --list`)
#   BENCH_PREFIX="cmd"     start each measuring run with this command, e.g. a lock that keeps
#                          other work off the machine meanwhile (the build runs before, without it)
#
# The run's results stay in target/gosync-bench/ (results.json and report.html; per family in
# target/gosync-bench/FAMILY/ with --per-family; the merged report in target/gosync-bench/docs/).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=(--quick)
per_family=0
build=1
from=()
while [ $# -gt 0 ]; do
  case "$1" in
    --full) mode=() ;;
    --per-family) per_family=1 ;;
    --no-build) build=0 ;;
    --from)
      shift
      while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do from+=("$1"); shift; done
      [ ${#from[@]} -gt 0 ] || { echo "--from needs at least one results file" >&2; exit 2; }
      continue
      ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--full] [--per-family] [--no-build] [--from results.json ...]" >&2; exit 2 ;;
  esac
  shift
done

grep -q '<!-- bench:begin -->' README.md && grep -q '<!-- bench:end -->' README.md || {
  echo "README.md has no <!-- bench:begin --> / <!-- bench:end --> block to fill" >&2
  exit 2
}

bin=target/release/gosync-bench
if [ "$build" = 1 ]; then
  echo "== building gosync-bench (release)"
  cargo build --release -q -p gosync-bench
fi
[ -x "$bin" ] || { echo "$bin is missing: build it (cargo build --release -p gosync-bench)" >&2; exit 2; }
out=target/gosync-bench
# BENCH_PREFIX is split on spaces on purpose (a command and its arguments).
# shellcheck disable=SC2206
prefix=(${BENCH_PREFIX:-})

if [ ${#from[@]} -eq 0 ]; then
  go_flag=()
  if command -v go >/dev/null 2>&1; then go_flag=(--go); else echo "note: no \`go\` on PATH; the Go column stays empty"; fi
  read -r -a families <<<"${FAMILIES:-}"
  if [ "$per_family" = 1 ]; then
    [ ${#families[@]} -gt 0 ] || mapfile -t families < <("$bin" --list | awk '{print $1}')
    for f in "${families[@]}"; do
      rm -f "$out/$f/results.json"
      echo "== measuring $f"
      "${prefix[@]}" "$bin" "$f" "${mode[@]}" "${go_flag[@]}" --out-dir "$out/$f"
      [ -s "$out/$f/results.json" ] || { echo "no results from family $f" >&2; exit 1; }
      from+=("$out/$f/results.json")
    done
  else
    rm -f "$out/results.json"
    echo "== measuring ${families[*]:-every family}"
    "${prefix[@]}" "$bin" "${families[@]}" "${mode[@]}" "${go_flag[@]}" --out-dir "$out"
    [ -s "$out/results.json" ] || { echo "the run wrote no $out/results.json" >&2; exit 1; }
    from=("$out/results.json")
  fi
fi

echo "== writing docs/benchmarks.md and README.md from ${from[*]}"
"$bin" --report-only "${from[@]}" --write-docs . --out-dir "$out/docs"

#!/usr/bin/env bash
# Shows the hot loops of Go's sync benchmarks and of gosync-bench's mirrors of them, so that a
# change to either can be checked instruction by instruction (see gosync-bench/src/gowork.rs).
#
#   scripts/bench-loops.sh            build what is needed, then print both sides
#
# Go side: `go tool objdump` of the benchmark closures in `go test -c sync` and in
# gosync-bench/go/mirror, keeping the lines of the benchmark's own source file (the lock calls
# inlined from mutex.go and friends are left out). Rust side: every loop of at most 12
# instructions in target/release/gosync-bench that DWARF places in gosync_bench::gowork, with
# the function it was inlined into. Needs go, objdump, addr2line (binutils) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local
go test -c -o "$tmp/sync.test" sync
(cd gosync-bench/go/mirror && go test -c -o "$tmp/mirror.test" .)
cargo build --release -q -p gosync-bench

echo "=== Go 1.19 (go tool objdump; loops of at most 12 instructions)"
for spec in \
  "sync.test sync_test\.benchmarkMutex\.func1$" \
  "sync.test sync_test\.BenchmarkMutexSpin\.func1$" \
  "sync.test sync_test\.benchmarkRWMutex\.func1$" \
  "sync.test sync_test\.benchmarkWaitGroupAddDone\.func1$" \
  "mirror.test WorkOnly.*func1$"; do
  read -r bin sym <<<"$spec"
  go tool objdump -s "$sym" "$tmp/$bin" | python3 -c '
import re, sys
fn, body = None, []
for line in sys.stdin:
    if line.startswith("TEXT "):
        fn, body = line.split()[1], []
        continue
    f = [x.strip() for x in line.split("\t") if x.strip()]
    if len(f) < 4 or not f[1].startswith("0x"):
        continue
    src, addr, text = f[0], int(f[1], 16), re.sub(r"\s+", " ", " ".join(f[3:]))
    body.append((addr, src, text))
    j = re.match(r"^J\w+ 0x([0-9a-f]+)$", text)
    if j and int(j.group(1), 16) < addr:
        start = int(j.group(1), 16)
        loop = [(s, t) for a, s, t in body if start <= a <= addr]
        if 0 < len(loop) <= 12:
            print(f"--- Go: {fn}")
            loop[-1] = (loop[-1][0], re.sub(r" 0x[0-9a-f]+$", " (back)", loop[-1][1]))
            for s, t in loop:
                print(f"    {t:<34} {s}")
'
done

echo
echo "=== Rust (objdump -d target/release/gosync-bench; loops inlined from gosync_bench::gowork)"
objdump -d --no-show-raw-insn target/release/gosync-bench >"$tmp/rust.s"
python3 - "$tmp/rust.s" target/release/gosync-bench <<'PY'
import re, subprocess, sys
listing, binary = sys.argv[1], sys.argv[2]
insn = re.compile(r"^\s+([0-9a-f]+):\s+(.*)$")
loops, body = [], []
for line in open(listing):
    if re.match(r"^[0-9a-f]+ <.*>:$", line):
        body = []
        continue
    m = insn.match(line)
    if not m:
        continue
    addr, text = int(m.group(1), 16), re.sub(r"\s+", " ", m.group(2).split("#")[0]).strip()
    body.append((addr, text))
    j = re.match(r"^j\w+ ([0-9a-f]+) ", text)
    if j and int(j.group(1), 16) < addr:
        start = int(j.group(1), 16)
        loop = [t for a, t in body if start <= a <= addr]
        if 0 < len(loop) <= 12 and any(a == start for a, _ in body):
            loop = [re.sub(r" <.*", "", t) for t in loop]
            loop[-1] = re.sub(r" [0-9a-f]+$", " (back)", loop[-1])
            loops.append((start, loop))
if not loops:
    sys.exit("no loops found")
# addr2line prints, for one address, a (function, file:line) pair per inlining level,
# innermost first.
seen = set()
for start, loop in loops:
    chain = subprocess.run(["addr2line", "-f", "-i", "-C", "-e", binary, hex(start)],
                           capture_output=True, text=True).stdout.split("\n")[0::2]
    chain = [c for c in chain if c]
    if not any("gosync_bench::gowork::" in c for c in chain):
        continue
    caller = next((c for c in chain if "families::" in c), chain[-1] if chain else "?")
    key = (caller, tuple(loop))
    if key in seen:
        continue
    seen.add(key)
    print(f"--- Rust: {chain[0]} in {caller}")
    for t in loop:
        print("    " + t)
PY

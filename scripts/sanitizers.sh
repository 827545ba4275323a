#!/usr/bin/env bash
# Runs gosync's tests under ThreadSanitizer (the analogue of `go test -race`) and
# AddressSanitizer (use-after-free, out-of-bounds, double free, leaks: it sees a freed node
# read by a lock-free reader directly, whatever the memory-ordering model).
#
#   scripts/sanitizers.sh                        # TSan, then ASan, over every test target
#   scripts/sanitizers.sh thread                 # TSan only
#   scripts/sanitizers.sh address --test go_map  # ASan, selected targets (any `cargo test`
#                                                # arguments after the sanitizer name)
#
# Needs the nightly toolchain with rust-src: the standard library is rebuilt with the
# sanitizer (-Zbuild-std) so that its own synchronisation and allocations are visible and do
# not cause false reports:
#   rustup toolchain install nightly && rustup component add rust-src --toolchain nightly
#
# Any report fails the run (halt_on_error), so a green run means "no reports". Each sanitizer
# builds into its own target dir (target/tsan, target/asan; GOSYNC_SANITIZER_DIR replaces
# `target`). Doc-tests are not run (rustdoc does not pass the sanitizer flags through
# build-std).
set -euo pipefail
cd "$(dirname "$0")/.."

which=both
case "${1:-}" in
  thread | address | both)
    which="$1"
    shift
    ;;
esac
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(--tests)
fi

target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
base_rustflags="${RUSTFLAGS:-}"
# Timing-based tests get slower under a sanitizer; keep the harness from oversubscribing.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

run() {
  local san="$1" dir="$2"
  shift 2
  printf '\n--- %s sanitizer: cargo test -p gosync %s\n' "$san" "${args[*]}"
  RUSTFLAGS="-Zsanitizer=$san -Cunsafe-allow-abi-mismatch=sanitizer $base_rustflags" \
    cargo +nightly test -Zbuild-std --target "$target" --target-dir "$dir" \
    -p gosync "${args[@]}"
}

if [ "$which" = thread ] || [ "$which" = both ]; then
  # The suppressions are narrow and each is explained in the file.
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}" \
    run thread "${GOSYNC_SANITIZER_DIR:-target}/tsan"
fi
if [ "$which" = address ] || [ "$which" = both ]; then
  ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 detect_stack_use_after_return=1 ${ASAN_OPTIONS:-}" \
    run address "${GOSYNC_SANITIZER_DIR:-target}/asan"
fi

#!/usr/bin/env bash
# Runs gosync's tests under ThreadSanitizer (the analogue of `go test -race`).
#
#   scripts/tsan.sh                          # every test target of the gosync crate
#   scripts/tsan.sh --test go_mutex          # selected targets (any `cargo test` arguments)
#
# Needs the nightly toolchain with rust-src (the standard library is rebuilt with the
# sanitizer so that its own synchronisation is visible to TSan and does not cause false
# reports):
#   rustup toolchain install nightly && rustup component add rust-src --toolchain nightly
#
# Any data race TSan reports fails the run (halt_on_error), so a green run means "no reports".
# Doc-tests are not run (rustdoc does not pass the sanitizer flags through build-std).
set -euo pipefail
cd "$(dirname "$0")/.."

target="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=thread ${RUSTDOCFLAGS:-}"
# The suppressions cover only seize's fence-based reclamation (see the file for why).
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}"
# Timing-based tests get slower under TSan; keep the test harness from oversubscribing.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(--tests)
fi

exec cargo +nightly test -Zbuild-std --target "$target" --target-dir target/tsan \
  -p gosync "${args[@]}"

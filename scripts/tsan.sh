#!/usr/bin/env bash
# ThreadSanitizer only: `scripts/sanitizers.sh thread`, with any `cargo test` arguments
# (for example `scripts/tsan.sh --test go_mutex`). See scripts/sanitizers.sh.
set -euo pipefail
exec "$(dirname "$0")/sanitizers.sh" thread "$@"

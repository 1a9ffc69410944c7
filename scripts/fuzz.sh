#!/usr/bin/env bash
# A longer fuzz run than CI's: FUZZ_EXAMPLES inputs per target (default 5000), fresh random inputs,
# then the parse time per KB of header for every hostile shape. Usage: scripts/fuzz.sh [examples]
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_EXAMPLES="${1:-${FUZZ_EXAMPLES:-5000}}" FUZZ_RANDOM=1
exec uv run pytest tests/fuzz -q -s -p no:cacheprovider --hypothesis-show-statistics

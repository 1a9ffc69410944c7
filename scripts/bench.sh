#!/usr/bin/env bash
# The end-to-end performance table (benchmarks/perf_table.py): every figure against its raw baseline measured
# in the same run. Arguments go to the script, e.g. `scripts/bench.sh --messages 10000,50000 --mailboxes 1000
# --memory-messages 300000`. The detailed benchmarks (imap_bench, engine_bench, replay_bench, cdr_bench,
# graph_bench, outbox_bench) run on their own: `uv run python benchmarks/<name>.py`.
source "$(dirname "$0")/env.sh"
scripts/test-servers.sh >/dev/null
# The daemon starts from compiled bytecode, as the container image installs it (UV_COMPILE_BYTECODE): a start
# that compiles every module from source first (PYTHONDONTWRITEBYTECODE, or a fresh checkout) is not a start.
UV_COMPILE_BYTECODE=1 uv sync --frozen --quiet
uv run python -m compileall -q monitor
uv run python -u benchmarks/perf_table.py "$@"

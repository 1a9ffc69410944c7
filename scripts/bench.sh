#!/usr/bin/env bash
# Every benchmark, one after the other, printing figures: IMAP against a real Dovecot, the store/engine/
# evaluation path on SQLite and PostgreSQL, replay of 10,000 messages, 1,000,000 CDR rows, Graph against the
# replay server, and the alert outbox.
source "$(dirname "$0")/env.sh"
scripts/test-servers.sh >/dev/null
for bench in imap_bench engine_bench replay_bench cdr_bench graph_bench outbox_bench; do
  echo "== benchmarks/$bench.py"
  uv run python "benchmarks/$bench.py"
  echo
done

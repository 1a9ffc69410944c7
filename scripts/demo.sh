#!/usr/bin/env bash
# The demo: sample mail written relative to now, the daemon on it with SQLite, metrics on :9687.
source "$(dirname "$0")/env.sh"
exec uv run replywatch demo "$@"

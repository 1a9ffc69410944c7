#!/usr/bin/env bash
# The whole test suite: installs the test servers (Dovecot, promtool) from Debian when missing, then runs pytest.
source "$(dirname "$0")/env.sh"
scripts/test-servers.sh
exec uv run pytest "$@"

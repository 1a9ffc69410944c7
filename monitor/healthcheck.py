"""The container health check: GET /-/healthy on the port the config file sets (``http.listen``).

The Dockerfile's ``HEALTHCHECK`` runs ``python -m monitor.healthcheck [CONFIG]``, so a config that moves
replywatch to another port moves the check with it. Exit 0 when replywatch answers, 1 when it does not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Sequence

from monitor.config import ConfigError, HttpConfig, load

DEFAULT_CONFIG = "/etc/replywatch/replywatch.yaml"
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def health_url(http: HttpConfig) -> str:
    """The /-/healthy URL of the configured listener (a wildcard address is checked on loopback)."""
    host = http.host
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1" if ":" not in host else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{http.port}/-/healthy"


def main(argv: Sequence[str] | None = None) -> int:
    """Check the replywatch of the config file in the first argument, ``REPLYWATCH_CONFIG`` or the default."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = args[0] if args else os.environ.get("REPLYWATCH_CONFIG", DEFAULT_CONFIG)
    try:
        url = health_url(load(path, check_secrets=False).config.http)
    except ConfigError as err:
        print(f"healthcheck: {err}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as err:
        print(f"healthcheck: {url}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

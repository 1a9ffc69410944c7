"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on a loopback port, for the webhook notifier.

Started by a fixture with clustering off and a receiver that drops everything; a missing binary or a
server that does not become ready fails the test saying why.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CONFIG = 'route: {receiver: "null"}\nreceivers: [{name: "null"}]\n'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Alertmanager:
    """A running Alertmanager: its base URL and a reader of the alerts it holds."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise RuntimeError(
                "prometheus-alertmanager is not installed: run scripts/test-servers.sh (Debian package "
                "prometheus-alertmanager)"
            )
        (root / "alertmanager.yml").write_text(CONFIG)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (root / "alertmanager.log").open("wb")
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'alertmanager.yml'}",
                f"--storage.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._log_path = root / "alertmanager.log"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"alertmanager did not become ready:\n{self._log_path.read_text()[-4000:]}")

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: every alert Alertmanager holds."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            found: list[dict[str, Any]] = json.load(response)
            return found

    def stop(self) -> None:
        """Terminate the process."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """A running Alertmanager for one test."""
    server = Alertmanager(tmp_path)
    try:
        yield server
    finally:
        server.stop()

"""A real Prometheus and a real Alertmanager, each a child process on a loopback port with its own files.

scripts/test-servers.sh installs both from Debian's packages (``/usr/local/bin/prometheus`` and
``/usr/local/bin/prometheus-alertmanager``). A missing binary or a server that does not become ready fails
the test with its log, never skips it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.servers.dovecot import free_port

HOST = "127.0.0.1"
INSTALL_HINT = "run scripts/test-servers.sh (it installs them from Debian's prometheus packages)"
T = TypeVar("T")


def binary(name: str) -> str:
    """The executable ``name`` from PATH or /usr/local/bin; fails the test with how to install it."""
    for candidate in (shutil.which(name), f"/usr/local/bin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Callable[[], str]) -> T:
    """Call ``probe`` until it returns a value; on timeout fail naming ``what``, with the server log."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (OSError, urllib.error.URLError, ValueError) as err:
            last, found = err, None
        if found is not None:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})\n{log()}")


class Server:
    """One server process: started with its arguments, stopped with its process, its output in a log file."""

    def __init__(self, name: str, root: Path, args: list[str]) -> None:
        self.name = name
        self.root = root
        self.port = free_port()
        self.args = args
        self.log_file = root / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        """The end of the server's output."""
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return f"--- {self.name} log ---\n{text[-8000:]}"

    def start(self) -> None:
        """Start the process and wait until its readiness endpoint answers."""
        with open(self.log_file, "ab") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root
            )

        def ready() -> bool | None:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with status {self.process.returncode}\n{self.log()}")
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return True if response.status == 200 else None

        wait_for(f"{self.name} to be ready on {self.url}", ready, 30.0, self.log)

    def stop(self) -> None:
        """Stop the process (terminate, then kill)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Alertmanager(Server):
    """An Alertmanager with the given configuration file, clustering off."""

    def __init__(self, root: Path, config_file: Path) -> None:
        super().__init__("alertmanager", root, [])
        data = root / "alertmanager-data"
        data.mkdir()
        self.args = [
            binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={data}",
            f"--web.listen-address={HOST}:{self.port}",
            "--cluster.listen-address=",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds (``/api/v2/alerts``)."""
        found: list[dict[str, Any]] = get_json(f"{self.url}/api/v2/alerts")
        return found


class Prometheus(Server):
    """A Prometheus scraping one target every second, evaluating rule files every second, alerting one
    Alertmanager."""

    def __init__(self, root: Path, target: str, rule_files: list[Path], alertmanager: str) -> None:
        super().__init__("prometheus", root, [])
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
            "scrape_configs": [{"job_name": "replywatch", "static_configs": [{"targets": [target]}]}],
        }
        config_file = root / "prometheus.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        data = root / "prometheus-data"
        data.mkdir()
        self.args = [
            binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={HOST}:{self.port}",
        ]

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query's ``data`` (``resultType`` and ``result``); a PromQL error fails the test."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            body = get_json(url)
        except urllib.error.HTTPError as err:
            pytest.fail(f"Prometheus refused {expr!r}: {err.read().decode(errors='replace')}")
        assert body["status"] == "success", body
        data: dict[str, Any] = body["data"]
        return data

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from ``/api/v1/alerts``."""
        found: list[dict[str, Any]] = get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return found


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """``server`` started, and stopped afterwards."""
    server.start()
    try:
        yield server
    finally:
        server.stop()

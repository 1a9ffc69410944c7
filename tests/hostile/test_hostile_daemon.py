"""A stuck source never starves the others, evaluation or HTTP; edges fail clearly (issue 7)."""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from monitor.config import MAX_CONFIG_BYTES, ConfigError, load, validate
from monitor.daemon import Daemon
from monitor.exporters import http as http_module
from monitor.sources.base import PollResult
from tests.mailfactory import make_maildir
from tests.test_daemon import config_for


class StuckSource:
    """A source on a server that answers one byte every 10 s: its poll does not end until released."""

    def __init__(self, name: str, release: threading.Event) -> None:
        self.name = name
        self.release = release
        self.polls = 0

    def check(self) -> list[str]:
        return []

    def poll(self, cursor: dict[str, object] | None) -> PollResult:
        self.polls += 1
        self.release.wait(30)
        return PollResult(cursor={"n": self.polls})

    def close(self) -> None:
        pass


class QuickSource(StuckSource):
    """A healthy source."""

    def poll(self, cursor: dict[str, object] | None) -> PollResult:
        self.polls += 1
        return PollResult(cursor={"n": self.polls})


def test_ten_stuck_sources_starve_neither_a_healthy_one_nor_evaluation_nor_http(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stuck_names = [f"slow{i}" for i in range(10)]
    cfg = config_for(
        tmp_path,
        make_maildir(tmp_path / "mail"),
        {
            name: {"kind": "maildir", "path": str(tmp_path / "mail"), "poll_every": "1s"}
            for name in stuck_names
        },
    )
    cfg["sources"]["mail"]["poll_every"] = "1s"  # type: ignore[index]
    cfg["engine"] = {"evaluate_every": "1s"}
    release = threading.Event()
    built: dict[str, StuckSource] = {}

    def factory(name: str, _cfg: object) -> StuckSource:
        built[name] = (StuckSource if name.startswith("slow") else QuickSource)(name, release)
        return built[name]

    daemon = Daemon(validate(cfg), source_factory=factory, listen=("127.0.0.1", 0))
    evaluations: list[float] = []
    original = daemon.evaluate

    def counted() -> None:
        evaluations.append(time.monotonic())
        original()

    daemon.evaluate = counted  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="monitor.daemon")
    daemon.start()
    try:
        time.sleep(4.5)
        start = time.monotonic()
        body = urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/-/healthy", timeout=2).read()
        assert body and time.monotonic() - start < 2
        assert built["mail"].polls >= 3  # every second, beside ten polls that never end
        assert len(evaluations) >= 2
        assert all(built[name].polls == 1 for name in stuck_names)
    finally:
        release.set()
        daemon.stop()
    skipped = [r.getMessage() for r in caplog.records if "skipped: still running" in r.getMessage()]
    assert sorted(skipped) == sorted(f"poll:{name} skipped: still running" for name in stuck_names)


def test_an_idle_http_connection_is_closed(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, make_maildir(tmp_path / "mail"))
    daemon = Daemon(validate(cfg), listen=("127.0.0.1", 0))
    handler = daemon.http.httpd.RequestHandlerClass
    handler.timeout = 0.5  # type: ignore[attr-defined]
    daemon.http.start()
    try:
        with socket.create_connection(("127.0.0.1", daemon.http.port), timeout=5) as idle:
            start = time.monotonic()
            assert idle.recv(1) == b""  # the server hung up on a client that said nothing
            assert time.monotonic() - start < 3
    finally:
        daemon.http.stop()
        daemon.store.close()
    assert http_module.IDLE_TIMEOUT_SECONDS <= 30


def test_a_config_file_over_a_megabyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as err:
        load(path)
    assert "larger than 1 MB" in err.value.errors[0]


def test_sighup_keeps_the_log_settings(tmp_path: Path) -> None:
    import yaml

    cfg = config_for(tmp_path, make_maildir(tmp_path / "mail"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    daemon = Daemon(load(path), listen=("127.0.0.1", 0))
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    cfg["log"] = {"level": "ERROR", "format": "json"}
    path.write_text(yaml.safe_dump(cfg))
    try:
        assert daemon.reload()
        assert root.level == level and root.handlers == handlers
    finally:
        daemon.store.close()

"""Clear one-line errors with exit 2 at the edges (issue 7): busy port, unusable store, missing database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.mailfactory import make_maildir
from tests.test_daemon import config_for


def _run(tmp_path: Path, cfg: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def _one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "ERROR" not in line and "INFO" not in line]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg = config_for(tmp_path, make_maildir(tmp_path / "mail"))
        cfg["http"] = {"listen": f"127.0.0.1:{busy.getsockname()[1]}"}
        _one_line(_run(tmp_path, cfg, "run"), "http.listen", "in use")


def test_a_store_that_cannot_be_created_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, make_maildir(tmp_path / "mail"))
    cfg["store"] = {"url": "sqlite:////proc/replywatch/rw.db"}
    _one_line(_run(tmp_path, cfg, "db", "upgrade"), "store.url")


def test_a_missing_postgresql_database_is_one_line_and_exit_2(tmp_path: Path, postgres_url: str) -> None:
    cfg = config_for(tmp_path, make_maildir(tmp_path / "mail"))
    url = postgres_url.rsplit("/", 1)[0] + "/replywatch_does_not_exist"
    cfg["store"] = {"url": url}
    _one_line(_run(tmp_path, cfg, "run"), "store.url", "does not exist")

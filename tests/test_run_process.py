"""``replywatch run`` as a real process: readiness, SIGHUP reload (good and bad), SIGTERM, JSON logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.mailfactory import deliver, make_maildir, make_message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(port: int, line_prefix: str) -> float | None:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(line_prefix + " ") or (
            line.startswith(line_prefix + "{") and line.split(" ")[0] == line_prefix
        ):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_run_reload_and_stop(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "mail")
    deliver(
        maildir,
        make_message(
            msgid="c1@cust.example",
            sender="carol@cust.example",
            to="support@example.com",
            date=datetime.now(UTC) - timedelta(hours=1),
        ),
    )
    port = free_port()
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "http": {"listen": f"127.0.0.1:{port}"},
        "log": {"format": "json"},
        "engine": {"evaluate_every": "1s"},
        "sources": {"mail": {"kind": "maildir", "path": str(maildir), "poll_every": "1s"}},
        "teams": {
            "support": {
                "addresses": ["support@example.com"],
                "sources": ["mail"],
                "rules": [{"kind": "reply_within", "within": "24h"}],
            }
        },
    }
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (tmp_path / "log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        stderr=log,
        stdout=log,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200)
        awaiting = 'replywatch_awaiting{channel="email",team="support"}'
        wait_for(lambda: metric(port, awaiting) == 1.0)

        path.write_text("teams: [broken\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: metric(port, "replywatch_config_last_reload_successful") == 0.0)
        assert metric(port, awaiting) == 1.0  # the old config keeps running

        config["teams"]["sales"] = {"addresses": ["sales@example.com"], "sources": ["mail"]}  # type: ignore[index]
        path.write_text(yaml.safe_dump(config))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: metric(port, "replywatch_config_last_reload_successful") == 1.0)
        wait_for(lambda: metric(port, 'replywatch_awaiting{channel="email",team="sales"}') == 1.0)

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    lines = [line for line in log.read().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = [r["message"] for r in records]
    assert "replywatch started" in messages
    assert "config reload failed, keeping the running config" in messages
    assert "config reloaded" in messages
    assert "replywatch stopped" in messages
    for r in records:
        if r["level"] in ("INFO", "WARNING", "ERROR"):
            assert "carol" not in json.dumps(r)


def test_sigterm_exits_in_time_while_a_poll_hangs(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers must not keep replywatch from stopping."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    port = free_port()
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "http": {"listen": f"127.0.0.1:{port}"},
        "sources": {
            "silent": {"kind": "imap", "host": "127.0.0.1", "port": silent.getsockname()[1], "tls": "none",
                       "username": "u", "password_file": str(secret), "timeout": "5m", "poll_every": "1s"}
        },
        "teams": {"support": {"sources": ["silent"]}},
    }  # fmt: skip
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "-c", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        # Never ready (its one source never answers, so its team is never judged): wait until it is up.
        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=2).status == 200,
            timeout=45.0,  # a loaded CI machine starts Python slowly
        )
        conn, _ = silent.accept()  # the poll has connected and now waits for a greeting that never comes
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=12) == 0
        assert time.monotonic() - started < 10.5
        assert "not waiting for it" in proc.stderr.read()  # type: ignore[union-attr]
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        silent.close()

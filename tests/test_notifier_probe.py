"""``check-config --probe`` checks notifiers without sending: SMTP connect, STARTTLS and login against a real
SMTP server; a webhook's connection against a real HTTP server that must receive no request."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from tests.servers.smtp import PASSWORD, USER, SmtpServer


def write(tmp_path: Path, notifiers: dict[str, Any]) -> str:
    path = tmp_path / "replywatch.yaml"
    path.write_text(
        yaml.safe_dump(
            {"store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"}, "notifiers": notifiers}, sort_keys=False
        )
    )
    return str(path)


def smtp(server: SmtpServer, **over: Any) -> dict[str, Any]:
    return {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": server.port,
        "tls": "starttls",
        "ca_file": str(server.ca_file),
        "username": USER,
        "password_env": "PROBE_SMTP_PASSWORD",
        "from": "rw@example.com",
        **over,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_smtp_probe_logs_in_and_sends_nothing(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PROBE_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("PROBE_WRONG_PASSWORD", "not-it")
    assert main(["check-config", "-c", write(tmp_path, {"mail": smtp(smtp_server)}), "--probe"]) == 0
    assert "notifiers.mail: ok" in capsys.readouterr().out
    assert smtp_server.received == []

    config = write(
        tmp_path,
        {
            "wrong-password": smtp(smtp_server, password_env="PROBE_WRONG_PASSWORD"),
            "untrusted": smtp(smtp_server, ca_file=None),
            "closed": smtp(smtp_server, port=free_port()),
        },
    )
    assert main(["check-config", "-c", config, "--probe"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "notifiers.wrong-password: FAILED",
        "notifiers.untrusted: FAILED",
        "notifiers.closed: FAILED",
    ]
    assert (
        "notifiers.wrong-password: auth: 127.0.0.1 refused the login of 'replywatch' with the secret "
        "from password_env 'PROBE_WRONG_PASSWORD'"
    ) in err
    assert re.search(r"notifiers\.untrusted: protocol: .*not signed by .*ca_file", err), err
    assert re.search(r"notifiers\.closed: unreachable: 127\.0\.0\.1:\d+: connection refused", err), err
    assert smtp_server.received == []


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []

    def _any(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_OPTIONS = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_probe_connects_and_posts_nothing(
    http_server: ThreadingHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = http_server.server_address[1]
    notifiers = {
        "hook": {
            "kind": "webhook",
            "url": f"http://127.0.0.1:{port}/api/v2/alerts",
            "format": "alertmanager",
        },
        "down": {"kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook"},
    }
    assert main(["check-config", "-c", write(tmp_path, notifiers), "--probe"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == ["notifiers.hook: ok", "notifiers.down: FAILED"]
    assert re.search(r"notifiers\.down: 127\.0\.0\.1:\d+: Connection refused", err)
    assert _Recorder.requests == []  # connected, nothing sent

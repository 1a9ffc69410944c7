"""``replywatch demo`` as a newcomer runs it: it serves /metrics with waiting customers and an open breach."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.demo import command_prefix
from tests.test_run_process import free_port


def test_demo_serves_waiting_customers_and_a_breach(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "demo", "--dir", str(tmp_path / "demo"),
         "--listen", f"127.0.0.1:{port}", "--for", "120s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        labelled: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + 90  # a slow machine: importing and the first poll of both sources
        wanted = [
            ("replywatch_breaches_open", "reply_within"),
            ("replywatch_breaches_open", "callback_within"),
        ]
        while time.monotonic() < deadline and not all(labelled.get(key, 0) >= 1 for key in wanted):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                time.sleep(0.2)
                continue
            families = list(text_string_to_metric_families(body))
            labelled = {
                (
                    s.name,
                    s.labels.get("channel") or s.labels.get("rule") or s.labels.get("source", ""),
                ): s.value
                for f in families
                for s in f.samples
            }
        assert labelled[("replywatch_awaiting", "email")] >= 2
        assert labelled[("replywatch_awaiting", "phone")] >= 2  # the demo call log: callers not called back
        assert labelled[("replywatch_breaches_open", "reply_within")] >= 1
        assert labelled[("replywatch_breaches_open", "callback_within")] >= 1
        assert labelled[("replywatch_source_up", "demo-mailbox")] == 1
        assert labelled[("replywatch_source_up", "demo-pbx")] == 1
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert "team support:" in out and "OVERDUE" in out
    assert "phone" in out and "+447700900104" in out  # the caller waiting for more than a week
    # Every command printed works as printed; waiting mail is named by subject, never by Message-ID.
    (status_line,) = [line for line in out.splitlines() if line.strip().startswith("status:")]
    command = status_line.split("status:", 1)[1].split()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr  # 1: overdue items, as the demo has
    assert "team support:" in done.stdout
    mail_breaches = [line for line in out.splitlines() if line.strip().startswith("breach   reply_within")]
    assert mail_breaches and all(line.rstrip().endswith('"') for line in mail_breaches), mail_breaches
    # Business hours at work: a weekday calendar, not one open around the clock.
    written = yaml.safe_load((tmp_path / "demo" / "replywatch.yaml").read_text())
    (calendar,) = written["calendars"].values()
    assert calendar["hours"] == {"mon-fri": "09:00-17:30"}


def test_the_printed_command_runs_as_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = command_prefix()
    # From a virtual environment (uv run) the bare name works only there: the script's path, which exists.
    if sys.prefix != sys.base_prefix and shutil.which("replywatch"):
        assert Path(prefix).is_absolute() and Path(prefix).exists(), prefix
    done = subprocess.run([*prefix.split(" "), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "check-config" in done.stdout
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # not on PATH: this interpreter, by its path
    prefix = command_prefix()
    assert prefix.endswith(" -m monitor")
    done = subprocess.run([*prefix.split(" "), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0

"""``replywatch check-config --probe`` logs in to real sources and says what is wrong where."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from tests.servers.dovecot import Mailbox


def write(tmp_path: Path, sources: dict[str, object]) -> str:
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump({"sources": sources, "teams": {"support": {"sources": list(sources)}}}))
    return str(path)


def test_probe_ok_and_failures(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imap_mailbox.create_folder("Sent")
    good = imap_mailbox.imap_settings("starttls")
    path = write(tmp_path, {"good": good})
    assert main(["check-config", "-c", path, "--probe"]) == 0
    assert "sources.good: ok" in capsys.readouterr().out

    wrong_folder = good | {"folders": {"inbox": "Inbx"}}
    bad_password = tmp_path / "wrong-password"
    bad_password.write_text("not-the-password\n")
    wrong_login = good | {"password_file": str(bad_password)}
    path = write(tmp_path, {"folder": wrong_folder, "login": wrong_login, "good": good})
    assert main(["check-config", "-c", path, "--probe"]) == 2
    out = capsys.readouterr()
    assert "sources.good: ok" in out.out
    assert "sources.folder: FAILED" in out.out and "sources.login: FAILED" in out.out
    assert "'Inbx'" in out.err
    assert "not-the-password" not in out.err + out.out  # secrets never printed


def test_probe_with_an_xoauth2_token(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Gmail is read as IMAP with an XOAUTH2 token: the probe logs in with it, and a refused token names the
    file it came from without printing it (this Dovecot checks the bearer token like a password)."""
    imap_mailbox.create_folder("Sent")
    settings = imap_mailbox.imap_settings("implicit")
    token = {k: v for k, v in settings.items() if k != "password_file"}
    token["oauth2_token_file"] = settings["password_file"]
    path = write(tmp_path, {"gmail": token})
    assert main(["check-config", "-c", path, "--probe"]) == 0
    assert "sources.gmail: ok" in capsys.readouterr().out
    log = imap_mailbox.server.log_text()
    assert f"Login: user=<{imap_mailbox.user}>, method=XOAUTH2" in log, log[-2000:]

    expired = tmp_path / "expired-token"
    expired.write_text("ya29.expired-token\n")
    path = write(tmp_path, {"gmail": token | {"oauth2_token_file": str(expired)}})
    assert main(["check-config", "-c", path, "--probe"]) == 2
    out = capsys.readouterr()
    assert "sources.gmail: FAILED" in out.out
    assert str(expired) in out.err, out.err
    assert "ya29.expired-token" not in out.err + out.out

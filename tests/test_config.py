"""Config validation: every example is valid; every invalid case gives exactly its errors, all at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConfigError, load, validate
from monitor.durations import format_duration, parse_duration

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))
INVALID = sorted((Path(__file__).with_name("config_cases")).glob("invalid-*.yaml"))


def _env_for(path: Path) -> dict[str, str]:
    """Every *_env variable an example names, set to a dummy value (secrets come from the environment)."""
    return {name: "secret" for name in re.findall(r"_env:\s*([A-Z0-9_]+)", path.read_text())}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _env_for(path).items():
        monkeypatch.setenv(name, value)
    loaded = load(path, check_secrets=False)
    assert loaded.config.teams
    assert main(["check-config", "-c", str(path)]) == 0 or _needs_files(path)


def _needs_files(path: Path) -> bool:
    return "password_file:" in path.read_text()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_configs_give_exactly_their_errors(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = [
        line.removeprefix("# error: ")
        for line in path.read_text().splitlines()
        if line.startswith("# error: ")
    ]
    assert expected, f"{path.name} declares no '# error:' lines"
    with pytest.raises(ConfigError) as err:
        load(path)
    assert sorted(err.value.errors) == sorted(expected)
    assert main(["check-config", "-c", str(path)]) == 2
    stderr = capsys.readouterr().err
    for line in expected:
        assert line in stderr


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    assert main(["check-config", "-c", str(tmp_path / "nope.yaml")]) == 2


def test_secrets_from_env_and_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    base = {"kind": "imap", "host": "imap.example.com", "username": "u"}
    validate({"sources": {"a": base | {"password_env": "PW"}}}, env={"PW": "x"})
    validate({"sources": {"a": base | {"password_file": str(secret)}}}, env={})
    with pytest.raises(ConfigError) as err:
        validate({"sources": {"a": base | {"password_file": str(tmp_path / "missing")}}}, env={})
    assert err.value.errors == [f"sources.a.password_file: cannot read '{tmp_path / 'missing'}'"]


def test_tls_none_refused_for_remote_hosts() -> None:
    imap = {"kind": "imap", "username": "u", "tls": "none", "port": 143, "password_env": "PW"}
    with pytest.raises(ConfigError) as err:
        validate({"sources": {"a": imap | {"host": "imap.example.com"}}}, env={"PW": "x"})
    assert any("imap.example.com" in e and e.startswith("sources.a") for e in err.value.errors)
    validate({"sources": {"a": imap | {"host": "127.0.0.1"}}}, env={"PW": "x"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("4h", 14400), ("2d", 172800), ("1w", 604800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("text", ["24hrs", "", "h", "-1h", "1.5h", "1 h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


WARNED = sorted((Path(__file__).with_name("config_cases")).glob("warn-*.yaml"))


@pytest.mark.parametrize("path", WARNED, ids=lambda p: p.name)
def test_warnings_are_printed_and_exit_0(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = [
        "warning: " + line.removeprefix("# warning: ")
        for line in path.read_text().splitlines()
        if line.startswith("# warning: ")
    ]
    assert expected, f"{path.name} declares no '# warning:' lines"
    assert main(["check-config", "-c", str(path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")]
    assert printed == expected


def _model_names() -> set[str]:
    from pydantic import BaseModel

    import monitor.config  # noqa: F401 - loads every model, plugins included
    from monitor.exporters.notifiers.base import NOTIFIERS
    from monitor.rules.base import RULES
    from monitor.sources.base import SOURCES

    for registry in (SOURCES, RULES, NOTIFIERS):
        registry.plugins()
    names: set[str] = set()
    todo = [BaseModel]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("monitor"):
                names.add(sub.__name__)
            todo.append(sub)
    return names


def test_no_error_names_an_internal_class() -> None:
    """Issue 8: pydantic's messages name the model class ("instance of ImapFolders"); ours never do."""
    names = _model_names()
    assert {"ImapFolders", "TeamConfig", "MemberConfig"} <= names
    shapes = {
        "sources": {
            "a": {"kind": "imap", "host": "h", "username": "u", "password_file": "/dev/null", "folders": []},
            "b": {"kind": "maildir", "path": "/x", "folders": "INBOX"},
            "c": "not a mapping",
        },
        "calendars": {"x": {"timezone": "UTC", "hours": []}, "y": []},
        "teams": {"t": {"members": [1, "x"], "rules": ["r"], "notify": []}, "u": []},
        "store": [],
        "http": "x",
    }
    lines: list[str] = []
    for path in INVALID:
        with pytest.raises(ConfigError) as err:
            load(path)
        lines += err.value.errors
    with pytest.raises(ConfigError) as err:
        validate(shapes)
    lines += err.value.errors
    assert len(lines) > 40
    leaked = [line for line in lines if any(re.search(rf"\b{name}\b", line) for name in names)]
    assert leaked == []

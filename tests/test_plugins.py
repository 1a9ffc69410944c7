"""The plugin registry: built-in plugins come from entry points; broken ones fail clearly; SecretRef."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pytest

from monitor.config import ConfigError, validate
from monitor.exporters.notifiers.base import NOTIFIERS
from monitor.plugins import (
    NOTIFIERS_GROUP,
    RULES_GROUP,
    SOURCES_GROUP,
    Plugin,
    PluginError,
    Registry,
    SecretError,
    SecretRef,
)
from monitor.rules.base import RULES, RuleConfigBase, RulePlugin
from monitor.rules.reply_within import ReplyWithin, ReplyWithinConfig
from monitor.sources.base import SOURCES, SourceConfigBase
from monitor.sources.maildir import MaildirConfig, MaildirSource


@pytest.mark.parametrize(
    ("group", "kinds"),
    [
        (
            SOURCES_GROUP,
            {
                "imap",
                "maildir",
                "mbox",
                "asterisk_csv",
                "cdr_sql",
                "threecx_csv",
                "calls_csv",
                "graph",
                "exchange",
            },
        ),
        (RULES_GROUP, {"reply_within", "holding_reply", "callback_within", "inbox_nearly_empty"}),
    ],
)
def test_built_in_plugins_are_entry_points_of_the_distribution(group: str, kinds: set[str]) -> None:
    entries = {
        e.name: e for e in metadata.entry_points(group=group) if e.dist and e.dist.name == "replywatch"
    }
    assert set(entries) == kinds
    for name, entry in entries.items():
        plugin = entry.load()
        assert isinstance(plugin, Plugin)
        assert plugin.kind == name


def test_registries_hold_exactly_what_the_entry_points_name() -> None:
    assert set(SOURCES.plugins()) >= {"imap", "maildir", "mbox"}
    assert SOURCES.get("maildir") == Plugin(MaildirConfig, MaildirSource)
    assert RULES.get("reply_within") == Plugin(ReplyWithinConfig, ReplyWithin)
    assert NOTIFIERS.group == NOTIFIERS_GROUP


def _entry_points(*entries: tuple[str, str]) -> Registry[RuleConfigBase, Any]:
    def listing(group: str) -> Iterable[metadata.EntryPoint]:
        return [metadata.EntryPoint(name, value, group) for name, value in entries]

    return Registry(RULES_GROUP, RuleConfigBase, listing)


class OtherConfig(RuleConfigBase):
    kind: Literal["other"]
    channel: Literal["email"] = "email"


OTHER = RulePlugin(OtherConfig, ReplyWithin)
NOT_A_SOURCE = RulePlugin(OtherConfig, MaildirSource)


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        (
            [("broken", "tests.no_such_module:PLUGIN")],
            "entry point 'broken' .* cannot be loaded: ModuleNotFoundError",
        ),
        ([("other", "tests.test_plugins:OtherConfig")], "is not a replywatch Plugin"),
        ([("typo", "tests.test_plugins:OTHER")], "must be named after the plugin's kind 'other'"),
        (
            [("other", "tests.test_plugins:OTHER"), ("other", "tests.test_plugins:OTHER")],
            "already provided by",
        ),
    ],
)
def test_broken_entry_points_are_named(entries: list[tuple[str, str]], error: str) -> None:
    with pytest.raises(PluginError, match=error):
        _entry_points(*entries).plugins()


def test_a_plugin_for_another_group_is_refused() -> None:
    registry = Registry(
        SOURCES_GROUP,
        SourceConfigBase,
        lambda group: [metadata.EntryPoint("other", "tests.test_plugins:NOT_A_SOURCE", group)],
    )
    with pytest.raises(PluginError, match="does not extend SourceConfigBase"):
        registry.plugins()


def test_kind_is_declared_once_as_a_literal() -> None:
    class Loose(RuleConfigBase):
        channel: str = "email"

    with pytest.raises(PluginError, match=r"Loose\.kind must be declared as Literal"):
        RulePlugin(Loose, ReplyWithin)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        validate({"teams": {"t": {"rules": [{"kind": "reply_withn"}, "reply_within"]}}})
    assert sorted(err.value.errors) == [
        "teams.t.rules[0].kind: unknown kind 'reply_withn' "
        "(known: callback_within, holding_reply, inbox_nearly_empty, reply_within)",
        "teams.t.rules[1]: expected a mapping with a 'kind'",
    ]


# --- SecretRef ------------------------------------------------------------------------------------


def test_secret_from_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLYWATCH_TEST_SECRET", "hunter2")
    assert SecretRef(name="password", env="REPLYWATCH_TEST_SECRET").reveal().get_secret_value() == "hunter2"
    secret = tmp_path / "pw"
    secret.write_text("s3cret  \nsecond line\n")
    assert SecretRef(name="password", file=secret).reveal().get_secret_value() == "s3cret"


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        (
            SecretRef(name="password", env="REPLYWATCH_TEST_UNSET"),
            "password_env: environment variable 'REPLYWATCH_TEST_UNSET' is not set",
        ),
        (SecretRef(name="token", file=Path("/nonexistent/pw")), "token_file: cannot read '/nonexistent/pw'"),
        (
            SecretRef(name="password", env="X", file=Path("/p")),
            "give either password_env or password_file, not both",
        ),
    ],
)
def test_a_secret_that_cannot_be_read_gives_the_same_error_at_check_and_at_use(
    ref: SecretRef, error: str
) -> None:
    with pytest.raises(SecretError) as err:
        ref.reveal()
    assert str(err.value) == error
    key, message = ref.problems({})[0]
    assert (f"{key}: {message}" if key else message) == error


def test_an_empty_secret_file_cannot_be_read(tmp_path: Path) -> None:
    empty = tmp_path / "pw"
    empty.write_text("")
    with pytest.raises(SecretError, match="password_file: cannot read"):
        SecretRef(name="password", file=empty).reveal()


def test_secrets_are_never_in_the_config_or_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLYWATCH_TEST_SECRET", "hunter2")
    imap = {
        "kind": "imap",
        "host": "imap.example.com",
        "username": "u",
        "password_env": "REPLYWATCH_TEST_SECRET",
    }
    loaded = validate({"sources": {"a": imap}, "store": {"password_env": "REPLYWATCH_TEST_SECRET"}})
    assert "hunter2" not in repr(loaded.config)
    with pytest.raises(ConfigError) as err:
        validate({"sources": {"a": imap | {"port": 0}}})
    assert "hunter2" not in str(err.value)


LAZY_PROBE = """
import sys
from monitor.config import validate
loaded = validate({
    "sources": {"mail": {"kind": "maildir", "path": "/nonexistent"}},
    "teams": {"support": {"calendar": "office", "addresses": ["support@example.com"], "sources": ["mail"],
                          "rules": [{"kind": "reply_within"}]}},
    "calendars": {"office": {"timezone": "UTC", "hours": {"mon-fri": "09:00-17:00"}}},
}, check_secrets=False)
print(" ".join(sorted(m for m in sys.modules if m.startswith(("monitor.sources.", "monitor.rules.")))))
from monitor.sources.base import SOURCES
print(" ".join(SOURCES.kinds()))
SOURCES.get("mbox")
print("mbox" if "monitor.sources.mbox" in sys.modules else "-")
"""


def test_built_in_plugins_load_when_their_kind_is_used() -> None:
    """A config loads the modules of the built-in kinds it names, not every built-in plugin's; the others
    are still known (an unknown kind's error lists them) and load when asked for."""
    done = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    modules, kinds, asked = done.stdout.split("\n")[:3]
    loaded = set(modules.split())
    assert {"monitor.sources.maildir", "monitor.rules.reply_within"} <= loaded
    never = {
        "monitor.sources.exchange",
        "monitor.sources.graph",
        "monitor.sources.cdr_sql",
        "monitor.sources.imap",
    }
    never |= {"monitor.sources.mbox", "monitor.rules.callback_within", "monitor.rules.inbox_nearly_empty"}
    assert not loaded & never, loaded & never
    assert set(kinds.split()) >= {"imap", "maildir", "mbox", "exchange", "graph", "cdr_sql"}
    assert asked == "mbox"


def test_a_built_in_kind_claimed_by_another_distribution_is_refused() -> None:
    def listing(group: str) -> Iterable[metadata.EntryPoint]:
        built_in = [e for e in metadata.entry_points(group=group) if e.name == "reply_within"]
        return [*built_in, metadata.EntryPoint("reply_within", "tests.test_plugins:OTHER", group)]

    with pytest.raises(
        PluginError, match="kind 'reply_within' is already provided by entry point 'reply_within'"
    ):
        Registry(RULES_GROUP, RuleConfigBase, listing).kinds()

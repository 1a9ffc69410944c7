"""A plugin from another distribution registers through an entry point, exactly like the built-in ones."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

FEED_MODULE = '''
"""A third-party replywatch plugin package: a source kind and a rule kind."""

from typing import Any, Literal

from pydantic import field_validator

from monitor.rules.base import Finding, RuleConfigBase, RulePlugin, TeamView
from monitor.sources.base import PollResult, SourceConfigBase, SourcePlugin


class FeedConfig(SourceConfigBase):
    kind: Literal["feed"] = "feed"
    url: str


class FeedSource:
    def __init__(self, name: str, config: FeedConfig) -> None:
        self.name = name
        self.config = config

    def check(self) -> list[str]:
        return []

    def poll(self, cursor: Any) -> PollResult:
        return PollResult()

    def close(self) -> None:
        pass


class NoSilenceConfig(RuleConfigBase):
    kind: Literal["no_silence"]
    channel: Literal["email"] = "email"
    source: str | None = None
    max_quiet_days: int = 3

    @field_validator("max_quiet_days")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 day, not {value}")
        return value


class NoSilence:
    name = "no_silence"

    def __init__(self, config: NoSilenceConfig) -> None:
        self.config = config

    def evaluate(self, view: TeamView, now: Any) -> list[Finding]:
        return []


SOURCE = SourcePlugin(FeedConfig, FeedSource)
RULE = RulePlugin(NoSilenceConfig, NoSilence)
'''


def _distribution(root: Path, name: str, module: str, code: str, entry_points: str) -> Path:
    """A throwaway installed distribution: ``<name>-1.0.dist-info`` (METADATA, entry points), its module."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (root / f"{module}.py").write_text(code)
    return root


def _check_config(
    tmp_path: Path, path_entry: Path, config: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config))
    env = os.environ | {"PYTHONPATH": str(path_entry)}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _feed(tmp_path: Path) -> Path:
    return _distribution(
        tmp_path / "site",
        "replywatch-feed",
        "replywatch_feed",
        FEED_MODULE,
        """
        [replywatch.sources]
        feed = replywatch_feed:SOURCE

        [replywatch.rules]
        no_silence = replywatch_feed:RULE
        """,
    )


def test_check_config_accepts_the_kinds_of_a_third_party_distribution(tmp_path: Path) -> None:
    config = {
        "sources": {"news": {"kind": "feed", "url": "https://example.com/feed.xml", "poll_every": "5m"}},
        "teams": {
            "support": {
                "sources": ["news"],
                "rules": [
                    {"kind": "no_silence", "source": "news", "max_quiet_days": 2},
                    {"kind": "reply_within", "within": "4h"},
                ],
            }
        },
    }
    done = _check_config(tmp_path, _feed(tmp_path), config)
    assert done.returncode == 0, done.stderr
    assert "ok (1 sources, 1 teams)" in done.stdout


def test_a_mistake_in_a_third_party_section_gets_the_plugins_own_error_with_its_path(tmp_path: Path) -> None:
    config = {
        "sources": {
            "news": {"kind": "feed", "urll": "https://example.com/feed.xml"},
            "old": {"kind": "fed"},
        },
        "teams": {
            "support": {"sources": ["news"], "rules": [{"kind": "no_silence", "max_quiet_days": 0}]},
            "sales": {"sources": ["news"], "rules": [{"kind": "no_silence", "source": "old"}]},
        },
    }
    done = _check_config(tmp_path, _feed(tmp_path), config)
    assert done.returncode == 2
    errors = sorted(line.strip() for line in done.stderr.splitlines()[1:])
    assert errors == [
        "sources.news.url: required",
        "sources.news.urll: unknown key; did you mean 'url'?",  # a third-party model's keys too
        "sources.old.kind: unknown kind 'fed' "
        "(known: asterisk_csv, calls_csv, cdr_sql, exchange, feed, graph, imap, maildir, mbox, threecx_csv)",
        "teams.sales.rules[0].source: 'old' is not one of the team's sources",
        "teams.support.rules[0].max_quiet_days: must be at least 1 day, not 0",
    ]


def test_a_broken_third_party_entry_point_is_one_clear_error(tmp_path: Path) -> None:
    site = _distribution(
        tmp_path / "site",
        "replywatch-broken",
        "replywatch_broken",
        'raise ImportError("needs libfeed 2")\n',
        """
        [replywatch.rules]
        broken = replywatch_broken:RULE
        """,
    )
    done = _check_config(tmp_path, site, {"teams": {"support": {"rules": [{"kind": "reply_within"}]}}})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert (
        "entry point 'broken' (replywatch_broken:RULE) of distribution 'replywatch-broken' in group "
        "'replywatch.rules' cannot be loaded: ImportError: needs libfeed 2"
    ) in done.stderr

"""Prometheus's ``promtool``, run as a child process: lints exposition, checks and unit-tests rule files.

scripts/test-servers.sh installs it (``/usr/local/bin/promtool``, taken from Debian's prometheus package).
A missing promtool fails the tests that need it, never skips them: a skipped lint is a lint nobody ran.
``REPLYWATCH_PROMTOOL`` points at another binary (for example a newer release).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

INSTALL_HINT = "run scripts/test-servers.sh (it installs promtool from Debian's prometheus package)"
TIMEOUT_SECONDS = 60.0


def promtool_binary() -> str:
    """The promtool executable; fails the calling test with how to install it when there is none."""
    configured = os.environ.get("REPLYWATCH_PROMTOOL")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"REPLYWATCH_PROMTOOL={configured!r} is not an executable file", pytrace=False)
        return configured
    for candidate in (shutil.which("promtool"), "/usr/local/bin/promtool", "/usr/bin/promtool"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"promtool is not installed: {INSTALL_HINT}", pytrace=False)


@dataclass(frozen=True)
class PromtoolResult:
    """Exit status and output of one promtool run."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Stdout and stderr together, as promtool prints findings on either."""
        return (self.stdout + self.stderr).strip()

    def describe(self) -> str:
        """The command line and everything it printed, for assertion messages."""
        return f"$ promtool {' '.join(self.args)}\n(exit {self.returncode})\n{self.output}"


@dataclass(frozen=True)
class Promtool:
    """One promtool binary and the subcommands the tests use."""

    binary: str

    @classmethod
    def find(cls) -> Promtool:
        """The installed promtool (fails the test when missing)."""
        return cls(promtool_binary())

    def run(self, *args: str, stdin: str | None = None, cwd: Path | None = None) -> PromtoolResult:
        """Run ``promtool ARGS...``; never raises on a non-zero exit."""
        done = subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        return PromtoolResult(tuple(args), done.returncode, done.stdout, done.stderr)

    def version(self) -> str:
        """The first line of ``promtool --version``."""
        return self.run("--version").output.splitlines()[0]

    def check_metrics(self, exposition: str) -> PromtoolResult:
        """Lint a text-format (0.0.4) exposition: names, units, HELP, counter suffixes."""
        return self.run("check", "metrics", stdin=exposition)

    def check_rules(self, *paths: Path) -> PromtoolResult:
        """Validate rule files: YAML shape, PromQL syntax, templates, duplicate rules."""
        return self.run("check", "rules", *map(str, paths))

    def test_rules(self, *paths: Path) -> PromtoolResult:
        """Run rule unit-test files (paths to rule files inside them are relative to each test file)."""
        return self.run("test", "rules", *map(str, paths))

    def check_config(self, path: Path) -> PromtoolResult:
        """Validate a prometheus.yml and the rule files it names."""
        return self.run("check", "config", str(path))

    def check_expressions(self, expressions: Mapping[str, str], workdir: Path) -> PromtoolResult:
        """Parse and type-check PromQL expressions, keyed by where they come from.

        promtool 2.42 has no command that only parses PromQL, but ``check rules`` parses every rule's
        expression, so each one becomes a recording rule in a group named after its key, and the
        errors (all of them, not just the first) name that group.
        """
        groups = [
            {"name": where, "rules": [{"record": f"check:expression_{n}", "expr": expr}]}
            for n, (where, expr) in enumerate(expressions.items(), start=1)
        ]
        path = workdir / "expressions.rules.yml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True))
        return self.check_rules(path)


# -- PromQL names --------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:])")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"inf", "nan", "atan2", "start", "end"}
)


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (not functions, labels, keywords or strings).

    A light tokenizer, enough for the expressions of our rules and dashboards: strings, label
    matchers, range/subquery brackets and grouping label lists are dropped first; an identifier
    followed by ``(`` is a function or an aggregation.
    """
    text = _STRING.sub('""', expression)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for found in _IDENTIFIER.finditer(text):
        name = found.group(0)
        if name.lower() in _KEYWORDS or re.match(r"\s*\(", text[found.end() :]):
            continue
        names.add(name)
    return names

"""The Prometheus files under config/prometheus/: promtool checks them and runs their unit tests.

Unit tests live in tests/prometheus/*.test.yml (promtool's format); each alert has at least one.
Rule expressions may only select series that replywatch exposes (taken from a real scrape), series
the rule files record, and Prometheus's own ``up``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers.promtool import Promtool, metric_names
from tests.test_metrics_exposition import exposed_series_names

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "prometheus"
ALERTS = CONFIG / "replywatch-alerts.yml"
RECORDING = CONFIG / "replywatch-rules.yml"
RULE_FILES = (ALERTS, RECORDING)
UNIT_TESTS = sorted((Path(__file__).parent / "prometheus").glob("*.test.yml"))
PROMETHEUS_SERIES = frozenset({"up"})  # what Prometheus adds to every target
SEVERITIES = {"warning", "critical"}


@pytest.fixture(scope="module")
def promtool() -> Promtool:
    """The installed promtool (a missing one fails these tests)."""
    return Promtool.find()


def rules(path: Path) -> list[dict[str, Any]]:
    """Every rule of a rule file, each with its group's name under ``group``."""
    loaded = yaml.safe_load(path.read_text())
    return [{**rule, "group": group["name"]} for group in loaded["groups"] for rule in group["rules"]]


def test_rule_files_pass_promtool_check(promtool: Promtool) -> None:
    """YAML shape, PromQL, templates and duplicate rules, as Prometheus would load them."""
    result = promtool.check_rules(*RULE_FILES)
    assert result.returncode == 0, result.describe()
    assert "SUCCESS" in result.output


def test_example_prometheus_config(promtool: Promtool) -> None:
    """The example prometheus.yml is valid and loads both rule files."""
    result = promtool.check_config(CONFIG / "prometheus.yml")
    assert result.returncode == 0, result.describe()
    for path in RULE_FILES:
        assert f"Checking {path}" in result.output, result.describe()


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests(promtool: Promtool, unit_test: Path) -> None:
    """promtool runs the file's alert and expression tests; every one passes."""
    result = promtool.test_rules(unit_test)
    assert result.returncode == 0, result.describe()


def test_unit_tests_cover_every_rule_file_and_alert() -> None:
    """Each rule file is loaded by a unit-test file, and each alert is asserted at least once."""
    loaded_files: set[Path] = set()
    tested_alerts: set[str] = set()
    for unit_test in UNIT_TESTS:
        spec = yaml.safe_load(unit_test.read_text())
        loaded_files.update((unit_test.parent / name).resolve() for name in spec["rule_files"])
        for group in spec["tests"]:
            tested_alerts.update(case["alertname"] for case in group.get("alert_rule_test", []))
    assert set(RULE_FILES) <= loaded_files
    alerts = {rule["alert"] for rule in rules(ALERTS)}
    assert alerts - tested_alerts == set(), "alerts without a unit test"


def test_alerts_carry_severity_and_text() -> None:
    """Alertmanager routes on severity and team; people read summary and description."""
    for rule in rules(ALERTS):
        assert "alert" in rule, f"{ALERTS.name} holds only alerts, found {rule}"
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        text = rule["annotations"]["summary"] + rule["annotations"]["description"]
        if "team" in str(rule["expr"]) or "breaches" in str(rule["expr"]):
            assert "$labels.team" in text, f"{rule['alert']} does not name the team"


def test_recording_file_holds_only_recording_rules() -> None:
    """Dashboards rely on recorded names following level:metric:operations."""
    for rule in rules(RECORDING):
        assert "record" in rule and "alert" not in rule, rule
        assert rule["record"].count(":") == 2, rule["record"]


def test_rules_select_only_exposed_series() -> None:
    """A renamed or dropped metric breaks the scrape-backed set here, not silently in production."""
    recorded = {rule["record"] for rule in rules(RECORDING)}
    known = exposed_series_names() | recorded | PROMETHEUS_SERIES
    unknown = {
        f"{path.name}: {rule.get('alert') or rule.get('record')}": sorted(metric_names(rule["expr"]) - known)
        for path in RULE_FILES
        for rule in rules(path)
        if metric_names(rule["expr"]) - known
    }
    assert unknown == {}

"""config/grafana/replywatch-dashboard.json: its PromQL parses and selects only series replywatch exposes.

Grafana variables are substituted with sample values first (``$team`` -> ``support``, ``$__interval``
-> ``1h``...); promtool parses every expression (as recording rules of a generated rule file), and the
series each one selects are checked against a real scrape of the daemon (tests/test_metrics_exposition).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.promtool import Promtool, metric_names
from tests.test_metrics_exposition import exposed_label_names, exposed_series_names

DASHBOARD = Path(__file__).resolve().parent.parent / "config" / "grafana" / "replywatch-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
TEAM_QUERY = "label_values(replywatch_awaiting, team)"
# Sample values for Grafana's built-in and the dashboard's variables, only to make the PromQL parse.
VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1h",
    "__range": "7d",
    "__range_s": "604800",
    "team": "support",
}
# What the dashboard must chart: every customer-facing family and the source health ones.
CHARTED = {
    "replywatch_awaiting",
    "replywatch_awaiting_oldest_timestamp_seconds",
    "replywatch_breaches_open",
    "replywatch_breaches_total",
    "replywatch_response_seconds_bucket",
    "replywatch_member_response_seconds_bucket",
    "replywatch_mailbox_messages",
    "replywatch_source_up",
    "replywatch_source_last_success_timestamp_seconds",
    "replywatch_source_errors_total",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def promtool() -> Promtool:
    """The installed promtool (a missing one fails these tests)."""
    return Promtool.find()


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested (collapsed) panels included, rows themselves left out."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """``panel title / refId`` -> PromQL, for every query of every panel."""
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in panels(dashboard)
        for target in panel["targets"]
    }


def substitute(expr: str) -> str:
    """The expression with Grafana's ``$var``, ``${var}``, ``${var:fmt}`` and ``[[var]]`` replaced."""

    def value(found: re.Match[str]) -> str:
        name = next(group for group in found.groups() if group)
        if name not in VARIABLES:
            raise AssertionError(f"unknown Grafana variable {found.group(0)!r} in {expr!r}")
        return VARIABLES[name]

    return _VARIABLE.sub(value, expr)


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    """Importable anywhere: schema ~39, a data source variable, the team variable, unique ids."""
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] == "replywatch"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    team = variables["team"]
    assert (team["type"], team["datasource"], team["definition"]) == ("query", DATASOURCE, TEAM_QUERY)
    assert team["query"]["query"] == TEAM_QUERY
    ids = [panel["id"] for panel in dashboard["panels"]] + [
        nested["id"]
        for row in dashboard["panels"]
        if row["type"] == "row"
        for nested in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_queries_the_data_source_variable(dashboard: dict[str, Any]) -> None:
    """No data source uid of one Grafana baked in: panels and their queries use ${DS_PROMETHEUS}."""
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, f"{panel['title']} / {target['refId']}"


def test_panels_fit_the_grid(dashboard: dict[str, Any]) -> None:
    """Within 24 columns and not on top of each other."""
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_expressions_parse(dashboard: dict[str, Any], promtool: Promtool, tmp_path: Path) -> None:
    """promtool parses and type-checks every query (and the team variable's metric selector)."""
    queries = {where: substitute(expr) for where, expr in expressions(dashboard).items()}
    queries["variable team"] = "replywatch_awaiting"
    result = promtool.check_expressions(queries, tmp_path)
    assert result.returncode == 0, result.describe()


def test_expressions_select_only_exposed_series(dashboard: dict[str, Any]) -> None:
    """A renamed or dropped metric shows up here rather than as an empty panel."""
    exposed = exposed_series_names()
    unknown = {
        where: sorted(metric_names(substitute(expr)) - exposed)
        for where, expr in expressions(dashboard).items()
        if metric_names(substitute(expr)) - exposed
    }
    assert unknown == {}
    assert "replywatch_awaiting" in exposed
    assert "team" in exposed_label_names()["replywatch_awaiting"]


def test_team_filter_applies_to_every_team_series(dashboard: dict[str, Any]) -> None:
    """Each selector of a series that has a team label filters on ``team=~"$team"``."""
    labels = exposed_label_names()
    for where, expr in expressions(dashboard).items():
        for name in metric_names(substitute(expr)):
            if "team" in labels.get(name, ()):
                selectors = re.findall(rf"(?<![\w:]){re.escape(name)}\s*(\{{[^}}]*\}})?", expr)
                assert selectors and all('team=~"$team"' in s for s in selectors), f"{where}: {name}"


def test_dashboard_charts_what_matters(dashboard: dict[str, Any]) -> None:
    """Waiting customers, breaches, response times, members, mailboxes and source health are all there."""
    used = set().union(*(metric_names(substitute(expr)) for expr in expressions(dashboard).values()))
    assert CHARTED - used == set()

"""config/grafana/: the committed dashboards are what the code generates, and their PromQL parses and selects
only series replywatch exposes.

Grafana variables are substituted with sample values first (``$team`` -> ``support``...); promtool parses
every expression (as recording rules of a generated rule file), and the series each one selects are checked
against a real scrape of the daemon (tests/test_metrics_exposition). tests/test_alerting_end_to_end.py runs
the same expressions against a real Prometheus scraping replywatch.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.servers.promtool import Promtool, metric_names
from tests.test_metrics_exposition import exposed_label_names, exposed_series_names

GRAFANA = Path(__file__).resolve().parent.parent / "config" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TEAM_QUERY = "label_values(replywatch_awaiting, team)"
UIDS = {
    "team-overview": "replywatch-team",
    "team-members": "replywatch-members",
    "source-health": "replywatch-sources",
}
# Sample values for Grafana's built-in and the dashboards' variables, only to make the PromQL parse.
VARIABLES = {"__rate_interval": "5m", "__interval": "1h", "__range": "7d", "team": "support"}
# What the dashboards must chart between them: every customer-facing family and the source health ones.
CHARTED = {
    "replywatch_awaiting",
    "replywatch_awaiting_oldest_timestamp_seconds",
    "replywatch_breaches_open",
    "replywatch_breaches_total",
    "replywatch_response_seconds_bucket",
    "replywatch_member_response_seconds_bucket",
    "replywatch_mailbox_messages",
    "replywatch_awaiting_oldest_business_seconds",
    "replywatch_answer_target_seconds",
    "replywatch_answered_on_time_ratio",
    "replywatch_warnings_open",
    "replywatch_team_complete",
    "replywatch_outbox_pending",
    "replywatch_notifications_total",
    "replywatch_source_up",
    "replywatch_source_last_success_timestamp_seconds",
    "replywatch_source_errors_total",
    "up",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def generator() -> ModuleType:
    """config/grafana/dashboards.py, the code the dashboards are generated from."""
    spec = importlib.util.spec_from_file_location("replywatch_dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the code runs
    spec.loader.exec_module(module)
    return module


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every committed dashboard by file name (without ``.json``)."""
    return {
        path.stem: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested (collapsed) panels included, rows themselves left out."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels") or []
        else:
            yield panel


def expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """``dashboard uid / panel title / refId`` -> PromQL, for every query of every panel."""
    return {
        f"{dashboard['uid']} / {panel['title']} / {target['refId']}": target["expr"]
        for panel in panels(dashboard)
        for target in panel["targets"]
    }


def all_expressions() -> dict[str, str]:
    """The queries of every dashboard together."""
    out: dict[str, str] = {}
    for board in load_dashboards().values():
        out.update(expressions(board))
    return out


def substitute(expr: str, values: dict[str, str] = VARIABLES) -> str:
    """The expression with Grafana's ``$var``, ``${var}``, ``${var:fmt}`` and ``[[var]]`` replaced."""

    def value(found: re.Match[str]) -> str:
        name = next(group for group in found.groups() if group)
        if name not in values:
            raise AssertionError(f"unknown Grafana variable {found.group(0)!r} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


@pytest.fixture(scope="module")
def promtool() -> Promtool:
    """The installed promtool (a missing one fails these tests)."""
    return Promtool.find()


def test_committed_json_is_what_the_code_generates() -> None:
    """Edit dashboards.py, run it, commit both: a hand edit of the JSON (or a stale one) fails here."""
    code = generator()
    assert set(code.DASHBOARDS) == set(load_dashboards())
    for name in code.DASHBOARDS:
        committed = (GRAFANA / "dashboards" / f"{name}.json").read_text()
        assert committed == code.render(name), (
            f"regenerate with: uv run python config/grafana/dashboards.py ({name})"
        )


@pytest.mark.parametrize("name", sorted(UIDS))
def test_dashboard_shape(name: str) -> None:
    """A fixed uid, a $datasource variable instead of __inputs, the $team variable, a readable title."""
    board = load_dashboards()[name]
    assert board["uid"] == UIDS[name]
    assert "__inputs" not in board
    assert board["title"].startswith("replywatch: ")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    if name != "source-health":
        team = variables["team"]
        assert (team["type"], team["datasource"], team["query"]["query"]) == ("query", DATASOURCE, TEAM_QUERY)
    for panel in panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        assert panel.get("description"), f"{panel['title']} says nothing to a reader"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE


@pytest.mark.parametrize("name", sorted(UIDS))
def test_panels_fit_the_grid(name: str) -> None:
    """Within 24 columns and not on top of each other."""
    taken: dict[tuple[int, int], str] = {}
    for panel in load_dashboards()[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


HOURS = "suffix:h"  # Grafana's "h" unit would show 31 hours as "1.3 day"


def test_units_read_as_hours_and_shares() -> None:
    """Times a manager reads are in hours ("31.0 h", never "1.3 day"), shares are percentages; hour panels
    are divided by 3600 and say which hours they count."""
    hour_panels = 0
    for board in load_dashboards().values():
        for panel in panels(board):
            defaults = panel["fieldConfig"]["defaults"]
            unit = defaults["unit"]
            exprs = [t["expr"] for t in panel["targets"]]
            assert unit not in {"h", "d", "dtdurations", "dthms"}, f"{panel['title']}: rescaled {unit}"
            if unit == HOURS:
                hour_panels += 1
                assert defaults.get("decimals") == 1, panel["title"]
                assert all(e.rstrip().endswith("/ 3600") for e in exprs), panel["title"]
                assert "hours" in panel["title"], f"{panel['title']}: business or clock hours?"
            if "within the team's target" in panel["title"] or "share" in panel["title"]:
                assert unit == "percentunit", panel["title"]
    assert hour_panels >= 5


def steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    """The panel's colour thresholds as (from, colour)."""
    found = panel["fieldConfig"]["defaults"].get("thresholds") or {"steps": []}
    return [(step["value"], step["color"]) for step in found["steps"]]


def test_waits_are_coloured_at_each_teams_own_target() -> None:
    """No hour panel carries a fixed deadline as a threshold: the team's target comes from
    replywatch_answer_target_seconds, as a share (red from 100 %) or as a dashed line beside the wait."""
    boards = load_dashboards()
    for board in boards.values():
        for panel in panels(board):
            if panel["fieldConfig"]["defaults"]["unit"] == HOURS:
                assert len(steps(panel)) <= 1, f"{panel['title']}: a fixed threshold in hours"
    overview = {panel["title"]: panel for panel in panels(boards["team-overview"])}
    share = overview["Longest wait, share of the team's target (business hours)"]
    (expr,) = [t["expr"] for t in share["targets"]]
    assert "replywatch_awaiting_oldest_business_seconds" in expr
    assert expr.rstrip().endswith('/ max by (channel) (replywatch_answer_target_seconds{team="$team"})')
    assert steps(share) == [(None, "green"), (0.75, "orange"), (1.0, "red")]
    for title in (
        "Longest wait against the team's target (business hours)",
        "Response time (business hours), median and 90th percentile over a day",
    ):
        legends = {t["legendFormat"]: t["expr"] for t in overview[title]["targets"]}
        assert "replywatch_answer_target_seconds" in legends["target {{channel}}"], title
        (dashed,) = overview[title]["fieldConfig"]["overrides"]
        assert dashed["matcher"] == {"id": "byRegexp", "options": "/^target/"}


def test_expressions_parse(promtool: Promtool, tmp_path: Path) -> None:
    """promtool parses and type-checks every query."""
    queries = {where: substitute(expr) for where, expr in all_expressions().items()}
    result = promtool.check_expressions(queries, tmp_path)
    assert result.returncode == 0, result.describe()


def test_expressions_select_only_exposed_series() -> None:
    """A renamed or dropped metric shows up here rather than as an empty panel."""
    exposed = exposed_series_names() | {"up"}
    unknown = {
        where: sorted(metric_names(substitute(expr)) - exposed)
        for where, expr in all_expressions().items()
        if metric_names(substitute(expr)) - exposed
    }
    assert unknown == {}


def test_team_filter_applies_to_every_team_series() -> None:
    """On a dashboard with the Team variable, each selector of a series that has a team label filters on
    ``team="$team"`` (source health shows every team)."""
    labels = exposed_label_names()
    with_team = {
        where: expr
        for board in load_dashboards().values()
        if "team" in {v["name"] for v in board["templating"]["list"]}
        for where, expr in expressions(board).items()
    }
    assert with_team
    for where, expr in with_team.items():
        for name in metric_names(substitute(expr)):
            if "team" in labels.get(name, ()):
                selectors = re.findall(rf"(?<![\w:]){re.escape(name)}(?![\w:])\s*(\{{[^}}]*\}})?", expr)
                assert selectors and all('team="$team"' in s for s in selectors), f"{where}: {name}"


def test_dashboards_chart_what_matters() -> None:
    """Waiting customers, breaches, response times, members, mailboxes and source health are all there."""
    used = set().union(*(metric_names(substitute(expr)) for expr in all_expressions().values()))
    assert CHARTED - used == set()


def test_provisioning_points_at_the_dashboards() -> None:
    """Grafana's file provider loads the dashboards folder; the data source is the one $datasource picks."""
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "replywatch.yaml").read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert (entry["type"], entry["options"]["path"]) == ("file", "/var/lib/grafana/dashboards/replywatch")
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"


def test_docs_describe_every_panel_with_its_promql() -> None:
    """docs/dashboards.md has a row per panel: its title, then each of its queries as written."""
    doc = (GRAFANA.parent.parent / "docs" / "dashboards.md").read_text()
    lines = [line for line in doc.splitlines() if line.startswith("| ")]
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines}
    missing = []
    for board in load_dashboards().values():
        for panel in panels(board):
            row = rows.get(panel["title"])
            if row is None:
                missing.append(f"{board['uid']}: no row for {panel['title']!r}")
                continue
            for target in panel["targets"]:
                if f"`{target['expr']}`" not in row:
                    missing.append(f"{board['uid']} / {panel['title']}: {target['expr']}")
    assert missing == []

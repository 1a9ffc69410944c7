"""replywatch's Grafana dashboards as code (grafana-foundation-sdk); writes dashboards/*.json beside it.

Regenerate after an edit with ``uv run python config/grafana/dashboards.py`` and commit the JSON:
tests/test_grafana_dashboards.py fails when the committed JSON is not what this code generates. Every
dashboard has a fixed uid, a ``$datasource`` variable (any Prometheus, no ``__inputs``) and a ``$team``
variable; docs/dashboards.md describes each panel with its PromQL.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TARGET_HOURS = 24.0
"""The response target the thresholds are coloured at: a reply_within of 24 business hours (the default)."""


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and how its series are named in the legend."""

    expr: str
    legend: str = ""


def _query(q: Query, ref: str, instant: bool) -> prom.Dataquery:
    out = prom.Dataquery().expr(q.expr).ref_id(ref).datasource(DATASOURCE)
    if q.legend:
        out = out.legend_format(q.legend)
    return out.instant() if instant else out.range()


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


HOURS_STEPS = ((None, "green"), (TARGET_HOURS * 0.75, "orange"), (TARGET_HOURS, "red"))
"""Green under three quarters of the target, orange up to it, red past it."""
RATIO_STEPS = ((None, "red"), (0.9, "orange"), (0.95, "green"))
COUNT_STEPS = ((None, "green"), (1.0, "red"))


def stat_panel(
    title: str, description: str, unit: str, queries: list[Query], steps: tuple[tuple[float | None, str], ...]
) -> stat.Panel:
    """A big number (one per series), coloured by thresholds."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .thresholds(_thresholds(*steps))
        .height(5)
        .span(6)
    )
    for n, q in enumerate(queries):
        panel = panel.with_target(_query(q, chr(ord("A") + n), instant=True))
    return panel


def graph_panel(
    title: str,
    description: str,
    unit: str,
    queries: list[Query],
    steps: tuple[tuple[float | None, str], ...] | None = None,
    span: int = 12,
) -> timeseries.Panel:
    """Series over time, with the thresholds drawn as lines where there are any."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(span)
    )
    if steps is not None:
        panel = panel.thresholds(_thresholds(*steps))
    for n, q in enumerate(queries):
        panel = panel.with_target(_query(q, chr(ord("A") + n), instant=False))
    return panel


def bars_panel(title: str, description: str, unit: str, queries: list[Query]) -> bargauge.Panel:
    """One bar per series (members, folders), now."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .thresholds(_thresholds(*HOURS_STEPS))
        .height(8)
        .span(12)
    )
    for n, q in enumerate(queries):
        panel = panel.with_target(_query(q, chr(ord("A") + n), instant=True))
    return panel


def _base(uid: str, title: str, description: str, with_team: bool = True) -> dash.Dashboard:
    board = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["replywatch"])
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(dash.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    if with_team:
        board = board.with_variable(
            dash.QueryVariable("team")
            .label("Team")
            .datasource(DATASOURCE)
            .query({"query": "label_values(replywatch_awaiting, team)", "refId": "team"})
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    return board


def within_24h_ratio(window: str, selector: str) -> str:
    """Share of responses in ``window`` that came within 24 business hours (the 86400 s bucket)."""
    return (
        f'sum(increase(replywatch_response_seconds_bucket{{{selector},le=~"86400(\\\\.0)?"}}[{window}]))'
        f' / sum(increase(replywatch_response_seconds_bucket{{{selector},le="+Inf"}}[{window}]))'
    )


def team_overview() -> dash.Dashboard:
    """What a team lead opens first: who waits, for how long, breaches, how fast the team answers."""
    team = 'team="$team"'
    return (
        _base(
            "replywatch-team",
            "replywatch: team overview",
            "Customers waiting for the team, breaches of its promises and how fast it answers.",
        )
        .with_row(dash.Row("Right now"))
        .with_panel(
            stat_panel(
                "Customers waiting now",
                "Customer emails and missed calls that have had no answer from the team yet.",
                "short",
                [Query(f"sum by (channel) (replywatch_awaiting{{{team}}})", "{{channel}}")],
                ((None, "green"), (1.0, "orange"), (10.0, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait now (hours on the clock)",
                "How long the customer who has waited longest has waited, weekends and nights included.",
                "h",
                [
                    Query(
                        f"max by (channel) (time() - replywatch_awaiting_oldest_timestamp_seconds{{{team}}})"
                        " / 3600",
                        "{{channel}}",
                    )
                ],
                HOURS_STEPS,
            )
        )
        .with_panel(
            stat_panel(
                "Open breaches",
                "Promises broken right now: customers past the team's deadline, inboxes over their limits.",
                "short",
                [Query(f"sum by (rule) (replywatch_breaches_open{{{team}}})", "{{rule}}")],
                COUNT_STEPS,
            )
        )
        .with_panel(
            stat_panel(
                "Missed calls waiting for a call-back",
                "Missed customer calls nobody has returned yet.",
                "short",
                [Query(f'sum(replywatch_awaiting{{{team},channel="phone"}}) or vector(0)', "calls")],
                ((None, "green"), (1.0, "orange"), (5.0, "red")),
            )
        )
        .with_row(dash.Row("Keeping the promise"))
        .with_panel(
            stat_panel(
                "Answered within 24 business hours, last 7 days",
                "Share of customers answered within 24 business hours, of those answered in the last 7 days.",
                "percentunit",
                [Query(within_24h_ratio("7d", team), "7 days")],
                RATIO_STEPS,
            )
        )
        .with_panel(
            stat_panel(
                "Answered within 24 business hours, last 30 days",
                "The same share over the last 30 days.",
                "percentunit",
                [Query(within_24h_ratio("30d", team), "30 days")],
                RATIO_STEPS,
            )
        )
        .with_panel(
            graph_panel(
                "Response time (business hours), median and 90th percentile over a day",
                "Time from a customer's contact to the team's answer, counted in opening hours: half the "
                "customers were answered faster than the median, nine in ten faster than the 90th percentile",
                "h",
                [
                    Query(
                        "histogram_quantile(0.5, sum by (channel, le) "
                        f"(increase(replywatch_response_seconds_bucket{{{team}}}[1d]))) / 3600",
                        "median {{channel}}",
                    ),
                    Query(
                        "histogram_quantile(0.9, sum by (channel, le) "
                        f"(increase(replywatch_response_seconds_bucket{{{team}}}[1d]))) / 3600",
                        "90th percentile {{channel}}",
                    ),
                ],
                HOURS_STEPS,
            )
        )
        .with_row(dash.Row("Over time"))
        .with_panel(
            graph_panel(
                "Customers waiting",
                "How many customers waited for an answer at each moment.",
                "short",
                [Query(f"sum by (channel) (replywatch_awaiting{{{team}}})", "{{channel}}")],
            )
        )
        .with_panel(
            graph_panel(
                "Breaches opened per day",
                "How many promises were broken in each day, by rule.",
                "short",
                [Query(f"sum by (rule) (increase(replywatch_breaches_total{{{team}}}[1d]))", "{{rule}}")],
            )
        )
        .with_row(dash.Row("Inboxes"))
        .with_panel(
            graph_panel(
                "Inbox sizes",
                "Messages in each watched inbox: all, unread, and waiting for an answer (replywatch's own "
                "count of customers waiting, not the mail client's answered mark).",
                "short",
                [
                    Query(
                        f'replywatch_mailbox_messages{{{team},folder="inbox"}}',
                        "{{mailbox}} {{state}}",
                    )
                ],
                span=24,
            )
        )
    )


def member_kpis() -> dash.Dashboard:
    """Each member's service KPI: how many customers they answered and how fast (with member_metrics)."""
    team = 'team="$team"'
    return (
        _base(
            "replywatch-members",
            "replywatch: team members",
            "How fast each member answered customers in the last 30 days (teams with member_metrics: true).",
        )
        .with_panel(
            bars_panel(
                "Median response time per member, 30 days (business hours)",
                "Half of each member's answers came faster than this, counted in opening hours.",
                "h",
                [
                    Query(
                        "histogram_quantile(0.5, sum by (member, le) "
                        f"(increase(replywatch_member_response_seconds_bucket{{{team}}}[30d]))) / 3600",
                        "{{member}}",
                    )
                ],
            )
        )
        .with_panel(
            bars_panel(
                "Customers answered per member, 30 days",
                "How many customer contacts each member answered.",
                "short",
                [
                    Query(
                        "sum by (member) "
                        f"(increase(replywatch_member_response_seconds_count{{{team}}}[30d]))",
                        "{{member}}",
                    )
                ],
            )
        )
    )


def source_health() -> dash.Dashboard:
    """For whoever runs replywatch: can it read every mailbox and call log, and is it scraped."""
    return (
        _base(
            "replywatch-sources",
            "replywatch: source health",
            "Whether replywatch can read every mailbox and call log, and when it last did.",
            with_team=False,
        )
        .with_panel(
            stat_panel(
                "Sources readable",
                "1: the last poll of the source succeeded; 0: it failed (its teams' numbers are stale).",
                "short",
                [Query("replywatch_source_up", "{{source}}")],
                ((None, "red"), (1.0, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Minutes since the last successful poll",
                "How long ago each source was last read completely.",
                "m",
                [Query("(time() - replywatch_source_last_success_timestamp_seconds) / 60", "{{source}}")],
                ((None, "green"), (5.0, "orange"), (15.0, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "replywatch scraped",
                "1: Prometheus reaches replywatch; 0: it does not, and nobody hears of waiting customers.",
                "short",
                [Query('up{job="replywatch"}', "{{instance}}")],
                ((None, "red"), (1.0, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Configuration reload",
                "1: the last configuration reload succeeded; 0: replywatch kept the previous configuration.",
                "short",
                [Query("replywatch_config_last_reload_successful", "{{instance}}")],
                ((None, "red"), (1.0, "green")),
            )
        )
        .with_panel(
            graph_panel(
                "Failed polls per hour",
                "Polls that failed, by source and reason (transient, auth, config).",
                "short",
                [
                    Query(
                        "sum by (source, reason) (increase(replywatch_source_errors_total[1h]))",
                        "{{source}} {{reason}}",
                    )
                ],
            )
        )
        .with_panel(
            graph_panel(
                "Poll duration, 90th percentile (seconds)",
                "How long one poll of each source takes.",
                "s",
                [
                    Query(
                        "histogram_quantile(0.9, sum by (source, le) "
                        "(increase(replywatch_source_poll_seconds_bucket[1h])))",
                        "{{source}}",
                    )
                ],
            )
        )
    )


DASHBOARDS = {"team-overview": team_overview, "team-members": member_kpis, "source-health": source_health}
"""File name (without ``.json``) -> the dashboard it holds."""


def render(name: str) -> str:
    """The JSON text of one dashboard, as committed."""
    built = DASHBOARDS[name]().build()
    data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write every dashboard's JSON under ``dashboards/``."""
    OUT.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        (OUT / f"{name}.json").write_text(render(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())

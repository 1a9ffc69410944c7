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
TEAM = 'team="$team"'


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


Steps = tuple[tuple[float | None, str], ...]
HOURS = "suffix:h"
"""Hours as hours: Grafana's own "h" unit shows 31 hours as "1.3 day", this custom unit as "31.0 h"."""


def _thresholds(steps: Steps) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


SHARE_OF_TARGET_STEPS: Steps = ((None, "green"), (0.75, "orange"), (1.0, "red"))
"""A wait as a share of the team's own target: green under three quarters, orange up to it, red past it."""
RATIO_STEPS: Steps = ((None, "red"), (0.9, "orange"), (0.95, "green"))
"""The share answered on time: red under 90 %, orange under 95 %, green from 95 %."""
COUNT_STEPS: Steps = ((None, "green"), (1.0, "red"))
WARNING_STEPS: Steps = ((None, "green"), (1.0, "orange"))
UP_STEPS: Steps = ((None, "red"), (1.0, "green"))
NEUTRAL: Steps = ((None, "blue"),)
"""For figures with no threshold of their own (a wall-clock wait, a count of answers)."""
YES_NO: list[model.ValueMapping] = [
    model.ValueMap(
        options={
            "0": model.ValueMappingResult(text="no", color="red", index=0),
            "1": model.ValueMappingResult(text="yes", color="green", index=1),
        }
    )
]
"""1 and 0 read as yes and no."""


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: list[Query],
    steps: Steps,
    no_value: str | None = None,
    mappings: list[model.ValueMapping] | None = None,
) -> stat.Panel:
    """A big number (one per series), coloured by thresholds."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .thresholds(_thresholds(steps))
        .height(5)
        .span(6)
    )
    if unit == HOURS:
        panel = panel.decimals(1)
    if no_value is not None:
        panel = panel.no_value(no_value)
    if mappings is not None:
        panel = panel.mappings(mappings)
    for n, q in enumerate(queries):
        panel = panel.with_target(_query(q, chr(ord("A") + n), instant=True))
    return panel


def graph_panel(
    title: str,
    description: str,
    unit: str,
    queries: list[Query],
    steps: Steps | None = None,
    span: int = 12,
    percent: bool = False,
) -> timeseries.Panel:
    """Series over time; a series whose legend starts with "target" is drawn dashed."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(span)
        .with_override(
            model.MatcherConfig(id_val="byRegexp", options="/^target/"),
            [model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})],
        )
    )
    if unit == HOURS:
        panel = panel.decimals(1)
    if percent:
        panel = panel.min(0).max(1)
    if steps is not None:
        panel = panel.thresholds(_thresholds(steps))
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
        .thresholds(_thresholds(NEUTRAL))
        .height(8)
        .span(12)
    )
    if unit == HOURS:
        panel = panel.decimals(1)
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


# The longest wait in business hours; 0 for a channel where nobody waits (replywatch_awaiting always has a
# series per team and channel, the oldest wait only while someone waits).
OLDEST_BUSINESS = (
    f"(max by (channel) (replywatch_awaiting_oldest_business_seconds{{{TEAM}}})"
    f" or max by (channel) (replywatch_awaiting{{{TEAM}}}) * 0)"
)
TARGET = f"max by (channel) (replywatch_answer_target_seconds{{{TEAM}}})"
"""The team's own deadline per channel, in business seconds (none for a rule that counts wall-clock time)."""
NO_TARGET = "no target in business hours"


def on_time(window: str) -> str:
    """Share of the team's decided contacts of ``window`` answered within its own target."""
    return f'max by (channel) (replywatch_answered_on_time_ratio{{{TEAM},window="{window}"}})'


def response_quantile(q: float, window: str) -> str:
    """The ``q`` quantile of response times over ``window``, per channel, in hours."""
    return (
        f"histogram_quantile({q}, sum by (channel, le) "
        f"(increase(replywatch_response_seconds_bucket{{{TEAM}}}[{window}]))) / 3600"
    )


def team_overview() -> dash.Dashboard:
    """What a team lead opens first: who waits, how long against the target, how well the team keeps it."""
    return (
        _base(
            "replywatch-team",
            "replywatch: team overview",
            "Customers waiting for the team, how long against the team's own target, breaches of its "
            "promises and how fast it answers.",
        )
        .with_row(dash.Row("Right now"))
        .with_panel(
            stat_panel(
                "Customers waiting now",
                "Customer emails and missed calls that have had no answer from the team yet, per channel.",
                "short",
                [Query(f"sum by (channel) (replywatch_awaiting{{{TEAM}}})", "{{channel}}")],
                ((None, "green"), (1.0, "orange"), (10.0, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait now (business hours)",
                "How long the customer who has waited longest has waited, counted in the team's opening "
                "hours (nights, weekends and holidays add nothing); 0 when nobody waits. The next panel "
                "compares it with the team's target.",
                HOURS,
                [Query(f"{OLDEST_BUSINESS} / 3600", "{{channel}}")],
                NEUTRAL,
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait, share of the team's target (business hours)",
                "The longest wait as a share of the time the team promises to answer in (its own "
                "reply_within or callback_within): 100 % is the deadline. Green below 75 %, orange up to "
                "100 %, red past it. A team whose rule counts clock time has no business-hours target.",
                "percentunit",
                [Query(f"{OLDEST_BUSINESS} / {TARGET}", "{{channel}}")],
                SHARE_OF_TARGET_STEPS,
                no_value=NO_TARGET,
            )
        )
        .with_panel(
            stat_panel(
                "Customers close to their deadline (warnings)",
                "Customers past the warning point of a rule (its warn_before) and not yet due, per rule.",
                "short",
                [Query(f"sum by (rule) (replywatch_warnings_open{{{TEAM}}})", "{{rule}}")],
                WARNING_STEPS,
            )
        )
        .with_panel(
            stat_panel(
                "Open breaches",
                "Promises broken right now: customers past the team's deadline, inboxes over their limits.",
                "short",
                [Query(f"sum by (rule) (replywatch_breaches_open{{{TEAM}}})", "{{rule}}")],
                COUNT_STEPS,
            )
        )
        .with_panel(
            stat_panel(
                "Missed calls waiting for a call-back",
                "Missed customer calls nobody has returned yet (0 for a team without a phone line).",
                "short",
                [Query(f'sum(replywatch_awaiting{{{TEAM},channel="phone"}}) or vector(0)', "calls")],
                ((None, "green"), (1.0, "orange"), (5.0, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Longest wait now (hours on the clock)",
                "The same longest wait with nights, weekends and holidays included: what the customer "
                "lived through. The team's target counts business hours; the share of the target above "
                "compares with it.",
                HOURS,
                [
                    Query(
                        f"max by (channel) (time() - replywatch_awaiting_oldest_timestamp_seconds{{{TEAM}}})"
                        " / 3600",
                        "{{channel}}",
                    )
                ],
                NEUTRAL,
            )
        )
        .with_panel(
            stat_panel(
                "Figures up to date (every source read)",
                "yes: every mailbox and call log of the team has been read recently. no: one of them "
                "cannot be read, so these figures are those of the last complete check and no new "
                "warning or breach opens; the source health dashboard says which source.",
                "short",
                [Query(f"min(replywatch_team_complete{{{TEAM}}})", "up to date")],
                UP_STEPS,
                mappings=YES_NO,
            )
        )
        .with_row(dash.Row("Keeping the promise"))
        .with_panel(
            stat_panel(
                "Answered within the team's target, last 7 days",
                "Of the customers who wrote or called in the last 7 days and were answered or became "
                "overdue, the share answered within the team's own target.",
                "percentunit",
                [Query(on_time("7d"), "{{channel}}")],
                RATIO_STEPS,
                no_value="nobody answered or overdue yet",
            )
        )
        .with_panel(
            stat_panel(
                "Answered within the team's target, last 30 days",
                "The same share over the last 30 days.",
                "percentunit",
                [Query(on_time("30d"), "{{channel}}")],
                RATIO_STEPS,
                no_value="nobody answered or overdue yet",
            )
        )
        .with_panel(
            stat_panel(
                "The team's target (business hours)",
                "How long the team promises customers to wait at most for an answer, in its opening "
                "hours: the within of its reply_within (email) and callback_within (phone) rules.",
                HOURS,
                [Query(f"{TARGET} / 3600", "{{channel}}")],
                NEUTRAL,
                no_value=NO_TARGET,
            )
        )
        .with_panel(
            stat_panel(
                "Customers answered, last 7 days",
                "How many customer contacts the team answered in the last 7 days.",
                "short",
                [
                    Query(
                        f"sum by (channel) (increase(replywatch_response_seconds_count{{{TEAM}}}[7d]))",
                        "{{channel}}",
                    )
                ],
                NEUTRAL,
            )
        )
        .with_panel(
            graph_panel(
                "Longest wait against the team's target (business hours)",
                "The longest wait at each moment, counted in opening hours, and the team's target "
                "(dashed): a wait above the dashed line is a customer past the deadline.",
                HOURS,
                [
                    Query(
                        f"max by (channel) (replywatch_awaiting_oldest_business_seconds{{{TEAM}}}) / 3600",
                        "longest wait {{channel}}",
                    ),
                    Query(f"{TARGET} / 3600", "target {{channel}}"),
                ],
            )
        )
        .with_panel(
            graph_panel(
                "Response time (business hours), median and 90th percentile over a day",
                "Time from a customer's contact to the team's answer, counted in opening hours (clock "
                "hours for a team whose rule counts clock time): half of the answers of the past day "
                "came faster than the median, nine in ten faster than the 90th percentile. The dashed "
                "line is the team's target.",
                HOURS,
                [
                    Query(response_quantile(0.5, "1d"), "median {{channel}}"),
                    Query(response_quantile(0.9, "1d"), "90th percentile {{channel}}"),
                    Query(f"{TARGET} / 3600", "target {{channel}}"),
                ],
            )
        )
        .with_panel(
            graph_panel(
                "Answered within the team's target, 7 and 30 days",
                "The two shares above at each moment: of the customers of the past 7 (30) days who were "
                "answered or became overdue, the share answered within the team's target.",
                "percentunit",
                [
                    Query(on_time("7d"), "7 days {{channel}}"),
                    Query(on_time("30d"), "30 days {{channel}}"),
                ],
                percent=True,
            )
        )
        .with_panel(
            graph_panel(
                "Breaches opened per day",
                "How many promises were broken in each day, by rule.",
                "short",
                [Query(f"sum by (rule) (increase(replywatch_breaches_total{{{TEAM}}}[1d]))", "{{rule}}")],
            )
        )
        .with_row(dash.Row("Over time"))
        .with_panel(
            graph_panel(
                "Customers waiting",
                "How many customers waited for an answer at each moment.",
                "short",
                [Query(f"sum by (channel) (replywatch_awaiting{{{TEAM}}})", "{{channel}}")],
            )
        )
        .with_panel(
            graph_panel(
                "Open warnings and breaches",
                "Customers close to their deadline (warnings) and promises broken (breaches) at each "
                "moment, by rule.",
                "short",
                [
                    Query(f"sum by (rule) (replywatch_warnings_open{{{TEAM}}})", "warnings {{rule}}"),
                    Query(f"sum by (rule) (replywatch_breaches_open{{{TEAM}}})", "breaches {{rule}}"),
                ],
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
                        f'replywatch_mailbox_messages{{{TEAM},folder="inbox"}}',
                        "{{mailbox}} {{state}}",
                    )
                ],
                span=24,
            )
        )
    )


def member_kpis() -> dash.Dashboard:
    """Each member's service KPI: how many customers they answered and how fast (with member_metrics)."""
    return (
        _base(
            "replywatch-members",
            "replywatch: team members",
            "How fast each member answered customers in the last 30 days (teams with member_metrics: true).",
        )
        .with_row(dash.Row("The team"))
        .with_panel(
            stat_panel(
                "The team's target (business hours)",
                "How long the team promises customers to wait at most, in its opening hours, per channel: "
                "compare each member's median with it.",
                HOURS,
                [Query(f"{TARGET} / 3600", "{{channel}}")],
                NEUTRAL,
                no_value=NO_TARGET,
            )
        )
        .with_panel(
            stat_panel(
                "Answered within the team's target, last 30 days (whole team)",
                "Of the team's customers of the last 30 days who were answered or became overdue, the "
                "share answered within the target.",
                "percentunit",
                [Query(on_time("30d"), "{{channel}}")],
                RATIO_STEPS,
                no_value="nobody answered or overdue yet",
            )
        )
        .with_row(dash.Row("Per member"))
        .with_panel(
            bars_panel(
                "Median response time per member, 30 days (business hours)",
                "Half of each member's answers came faster than this, counted in opening hours (clock "
                "hours for a team whose rule counts clock time), email and phone together.",
                HOURS,
                [
                    Query(
                        "histogram_quantile(0.5, sum by (member, le) "
                        f"(increase(replywatch_member_response_seconds_bucket{{{TEAM}}}[30d]))) / 3600",
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
                        f"(increase(replywatch_member_response_seconds_count{{{TEAM}}}[30d]))",
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
        .with_row(dash.Row("Right now"))
        .with_panel(
            stat_panel(
                "Sources readable",
                "yes: the last poll of the source succeeded; no: it failed (its teams' numbers are stale).",
                "short",
                [Query("replywatch_source_up", "{{source}}")],
                UP_STEPS,
                mappings=YES_NO,
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
                "Teams judged on complete data",
                "yes: every source of the team has been read recently enough; no: one is missing, so the "
                "team's figures are those of its last complete check and no new warning or breach opens "
                "for it (until engine.judge_incomplete_after).",
                "short",
                [Query("min by (team) (replywatch_team_complete)", "{{team}}")],
                UP_STEPS,
                mappings=YES_NO,
            )
        )
        .with_panel(
            stat_panel(
                "replywatch scraped",
                "yes: Prometheus reaches replywatch; no: it does not, and nobody hears of waiting customers.",
                "short",
                [Query('up{job="replywatch"}', "{{instance}}")],
                UP_STEPS,
                mappings=YES_NO,
            )
        )
        .with_panel(
            stat_panel(
                "Configuration reload",
                "yes: the last configuration reload succeeded; no: replywatch kept the previous "
                "configuration.",
                "short",
                [Query("replywatch_config_last_reload_successful", "{{instance}}")],
                UP_STEPS,
                mappings=YES_NO,
            )
        )
        .with_panel(
            stat_panel(
                "Alert notifications waiting",
                "Alert mail and webhook posts not delivered yet, per notifier: due later (a step waiting "
                "for business hours) or being retried after a failure.",
                "short",
                [Query("sum by (notifier) (replywatch_outbox_pending)", "{{notifier}}")],
                ((None, "green"), (1.0, "orange")),
            )
        )
        .with_row(dash.Row("Over time"))
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
        .with_panel(
            graph_panel(
                "Alert notifications per hour, by outcome",
                "Notifications handled per hour: sent, failed (one per attempt, retried), expired "
                "(dropped undelivered) and cancelled (no longer true when due).",
                "short",
                [
                    Query(
                        "sum by (notifier, outcome) (increase(replywatch_notifications_total[1h]))",
                        "{{notifier}} {{outcome}}",
                    )
                ],
                span=24,
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

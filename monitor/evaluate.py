"""One evaluation: rebuild changed teams' awaiting items, run their rules, record breach transitions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.config import Config
from monitor.engine import EMAIL, TeamContext, build_awaiting
from monitor.rules.base import RULES, AwaitingView, Finding, Level, Rule, TeamView
from monitor.rules.holding_reply import HoldingReplyConfig
from monitor.rules.reply_within import ReplyWithin
from monitor.store.db import Store

log = logging.getLogger(__name__)


def team_context(config: Config, team: str) -> TeamContext:
    """The engine's view of a configured team."""
    cfg = config.teams[team]
    members = {address: member.name for member in cfg.members for address in member.email}
    return TeamContext(
        name=team,
        addresses=frozenset(cfg.addresses),
        members=members,
        internal_domains=frozenset(cfg.internal_domains),
        no_reply_senders=tuple(cfg.no_reply_senders),
        holding_phrases=tuple(
            phrase
            for rule in config.team_rules(team)
            if isinstance(rule, HoldingReplyConfig)
            for phrase in rule.phrases
        ),
        closing_thanks=cfg.closing_thanks,
        internal_forward_is_response=cfg.internal_forward_is_response,
    )


def build_rules(config: Config, team: str) -> list[Rule]:
    """The team's rule plugins, built from their configs."""
    return [RULES.get(rule.kind).factory(rule) for rule in config.team_rules(team)]


@dataclass
class Evaluator:
    """Keeps per-team state between evaluations (what was rebuilt when)."""

    store: Store
    config: Config
    _ingest_seen: dict[str, datetime | None] = field(default_factory=dict)
    _rules: dict[str, list[Rule]] = field(default_factory=dict)
    _evaluated: dict[str, datetime] = field(default_factory=dict)
    """When each team was last evaluated: answered items unchanged since then keep their verdict."""

    def reconfigure(self, config: Config) -> None:
        """Use a new config; every team is rebuilt at the next run."""
        self.config = config
        self._ingest_seen.clear()
        self._rules.clear()
        self._evaluated.clear()

    def rules(self, team: str) -> list[Rule]:
        """The built rules of ``team`` (cached per config)."""
        if team not in self._rules:
            self._rules[team] = build_rules(self.config, team)
        return self._rules[team]

    def run(self, now: datetime) -> dict[str, int]:
        """Evaluate every team; returns how many breach transitions each had."""
        return {team: self.run_team(team, now) for team in self.config.teams}

    def rebuild(self, team: str, now: datetime) -> bool:
        """Recompute ``team``'s awaiting items when its sources gained or changed messages."""
        sources = self.config.teams[team].sources
        latest = self.store.last_ingest(sources) if sources else None
        if team in self._ingest_seen and self._ingest_seen[team] == latest:
            return False
        since = now - self.config.engine.lookback
        oldest = self.store.oldest_open(team)
        if oldest is not None and oldest < since:
            since = oldest  # a customer waiting longer than the lookback can still be answered
        result = build_awaiting(self.store.messages(sources, since), team_context(self.config, team))
        changed = self.store.replace_awaiting(team, EMAIL, result.items, since, now)
        self._ingest_seen[team] = latest
        if changed:
            log.debug("rebuilt awaiting items", extra={"team": team, "changed": changed})
        return True

    def run_team(self, team: str, now: datetime) -> int:
        """Rebuild if needed, evaluate the rules, record transitions; returns the transition count."""
        self.rebuild(team, now)
        calendar = self.config.team_calendar(team)
        window = now - self.config.engine.lookback
        rows = self.store.awaiting_to_evaluate(team, window, self._evaluated.get(team))
        view = TeamView(
            team=team,
            calendar=calendar,
            awaiting=[_view(row) for row in rows],
        )
        rules = self.rules(team)
        self._record_timings(view, rules, rows)
        transitions: list[dict[str, Any]] = []
        for rule in rules:
            findings = rule.evaluate(view, now)
            transitions.extend(self._reconcile(team, rule.name, findings, now))
        self.store.apply_transitions(transitions)
        self._evaluated[team] = now
        for t in transitions:
            if (
                t["op"] in ("open", "escalate")
                and t.get("level", "breach") == "breach"
                and not t.get("resolved_at")
            ):
                log.info("breach opened", extra={"team": team, "rule": t["rule"]})
        return len(transitions)

    def _record_timings(self, view: TeamView, rules: Sequence[Rule], rows: Sequence[Any]) -> None:
        """Store each item's deadline and, once answered, its business response time (changes only)."""
        reply_rule = next((r for r in rules if isinstance(r, ReplyWithin)), None)
        business = reply_rule.config.business_hours if reply_rule is not None else True
        updates = []
        for row in rows:
            due = reply_rule.due_at(view, row.received_at) if reply_rule is not None else None
            seconds = None
            if row.responded_at is not None:
                seconds = (
                    view.calendar.business_seconds_between(row.received_at, row.responded_at)
                    if business
                    else (row.responded_at - row.received_at).total_seconds()
                )
            if (due, seconds) != (row.due_at, row.business_seconds):
                updates.append((row.id, due, seconds))
        self.store.set_timings(updates)

    def _reconcile(
        self, team: str, rule: str, findings: Sequence[Finding], now: datetime
    ) -> list[dict[str, Any]]:
        """Turn findings into transitions against the open rows: open, escalate, resolve."""
        open_rows = {row.subject: row for row in self.store.open_breaches(team) if row.rule == rule}
        new_breaches = [f.subject for f in findings if f.level is Level.BREACH and f.subject not in open_rows]
        history = self.store.breach_subjects(team, rule, new_breaches)
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for f in findings:
            seen.add(f.subject)
            row = open_rows.get(f.subject)
            base = {"team": team, "rule": rule, "subject": f.subject}
            if f.level is Level.BREACH:
                if row is None:
                    if f.subject in history:
                        continue  # recorded before (e.g. answered late, then re-read)
                    out.append(
                        base
                        | {
                            "op": "open",
                            "level": "breach",
                            "at": f.since or now,
                            "due_at": f.due_at,
                            "resolved_at": f.resolved_at,
                        }
                    )
                    continue
                if row.level != "breach":
                    out.append({"op": "escalate", "id": row.id, "at": f.since or now, "rule": rule})
                if f.resolved_at is not None:
                    out.append({"op": "resolve", "id": row.id, "at": f.resolved_at})
            elif f.level is Level.WARNING:
                if row is None:
                    out.append(
                        base | {"op": "open", "level": "warning", "at": f.since or now, "due_at": f.due_at}
                    )
            elif row is not None:
                out.append({"op": "resolve", "id": row.id, "at": now})
        for subject, row in open_rows.items():
            if subject not in seen:
                out.append({"op": "resolve", "id": row.id, "at": now})
        return out


def _view(row: Any) -> AwaitingView:
    return AwaitingView(
        key=row.item_key,
        channel=row.channel,
        customer=row.customer,
        received_at=row.received_at,
        responded_at=row.responded_at,
        acknowledged_at=row.acknowledged_at,
        responder=row.responder,
    )

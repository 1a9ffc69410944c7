"""One evaluation: rebuild changed teams' awaiting items, judge them with the verdict core, record breach
transitions."""

from __future__ import annotations

import functools
import logging
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from monitor import gc_pause
from monitor.awaiting import AwaitingItem, EngineResult
from monitor.breaches import BecameBreach, Opened, Transition, history_needed, reconcile
from monitor.config import Config
from monitor.engine import TeamContext, build_awaiting
from monitor.engine.answers import answer_across_channels
from monitor.engine.phone import PhoneOptions, PhoneTeam, build_phone_awaiting
from monitor.engine.slices import Window, build_awaiting_in_slices
from monitor.events import CallEvent, Channel, MailboxSnapshot, MessageEvent
from monitor.freshness import TeamFreshness
from monitor.rules.base import FOREVER, RULES, EngineOptions, Level, Rule
from monitor.store.db import Store, Timing, row_item
from monitor.store.outbox import Outbox
from monitor.verdict import TeamVerdict, evaluate_team

log = logging.getLogger(__name__)


def engine_options(config: Config, team: str) -> EngineOptions:
    """What the team's rules ask of the engine, merged."""
    options = EngineOptions()
    for rule in config.team_rules(team):
        options = options.merge(rule.engine_options())
    return options


def team_context(config: Config, team: str) -> TeamContext:
    """The email engine's view of a configured team, with the options its rules ask of the engine."""
    cfg = config.teams[team]
    members = {address: member.name for member in cfg.members for address in member.email}
    options = engine_options(config, team)
    return TeamContext(
        name=team,
        addresses=frozenset(cfg.addresses),
        members=members,
        internal_domains=frozenset(cfg.internal_domains),
        no_reply_senders=tuple(cfg.no_reply_senders),
        holding_phrases=options.holding_phrases,
        closing_thanks=cfg.closing_thanks,
        internal_forward_is_response=cfg.internal_forward_is_response,
    )


def phone_team(config: Config, team: str) -> PhoneTeam:
    """The phone engine's view of a configured team: its lines, its members' extensions, its hours."""
    cfg = config.teams[team]
    return PhoneTeam(
        name=team,
        lines=frozenset(cfg.lines),
        extensions={extension: member.name for member in cfg.members for extension in member.phone},
        calendar=config.team_calendar(team),
        options=PhoneOptions.from_rules(engine_options(config, team)),
    )


def team_awaiting(
    config: Config,
    team: str,
    messages: Sequence[MessageEvent],
    calls: Sequence[CallEvent],
    *,
    reasons: bool = True,
) -> EngineResult:
    """A team's awaiting items on every channel, answered across channels where the team says so, and
    why every other message or call opened none (used alike by ``replay`` and reports; without
    ``reasons``, no reasons for mail)."""
    context = team_context(config, team)
    email = build_awaiting(messages, context, reasons=reasons)
    return _all_channels(config, team, context, email, calls, lambda: messages)


def stored_team_awaiting(
    config: Config, team: str, window: Window, calls: Sequence[CallEvent]
) -> list[AwaitingItem]:
    """The items of :func:`team_awaiting` for the stored messages of ``window``, read in slices: the
    daemon's rebuild, whose memory must not grow with every message stored."""
    context = team_context(config, team)
    email = EngineResult(build_awaiting_in_slices(window, context), [])

    def messages() -> Iterator[MessageEvent]:  # read again only for answers across channels
        return (event for _, event in window.in_date_order())

    return _all_channels(config, team, context, email, calls, messages).items


def _all_channels(
    config: Config,
    team: str,
    context: TeamContext,
    email: EngineResult,
    calls: Sequence[CallEvent],
    messages: Callable[[], Iterable[MessageEvent]],
) -> EngineResult:
    """The email items with the phone items, answered across channels where the team says so (reading
    ``messages()`` then), in order of arrival."""
    phones = phone_team(config, team)
    phone = build_phone_awaiting(calls, phones) if calls else EngineResult([], [])
    items = [*email.items, *phone.items]
    if config.teams[team].cross_channel:
        items = answer_across_channels(items, messages(), calls, context, phones, config.contact_directory)
    items.sort(key=lambda item: (item.received_at, item.key))
    return EngineResult(items, [*email.unopened, *phone.unopened])


def team_mailboxes(store: Store, config: Config, team: str) -> list[MailboxSnapshot]:
    """The latest counts of every folder of the team's sources, ``unanswered`` being replywatch's own
    judgement (the team's open items per folder), not what the server's flags say."""
    sources = config.teams[team].sources
    if not sources:
        return []
    unanswered = store.unanswered_by_folder(team, sources)
    return [
        replace(row, unanswered=unanswered.get((row.source, row.folder), 0))
        for row in store.mailbox_counts(sources)
    ]


def build_rules(config: Config, team: str) -> list[Rule]:
    """The team's rule plugins, built from their configs."""
    return [RULES.get(rule.kind).factory(rule) for rule in config.team_rules(team)]


@dataclass
class Evaluator:
    """Keeps per-team state between evaluations (what was rebuilt when)."""

    store: Store
    config: Config
    _engine_stamps: dict[str, datetime | None] = field(default_factory=dict)
    _rules: dict[str, list[Rule]] = field(default_factory=dict)
    _evaluated: dict[str, datetime] = field(default_factory=dict)
    """When each team was last evaluated: answered items unchanged since then keep their verdict."""
    _recheck: dict[str, dict[str, datetime]] = field(default_factory=dict)
    """Per team, item key -> from when its findings may change although the item did not (the warning
    point, the deadline); an item not listed is judged again only when it changes."""

    def reconfigure(self, config: Config) -> None:
        """Use a new config; every team is rebuilt at the next run."""
        self.config = config
        self._engine_stamps.clear()
        self._rules.clear()
        self._evaluated.clear()
        self._recheck.clear()

    def rules(self, team: str) -> list[Rule]:
        """The built rules of ``team`` (cached per config)."""
        if team not in self._rules:
            self._rules[team] = build_rules(self.config, team)
        return self._rules[team]

    def run(self, now: datetime) -> dict[str, int]:
        """Evaluate every team (all taken as complete); returns how many breach transitions each had."""
        return {team: self.run_team(team, now) or 0 for team in self.config.teams}

    def judges(self, freshness: TeamFreshness | None, now: datetime) -> bool:
        """Whether a team with this freshness is judged now: on complete data, or once a source has been
        missing longer than ``engine.judge_incomplete_after`` (no silent blindness)."""
        if freshness is None or freshness.complete:
            return True
        return freshness.missing_for(now) >= self.config.engine.judge_incomplete_after

    def rebuild(self, team: str, now: datetime) -> bool:
        """Recompute ``team``'s awaiting items when a source added events or changed what the engine reads."""
        sources = self.config.teams[team].sources
        stamp = self.store.engine_stamp(sources) if sources else None
        if team in self._engine_stamps and self._engine_stamps[team] == stamp:
            return False
        since = now - self.config.engine.lookback
        oldest = self.store.oldest_open(team)
        if oldest is not None and oldest < since:
            since = oldest  # a customer waiting longer than the lookback can still be answered
        phone = [name for name in sources if self.config.sources[name].channel is Channel.PHONE]
        mail = [name for name in sources if name not in phone]
        # The items live on through the evaluation: no collector walking them meanwhile.
        with gc_pause.paused():
            calls = self.store.calls(phone, since) if phone else []
            with self.store.rebuild_window(mail, since) as window:
                built = stored_team_awaiting(self.config, team, window, calls)
            del calls
            changed = 0
            for channel in Channel:
                items = [item for item in built if item.channel is channel]
                changed += self.store.replace_awaiting(team, channel, items, since, now)
        self._engine_stamps[team] = stamp
        if changed:
            log.debug("rebuilt awaiting items", extra={"team": team, "changed": changed})
        return True

    def run_team(self, team: str, now: datetime, freshness: TeamFreshness | None = None) -> int | None:
        """Rebuild if needed, judge the items, record transitions; returns the transition count.

        A team whose ``freshness`` is incomplete is left as it was last judged (None), so that half its
        mail never opens a breach and its metrics keep the last complete verdict; past the outage limit
        it is judged, and what opens names the sources that could not be read.
        """
        if not self.judges(freshness, now):
            return None
        unreadable = freshness.sources if freshness is not None else ()
        rebuilt = self.rebuild(team, now)
        # Counted right after the rebuild, before the judging: a scrape that comes while the items are
        # judged finds the count kept (:meth:`Store.unanswered_by_folder`) instead of taking turns with
        # the judging to count it again.
        mailboxes = team_mailboxes(self.store, self.config, team)
        last = self._evaluated.get(team)
        recheck = self._recheck.get(team)
        # In steady state only what can have moved is judged: items changed since the last run and items
        # whose warning point or deadline has come. After a rebuild, a new config or a clock that went
        # back, every open item is judged again (and items that no longer exist get their breaches
        # resolved).
        incremental = not rebuilt and last is not None and recheck is not None and last <= now
        rows: Iterable[Any]
        if incremental:
            assert last is not None and recheck is not None
            due = [key for key, at in recheck.items() if at <= now]
            rows = self.store.awaiting_changed_or_named(team, last, due)
        else:
            window = now - self.config.engine.lookback
            rows = self.store.awaiting_to_evaluate(team, window, last)
            recheck = self._recheck[team] = {}
        # Each row goes once its item and stored timing are taken: after a rebuild that is every item of the
        # window, and a row holds columns no verdict reads.
        items: list[AwaitingItem] = []
        stored = _StoredTimings()
        shared: dict[Any, Any] = {}
        for row in rows:
            items.append(row_item(row, shared))
            stored.add(row.id, row.due_at, row.business_seconds, row.wall_seconds)
        del rows, shared
        verdict = evaluate_team(
            items,
            self.rules(team),
            self.config.team_calendar(team),
            now,
            team,
            mailboxes,
        )
        del items
        self._record_timings(stored, verdict)
        _note_rechecks(recheck, verdict, now)
        judged: set[str] | None = None
        if incremental:
            # The open rows of what was not judged again stay as they are: reconcile sees only the
            # subjects judged now.
            judged = {finding.subject for finding in verdict.findings}
            judged.update(item.item.key for item in verdict.items)
        # Only the findings are reconciled: the judged items go first (after a rebuild, every item of the
        # window) and the transitions take their place.
        findings = verdict.findings
        del stored, verdict
        open_breaches = self.store.open_breaches(team, judged)
        del judged
        history = self.store.breach_history(team, history_needed(open_breaches, findings))
        transitions = reconcile(team, open_breaches, findings, history, now, unreadable)
        del findings, open_breaches, history
        self.store.apply_transitions(transitions, then=self._owed(team, now))
        self._evaluated[team] = now
        _log_breaches(transitions)
        return len(transitions)

    def _owed(self, team: str, now: datetime) -> Callable[[Connection, Sequence[Transition]], None] | None:
        """What writes the team's notifications with its transitions (None: the team notifies nobody)."""
        cfg = self.config.teams[team]
        if cfg.notify is None:
            return None
        return functools.partial(
            Outbox(self.store).owe,
            team=team,
            notify=cfg.notify,
            members=cfg.escalation_members(),
            calendar=self.config.team_calendar(team),
            addressed=self.config.notifiers[cfg.notify.via].addressed,
            now=now,
        )

    def _record_timings(self, stored: _StoredTimings, verdict: TeamVerdict) -> None:
        """Store each item's deadline and, once answered, its response times (changed rows only);
        ``stored``: each judged item's row as it is stored."""
        self.store.set_timings(_changed_timings(stored, verdict))


def _changed_timings(stored: _StoredTimings, verdict: TeamVerdict) -> Iterator[Timing]:
    """The timing of each judged item whose stored timing differs, one at a time."""
    for (row_id, was), judged in zip(stored, verdict.items, strict=True):
        answered = judged.item.response is not None
        timing = Timing(
            row_id,
            judged.due_at,
            judged.business_seconds if answered else None,
            judged.wall_seconds if answered else None,
        )
        if _compact(timing.due_at, timing.business_seconds, timing.wall_seconds) != was:
            yield timing


_MISSING = float("-inf")
"""A missing time in :class:`_StoredTimings` (no deadline or response time is minus infinity)."""


def _compact(due_at: datetime | None, business: float | None, wall: float | None) -> tuple[float, ...]:
    """A timing as three exact floats: the deadline as a POSIX time (microseconds are distinct floats
    for centuries yet), the response times as they are stored."""
    return (
        due_at.timestamp() if due_at is not None else _MISSING,
        business if business is not None else _MISSING,
        wall if wall is not None else _MISSING,
    )


class _StoredTimings:
    """The judged items' rows and their timings as stored, in two arrays: after a rebuild that is every
    item of the window, where an object per item would cost ten times the memory."""

    def __init__(self) -> None:
        self._rows = array("q")
        self._values = array("d")

    def add(self, row_id: int, due_at: datetime | None, business: float | None, wall: float | None) -> None:
        """Note one row."""
        self._rows.append(row_id)
        self._values.extend(_compact(due_at, business, wall))

    def __iter__(self) -> Iterator[tuple[int, tuple[float, ...]]]:
        for n, row_id in enumerate(self._rows):
            yield row_id, tuple(self._values[3 * n : 3 * n + 3])


def _note_rechecks(recheck: dict[str, datetime], verdict: TeamVerdict, now: datetime) -> None:
    """Record from when each judged item must be judged again although it did not change: the earliest
    ``stable_until`` of its findings (a finding that does not say: at the next evaluation)."""
    until: dict[str, datetime] = {}
    for finding in verdict.findings:
        stable = finding.stable_until if finding.stable_until is not None else now
        if finding.subject not in until or stable < until[finding.subject]:
            until[finding.subject] = stable
    for judged in verdict.items:
        key = judged.item.key
        at = until.get(key, FOREVER)
        if at == FOREVER:
            recheck.pop(key, None)
        else:
            recheck[key] = at


def _log_breaches(transitions: Sequence[Transition]) -> None:
    """One INFO line per breach that opened and is still open (no customer data: team and rule only)."""
    for t in transitions:
        if (isinstance(t, Opened) and t.level is Level.BREACH and t.resolved_at is None) or isinstance(
            t, BecameBreach
        ):
            extra = {"team": t.team, "rule": t.rule}
            if t.unreadable:
                extra["unreadable"] = " ".join(t.unreadable)
            log.info("breach opened on incomplete data" if t.unreadable else "breach opened", extra=extra)

"""Rule ``callback_within``: its settings, what it asks of the phone engine, its deadlines beside email's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from monitor.awaiting import AwaitingItem, Response
from monitor.calendar import BusinessCalendar
from monitor.engine.phone import PhoneOptions
from monitor.events import Channel
from monitor.rules.base import RULES, EngineOptions, Level
from monitor.rules.callback_within import CallbackWithin, CallbackWithinConfig
from monitor.rules.holding_reply import HoldingReplyConfig
from monitor.rules.reply_within import ReplyWithin, ReplyWithinConfig
from monitor.verdict import ItemStatus, evaluate_team

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
CALENDAR = BusinessCalendar.from_config("Europe/London", {"mon-fri": "09:00-17:00"})


def test_defaults_and_registration() -> None:
    config = RULES.get("callback_within").config.model_validate({"kind": "callback_within"})
    assert isinstance(config, CallbackWithinConfig)
    assert (config.within, config.business_hours, config.warn_before) == (timedelta(hours=24), True, None)
    assert (config.short_abandon, config.unanswered_attempt_counts) == (timedelta(seconds=10), True)
    rule = CallbackWithin(config)
    assert (rule.name, rule.deadline_channel, rule.business_hours) == ("callback_within", Channel.PHONE, True)


def test_warning_must_fall_inside_the_window_and_keys_are_strict() -> None:
    with pytest.raises(ValidationError, match=r"warn_before \(1d\) must be shorter than within \(4h\)"):
        CallbackWithinConfig.model_validate({"kind": "callback_within", "within": "4h", "warn_before": "1d"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CallbackWithinConfig.model_validate({"kind": "callback_within", "callback": "24h"})
    with pytest.raises(ValidationError, match="channel"):  # the rule judges missed calls only
        CallbackWithinConfig.model_validate({"kind": "callback_within", "channel": "email"})


def test_engine_options_reach_the_phone_engine_and_merge_with_other_rules() -> None:
    callback = CallbackWithinConfig.model_validate(
        {"kind": "callback_within", "short_abandon": "0s", "unanswered_attempt_counts": False}
    )
    holding = HoldingReplyConfig.model_validate({"kind": "holding_reply", "phrases": ["we are on it"]})
    merged = EngineOptions().merge(holding.engine_options()).merge(callback.engine_options())
    assert merged.holding_phrases == ("we are on it",)
    assert merged.merge(holding.engine_options()) == merged  # a rule without phone options keeps them
    assert PhoneOptions.from_rules(merged) == PhoneOptions(
        short_abandon=timedelta(0), unanswered_attempt_counts=False
    )
    assert PhoneOptions.from_rules(EngineOptions()) == PhoneOptions()


def item(channel: Channel, key: str, received: datetime, responded: datetime | None = None) -> AwaitingItem:
    response = Response(responded, f"r-{key}") if responded is not None else None
    return AwaitingItem("support", channel, key, key, "c", received, response)


def test_each_channel_is_judged_by_the_rule_that_owns_it() -> None:
    rules = [
        ReplyWithin(ReplyWithinConfig(kind="reply_within", within=timedelta(hours=2))),
        CallbackWithin(
            CallbackWithinConfig(
                kind="callback_within", within=timedelta(hours=4), warn_before=timedelta(hours=1)
            )
        ),
    ]
    items = [
        item(Channel.EMAIL, "mail", T0),
        item(Channel.PHONE, "call-open", T0),
        item(Channel.PHONE, "call-late", T0, T0 + timedelta(hours=5)),
    ]
    verdict = evaluate_team(items, rules, CALENDAR, T0 + timedelta(hours=3, minutes=30), "support")
    assert [(v.item.key, v.status, v.due_at, v.warning) for v in verdict.items] == [
        ("mail", ItemStatus.BREACHED, T0 + timedelta(hours=2), False),
        ("call-open", ItemStatus.WAITING, T0 + timedelta(hours=4), True),
        ("call-late", ItemStatus.ANSWERED_LATE, T0 + timedelta(hours=4), False),
    ]
    assert sorted((f.rule, f.subject, f.level) for f in verdict.findings) == [
        ("callback_within", "call-late", Level.BREACH),
        ("callback_within", "call-open", Level.WARNING),
        ("reply_within", "mail", Level.BREACH),
    ]

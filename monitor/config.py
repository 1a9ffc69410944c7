"""The YAML config: strict pydantic models, every error reported at once with its path."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor import calendar as calendar_mod
from monitor.calendar import BusinessCalendar
from monitor.contacts import Contact, ContactDirectory, contact, load_contacts
from monitor.durations import Duration, Interval
from monitor.escalation import Member, NotifyConfig
from monitor.events import Channel
from monitor.exporters.notifiers.base import NOTIFIERS, NotifierConfigBase
from monitor.exporters.reports.schedule import ReportConfig
from monitor.plugins import PluginError, Scope, SecretRef, StrictConfig, config_errors
from monitor.rules.base import RULES, RuleConfigBase
from monitor.sources.base import SOURCES, SourceConfigBase
from monitor.telephony.numbers import check_region

_ALWAYS = {day: [(0, 24 * 60)] for day in range(7)}


class ConfigError(Exception):
    """The config cannot be used; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors: list[str], path: str | None = None) -> None:
        self.errors = errors
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(errors))


@dataclass(frozen=True, slots=True)
class ConfigScope(Scope):
    """What the whole file declares, for checking the names its sections refer to."""

    calendars: frozenset[str] = frozenset()
    """Names under ``calendars``."""
    sources: frozenset[str] = frozenset()
    """Names under ``sources``."""
    contacts: bool = False
    """Whether the file has a ``contacts`` directory."""
    notifiers: frozenset[str] = frozenset()
    """Names under ``notifiers``."""


class StoreConfig(StrictConfig):
    """Where replywatch keeps events, cursors, awaiting items and breaches."""

    url: str = "sqlite:///replywatch.db"
    """SQLAlchemy URL: ``sqlite:///path.db`` (default) or ``postgresql+psycopg://user@host/db``."""
    password: SecretRef | None = None
    """The database password, kept out of the URL: ``password_env`` (an environment variable) or
    ``password_file`` (a file, its first line)."""


class HttpConfig(StrictConfig):
    """The HTTP server for /metrics, /-/healthy and /-/ready."""

    listen: str = "127.0.0.1:9687"
    """``host:port`` to listen on; ``[::1]:9687`` for IPv6."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
            raise ValueError(f"invalid listen address {value!r}: expected host:port")
        return value

    @property
    def host(self) -> str:
        """The host part, without IPv6 brackets."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part."""
        return int(self.listen.rpartition(":")[2])


class LogConfig(StrictConfig):
    """How replywatch logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    format: Literal["text", "json"] = "text"
    """``text`` for people, ``json`` (one object a line) for log collectors."""


class HolidaysConfig(StrictConfig):
    """Public holidays from the ``holidays`` package."""

    country: str
    """ISO 3166 country code, e.g. ``GB``."""
    subdivision: str | None = None
    """Subdivision code, e.g. ``ENG`` or ``BY``."""

    @model_validator(mode="after")
    def _known(self) -> HolidaysConfig:
        BusinessCalendar("UTC", _ALWAYS, holidays_country=self.country, holidays_subdivision=self.subdivision)
        return self


class CalendarConfig(StrictConfig):
    """A business calendar: zone, weekly hours, holidays, extra closed days."""

    timezone: str
    """IANA zone, e.g. ``Europe/London``."""
    hours: dict[str, str] = Field(default_factory=lambda: {"mon-fri": "09:00-17:00"})
    """Opening hours per day or day range: ``{mon-fri: "09:00-12:30,13:30-17:30"}``."""
    holidays: HolidaysConfig | None = None
    """Public holidays when the team is closed."""
    closed: list[date] = Field(default_factory=list)
    """Extra closed days (``2026-12-24``)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        BusinessCalendar.always_open(value)
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        calendar_mod.parse_hours(value)
        return value

    def build(self) -> BusinessCalendar:
        """The calendar these settings describe."""
        return BusinessCalendar.from_config(
            self.timezone,
            self.hours,
            self.holidays.country if self.holidays else None,
            self.holidays.subdivision if self.holidays else None,
            self.closed,
        )


class MemberConfig(StrictConfig):
    """A person in a team."""

    name: str
    """Display name; used as the ``member`` metric label."""
    email: list[str] = Field(default_factory=list)
    """The member's own addresses (responses from them count for the team)."""
    phone: list[str] = Field(default_factory=list)
    """Extensions or numbers."""
    role: Literal["member", "lead"] = "member"
    """``lead`` receives escalations."""

    @field_validator("email")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]


class ContactConfig(StrictConfig):
    """One customer's addresses and numbers, written in the config."""

    email: list[str] = Field(default_factory=list)
    """The customer's addresses."""
    phone: list[str] = Field(default_factory=list)
    """The customer's numbers, in any spelling ``default_region`` places (``+44 20 7946 0000``)."""

    @field_validator("email")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]


class ContactsConfig(StrictConfig):
    """The contact directory: which addresses and numbers belong to the same customer."""

    file: Path | None = None
    """A CSV file with a header row naming an ``email`` and a ``phone`` column (several values in a cell
    separated by ``;``); read at start and at every reload."""
    entries: list[ContactConfig] = Field(default_factory=list)
    """Contacts written here, beside or instead of the file."""
    default_region: str | None = None
    """Region of numbers written without a country code (ISO 3166, e.g. ``GB``)."""

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return check_region(value) if value is not None else None

    @model_validator(mode="after")
    def _readable(self) -> ContactsConfig:
        contacts: list[Contact] = []
        for i, entry in enumerate(self.entries):
            try:
                contacts.append(contact(entry.email, entry.phone, self.default_region))
            except ValueError as err:
                raise ValueError(f"entries[{i}]: {err}") from err
        if self.file is not None:
            load_contacts(self.file, self.default_region)  # ContactsError (a ValueError) names file and line
        return self

    def directory(self) -> ContactDirectory:
        """The directory these settings describe (reads the file)."""
        contacts = [contact(e.email, e.phone, self.default_region) for e in self.entries]
        if self.file is not None:
            contacts += load_contacts(self.file, self.default_region)
        return ContactDirectory.of(contacts)


class TeamConfig(StrictConfig):
    """A team: its people, addresses, sources, calendar and rules."""

    calendar: str | None = None
    """Name of a calendar under ``calendars`` (none: always open, UTC)."""
    addresses: list[str] = Field(default_factory=list)
    """The team's shared addresses (mail from them is the team's)."""
    internal_domains: list[str] = Field(default_factory=list)
    """Domains of colleagues: their mail neither waits nor answers."""
    members: list[MemberConfig] = Field(default_factory=list)
    """The team's people."""
    sources: list[str] = Field(default_factory=list)
    """Names of sources under ``sources`` that hold this team's mail."""
    rules: list[Annotated[RuleConfigBase, RULES.field]] = Field(default_factory=list)
    """Rule plugins with their settings, each with a ``kind``; one rule of each kind."""
    no_reply_senders: list[str] = Field(default_factory=list)
    """More sender patterns whose mail is automated, on top of the built-in ones (noreply*, no-reply*,
    mailer-daemon...): a local part (``alerts``) or an address pattern (``*@notifications.example.net``)."""
    member_metrics: bool = False
    """Export ``replywatch_member_response_seconds{team,member}``."""
    closing_thanks: bool = True
    """A customer's short "thanks!" after an answer opens no new item (sources need ``text_preview``)."""
    internal_forward_is_response: bool = False
    """A member forwarding the conversation to colleagues counts as the team's response."""
    lines: list[str] = Field(default_factory=list)
    """The phone lines, queues or DIDs whose calls are the team's, as the call log writes them (empty: every
    line of the team's call-log sources)."""
    cross_channel: bool = False
    """A call to a customer answers their email, and an email to them answers their missed call, for
    customers whose address and number are linked in ``contacts``."""
    notify: NotifyConfig | None = None
    """Who is told what and when about the team's warnings and breaches (none: nobody)."""
    report: ReportConfig | None = None
    """A report of the team's month or week, sent after it ends (none: only ``replywatch report``)."""

    @property
    def report_via(self) -> str | None:
        """The notifier that carries the team's report: ``report.via``, else ``notify.via``."""
        if self.report is not None and self.report.via is not None:
            return self.report.via
        return self.notify.via if self.notify is not None else None

    @model_validator(mode="after")
    def _report_addressable(self) -> TeamConfig:
        if self.report is None:
            return self
        problems: list[tuple[tuple[str | int, ...], str]] = []
        names = [m.name for m in self.members]
        for entry in self.report.unknown_members(names):
            index = self.report.to.index(entry)
            expected = "expected lead, team, a member's name or an address"
            problems.append((("report", "to", index), f"unknown recipient {entry!r}: {expected}"))
        if self.report_via is None:
            problems.append((("report", "via"), "a report needs a notifier: set report.via or notify.via"))
        if problems:
            raise config_errors(type(self).__name__, problems)
        return self

    def escalation_members(self) -> list[Member]:
        """The members as escalation sees them: name, first address, whether they lead."""
        return [Member(m.name, m.email[0] if m.email else None, m.role == "lead") for m in self.members]

    @field_validator("cross_channel")
    @classmethod
    def _has_directory(cls, value: bool, info: ValidationInfo) -> bool:
        scope = info.context
        if value and isinstance(scope, ConfigScope) and not scope.contacts:
            raise ValueError("cross_channel needs a contact directory: add 'contacts' to the config")
        return value

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: str | None, info: ValidationInfo) -> str | None:
        scope = info.context
        if isinstance(scope, ConfigScope) and value is not None and value not in scope.calendars:
            raise ValueError(f"unknown calendar {value!r}")
        return value

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str], info: ValidationInfo) -> list[str]:
        scope = info.context
        if isinstance(scope, ConfigScope):
            unknown = [
                ((i,), f"unknown source {name!r}")
                for i, name in enumerate(value)
                if name not in scope.sources
            ]
            if unknown:
                raise config_errors(cls.__name__, unknown)
        return value

    @field_validator("rules")
    @classmethod
    def _one_of_each_kind_on_own_sources(
        cls, value: list[RuleConfigBase], info: ValidationInfo
    ) -> list[RuleConfigBase]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first: dict[str, int] = {}
        for i, rule in enumerate(value):
            if rule.kind in first:
                problems.append(
                    (
                        (i,),
                        f"a second {rule.kind!r} rule (first at rules[{first[rule.kind]}]); "
                        "a team has one rule of each kind",
                    )
                )
            first.setdefault(rule.kind, i)
            rule_source = getattr(rule, "source", None)
            team_sources = info.data.get("sources")
            if rule_source is not None and team_sources is not None and rule_source not in team_sources:
                problems.append(((i, "source"), f"{rule_source!r} is not one of the team's sources"))
        if problems:
            raise config_errors(cls.__name__, problems)
        return value

    @field_validator("addresses")
    @classmethod
    def _lower_addresses(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @field_validator("internal_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in value]


class EngineConfig(StrictConfig):
    """How far back the engine looks when it rebuilds conversations."""

    lookback: Duration = Field(default_factory=lambda: timedelta(days=60))
    """Messages older than this are not re-examined (their items are kept as they were)."""
    evaluate_every: Interval = Field(default_factory=lambda: timedelta(seconds=30))
    """How often rules are evaluated (also right after new mail is stored); at least one second."""
    judge_incomplete_after: Duration = Field(default_factory=lambda: timedelta(hours=1))
    """A team with a source that cannot be read is not judged (no breach from half its mail) until the
    source has been missing this long; then breaches open again, marked as judged on incomplete data."""


class Config(StrictConfig):
    """The whole config file."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    sources: dict[str, Annotated[SourceConfigBase, SOURCES.field]] = Field(default_factory=dict)
    """Source plugin settings by name; validated against the model of each one's ``kind``."""
    notifiers: dict[str, Annotated[NotifierConfigBase, NOTIFIERS.field]] = Field(default_factory=dict)
    """Notifier plugin settings by name; validated against the model of each one's ``kind``."""
    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    contacts: ContactsConfig | None = None
    """Which addresses and numbers belong to the same customer (for teams with ``cross_channel``)."""

    @cached_property
    def contact_directory(self) -> ContactDirectory:
        """The contact directory (empty without ``contacts``); read once per config."""
        return self.contacts.directory() if self.contacts is not None else ContactDirectory()

    @model_validator(mode="after")
    def _rule_counts_available(self) -> Config:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for team, cfg in self.teams.items():
            for i, rule in enumerate(cfg.rules):
                needed = rule.source_counts()
                rule_source = getattr(rule, "source", None)
                names = [rule_source] if rule_source is not None else cfg.sources
                watched = [(n, self.sources[n]) for n in names if n in self.sources]
                for option, count in needed.items():
                    for name, source in watched:
                        if source.channel == rule.channel and count not in source.mailbox_counts:
                            problems.append(
                                (
                                    ("teams", team, "rules", i, option),
                                    f"source {name!r} (kind {source.kind}) cannot count {count!r}; "
                                    f"remove {option} or name a source that can",
                                )
                            )
        if problems:
            raise config_errors(type(self).__name__, problems)
        return self

    @model_validator(mode="after")
    def _reports_carried(self) -> Config:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for team, cfg in self.teams.items():
            via = cfg.report_via
            notifier = self.notifiers.get(via) if cfg.report is not None and via is not None else None
            if notifier is not None and not notifier.carries_reports:
                where = (
                    ("teams", team, "report", "via")
                    if cfg.report and cfg.report.via
                    else ("teams", team, "report")
                )
                problems.append(
                    (
                        where,
                        f"notifier {via!r} ({notifier.kind}) cannot carry reports: set report.via",
                    )
                )
        if problems:
            raise config_errors(type(self).__name__, problems)
        return self

    @cached_property
    def calendar_objects(self) -> dict[str, BusinessCalendar]:
        """Built calendars by name."""
        return {name: cal.build() for name, cal in self.calendars.items()}

    def team_calendar(self, team: str) -> BusinessCalendar:
        """The calendar a team counts business time in."""
        name = self.teams[team].calendar
        return self.calendar_objects[name] if name else BusinessCalendar.always_open()

    def team_rules(self, team: str) -> list[RuleConfigBase]:
        """The validated rule configs of a team."""
        return self.teams[team].rules

    def team_channels(self, team: str) -> list[Channel]:
        """The channels a team's sources bring events on (email for mailboxes, phone for call logs)."""
        return sorted(
            {self.sources[name].channel for name in self.teams[team].sources if name in self.sources}
        )

    def staleness_limits(self) -> dict[str, timedelta]:
        """Each source's staleness limit by name."""
        return {name: cfg.staleness_limit for name, cfg in self.sources.items()}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config and the file it came from."""

    config: Config
    path: str | None = None

    @property
    def sources(self) -> Mapping[str, SourceConfigBase]:
        """The validated source configs by name."""
        return self.config.sources


def _address(value: str) -> str:
    value = value.strip().lower()
    if "@" not in value:
        raise ValueError(f"invalid address {value!r}")
    return value


def _loc(loc: tuple[int | str, ...], data: Any, prefix: str = "") -> str:
    """Turn a pydantic error location into ``teams.support.rules[1].within``."""
    out = prefix
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        out += f".{part}" if out else str(part)
        node = node.get(part) if isinstance(node, dict) else None
    return out


def _messages(err: ValidationError, data: Any, prefix: str) -> list[str]:
    from monitor.config_keys import did_you_mean, known_keys, plain_message

    out = []
    for e in err.errors(include_url=False):
        msg = plain_message(e["type"], e["msg"].removeprefix("Value error, "))
        if e["type"] == "extra_forbidden":
            loc = tuple(e["loc"])
            msg = "unknown key" + did_you_mean(str(loc[-1]), known_keys(Config, loc[:-1], data))
        elif e["type"] == "missing":
            msg = "required"
        where = _loc(tuple(e["loc"]), data, prefix)
        out.append(f"{where}: {msg}" if where else msg)
    return out


def validate(data: Any, *, env: Mapping[str, str] | None = None, check_secrets: bool = True) -> LoadedConfig:
    """Validate parsed YAML; raise :class:`ConfigError` with every problem found."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["the config must be a mapping at the top level"])
    calendars = data.get("calendars") if isinstance(data.get("calendars"), dict) else {}
    sources = data.get("sources") if isinstance(data.get("sources"), dict) else {}
    notifiers = data.get("notifiers") if isinstance(data.get("notifiers"), dict) else {}
    scope = ConfigScope(
        secrets_env=env if check_secrets else None,
        calendars=frozenset(calendars or {}),
        sources=frozenset(sources or {}),
        contacts=bool(data.get("contacts")),
        notifiers=frozenset(notifiers or {}),
    )
    errors: list[str] = []
    config: Config | None = None
    try:
        config = Config.model_validate(data, context=scope)
    except ValidationError as err:
        errors.extend(_messages(err, data, ""))
    except PluginError as err:
        raise ConfigError([str(err)]) from err
    for name, raw_cal in (calendars or {}).items():
        try:
            CalendarConfig.model_validate(raw_cal).build()
        except ValidationError:
            pass  # reported with its path by the whole-config validation above
        except ValueError as err:
            errors.append(f"calendars.{name}: {err}")
    if errors or config is None:
        raise ConfigError(errors or ["invalid config"])
    return LoadedConfig(config=config)


MAX_CONFIG_BYTES = 1_000_000
"""A config file larger than this is refused: a real one is a few KB (and YAML aliases can multiply it)."""


def load(
    path: str | Path, *, env: Mapping[str, str] | None = None, check_secrets: bool = True
) -> LoadedConfig:
    """Read and validate a config file."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_CONFIG_BYTES + 1)
        if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
            too_big = f"config file is larger than {MAX_CONFIG_BYTES // 1_000_000} MB; is it the right file?"
            raise ConfigError([too_big], path)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as err:
        raise ConfigError([f"config is not UTF-8 text (byte {err.start})"], path) from err
    except OSError as err:
        raise ConfigError([f"cannot read config: {err.strerror}"], path) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{where}invalid YAML: {problem}"], path) from err
    try:
        loaded = validate(data, env=env, check_secrets=check_secrets)
    except ConfigError as err:
        raise ConfigError(err.errors, path) from err
    return LoadedConfig(loaded.config, path)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

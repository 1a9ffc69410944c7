"""The YAML config: strict pydantic models, every error reported at once with its path."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor import calendar as calendar_mod
from monitor.calendar import BusinessCalendar
from monitor.durations import Duration, Interval
from monitor.events import Channel
from monitor.rules.base import RuleConfigBase
from monitor.rules.base import registered_kinds as rule_kinds
from monitor.sources.base import SourceConfigBase
from monitor.sources.base import registered_kinds as source_kinds

_ALWAYS = {day: [(0, 24 * 60)] for day in range(7)}


class ConfigError(Exception):
    """The config cannot be used; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors: list[str], path: str | None = None) -> None:
        self.errors = errors
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(errors))


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Strict):
    """Where replywatch keeps events, cursors, awaiting items and breaches."""

    url: str = "sqlite:///replywatch.db"
    """SQLAlchemy URL: ``sqlite:///path.db`` (default) or ``postgresql+psycopg://user@host/db``."""
    password_env: str | None = None
    """Environment variable holding the database password (kept out of the URL)."""
    password_file: Path | None = None
    """File holding the database password."""


class HttpConfig(Strict):
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


class LogConfig(Strict):
    """How replywatch logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    format: Literal["text", "json"] = "text"
    """``text`` for people, ``json`` (one object a line) for log collectors."""


class HolidaysConfig(Strict):
    """Public holidays from the ``holidays`` package."""

    country: str
    """ISO 3166 country code, e.g. ``GB``."""
    subdivision: str | None = None
    """Subdivision code, e.g. ``ENG`` or ``BY``."""

    @model_validator(mode="after")
    def _known(self) -> HolidaysConfig:
        BusinessCalendar("UTC", _ALWAYS, holidays_country=self.country, holidays_subdivision=self.subdivision)
        return self


class CalendarConfig(Strict):
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


class MemberConfig(Strict):
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


class TeamConfig(Strict):
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
    rules: list[dict[str, Any]] = Field(default_factory=list)
    """Rule plugins with their settings, each with a ``kind``."""
    no_reply_senders: list[str] = Field(default_factory=list)
    """More sender patterns whose mail is automated, on top of the built-in ones (noreply*, no-reply*,
    mailer-daemon...): a local part (``alerts``) or an address pattern (``*@notifications.example.net``)."""
    member_metrics: bool = False
    """Export ``replywatch_member_response_seconds{team,member}``."""
    closing_thanks: bool = False
    """A customer's short "thanks!" after an answer opens no new item (sources need ``text_preview``)."""
    internal_forward_is_response: bool = False
    """A member forwarding the conversation to colleagues counts as the team's response."""

    @field_validator("addresses")
    @classmethod
    def _lower_addresses(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @field_validator("internal_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in value]


class EngineConfig(Strict):
    """How far back the engine looks when it rebuilds conversations."""

    lookback: Duration = Field(default_factory=lambda: timedelta(days=60))
    """Messages older than this are not re-examined (their items are kept as they were)."""
    evaluate_every: Interval = Field(default_factory=lambda: timedelta(seconds=30))
    """How often rules are evaluated (also right after new mail is stored); at least one second."""


class Config(Strict):
    """The whole config file."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    sources: dict[str, Any] = Field(default_factory=dict)
    """Source plugin settings by name; validated against each kind's model."""
    teams: dict[str, TeamConfig] = Field(default_factory=dict)

    @cached_property
    def calendar_objects(self) -> dict[str, BusinessCalendar]:
        """Built calendars by name."""
        return {name: cal.build() for name, cal in self.calendars.items()}

    def team_calendar(self, team: str) -> BusinessCalendar:
        """The calendar a team counts business time in."""
        name = self.teams[team].calendar
        return self.calendar_objects[name] if name else BusinessCalendar.always_open()

    @cached_property
    def rule_configs(self) -> dict[str, list[RuleConfigBase]]:
        """Validated rule configs by team (built once per config: every scrape and rebuild reads them)."""
        kinds = rule_kinds()
        return {
            team: [kinds[r["kind"]][0].model_validate(r) for r in cfg.rules]
            for team, cfg in self.teams.items()
        }

    def team_rules(self, team: str) -> list[RuleConfigBase]:
        """The validated rule configs of a team."""
        return self.rule_configs[team]

    def team_channels(self, team: str) -> list[Channel]:
        """The channels a team's sources bring events on (email for mailboxes, phone for call logs)."""
        kinds = source_kinds()
        found = set()
        for name in self.teams[team].sources:
            raw = self.sources.get(name)
            kind = raw.get("kind") if isinstance(raw, dict) else None
            if isinstance(kind, str) and kind in kinds:
                found.add(kinds[kind][0].channel)
        return sorted(found)


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config with its source configs built."""

    config: Config
    sources: Mapping[str, SourceConfigBase]
    path: str | None = None


def _address(value: str) -> str:
    value = value.strip().lower()
    if "@" not in value:
        raise ValueError(f"invalid address {value!r}")
    return value


def _loc(loc: tuple[int | str, ...], data: Any, prefix: str = "") -> str:
    """Turn a pydantic error location into ``teams.support.rules[1].within``, dropping union tags."""
    out = prefix
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if isinstance(node, dict) and part not in node and node.get("kind") == part:
            continue  # the discriminated-union tag, not a real key
        out += f".{part}" if out else str(part)
        node = node.get(part) if isinstance(node, dict) else None
    return out


def _messages(err: ValidationError, data: Any, prefix: str) -> list[str]:
    out = []
    for e in err.errors(include_url=False):
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required"
        where = _loc(tuple(e["loc"]), data, prefix)
        out.append(f"{where}: {msg}" if where else msg)
    return out


def _validate_plugin(
    kinds: Mapping[str, tuple[type[BaseModel], Any]], raw: Any, path: str, errors: list[str]
) -> BaseModel | None:
    if not isinstance(raw, dict):
        errors.append(f"{path}: expected a mapping with a 'kind'")
        return None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        known = ", ".join(sorted(kinds))
        errors.append(f"{path}.kind: unknown kind {kind!r} (known: {known})")
        return None
    try:
        model: BaseModel = kinds[kind][0].model_validate(raw)
    except ValidationError as err:
        errors.extend(_messages(err, raw, path))
        return None
    return model


def _check_secret_refs(raw: Mapping[str, Any], path: str, env: Mapping[str, str], errors: list[str]) -> None:
    """``*_env`` must name a set variable, ``*_file`` a readable file; both at once is an error."""
    for key, value in raw.items():
        if key.endswith("_env") and isinstance(value, str) and value not in env:
            errors.append(f"{path}.{key}: environment variable {value!r} is not set")
        if (
            key.endswith("_file")
            and key != "ca_file"
            and isinstance(value, str)
            and not os.access(value, os.R_OK)
        ):
            errors.append(f"{path}.{key}: cannot read {value!r}")
        if key.endswith("_env") and f"{key[:-4]}_file" in raw:
            errors.append(f"{path}: give either {key} or {key[:-4]}_file, not both")


def validate(data: Any, *, env: Mapping[str, str] | None = None, check_secrets: bool = True) -> LoadedConfig:
    """Validate parsed YAML; raise :class:`ConfigError` with every problem found."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["the config must be a mapping at the top level"])
    errors: list[str] = []
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        errors.extend(_messages(err, data, ""))

    raw_sources = data.get("sources") if isinstance(data.get("sources"), dict) else {}
    sources: dict[str, SourceConfigBase] = {}
    skinds = source_kinds()
    for name, raw in (raw_sources or {}).items():
        model = _validate_plugin(skinds, raw, f"sources.{name}", errors)
        if isinstance(model, SourceConfigBase):
            sources[name] = model
        if check_secrets and isinstance(raw, dict):  # also when other fields are wrong: all errors at once
            _check_secret_refs(raw, f"sources.{name}", env, errors)
    raw_store = data.get("store")
    if check_secrets and isinstance(raw_store, dict):
        _check_secret_refs(raw_store, "store", env, errors)

    calendars = data.get("calendars") if isinstance(data.get("calendars"), dict) else {}
    for name, raw_cal in (calendars or {}).items():
        try:
            CalendarConfig.model_validate(raw_cal).build()
        except ValidationError:
            pass  # reported with its path by the whole-config validation above
        except ValueError as err:
            errors.append(f"calendars.{name}: {err}")
    raw_teams = data.get("teams") if isinstance(data.get("teams"), dict) else {}
    rkinds = rule_kinds()
    for team, raw_team in (raw_teams or {}).items():
        if not isinstance(raw_team, dict):
            continue
        cal = raw_team.get("calendar")
        if cal is not None and cal not in (calendars or {}):
            errors.append(f"teams.{team}.calendar: unknown calendar {cal!r}")
        for i, src in enumerate(raw_team.get("sources") or []):
            if src not in (raw_sources or {}):
                errors.append(f"teams.{team}.sources[{i}]: unknown source {src!r}")
        kinds_seen: dict[str, int] = {}
        for i, rule in enumerate(raw_team.get("rules") or []):
            model = _validate_plugin(rkinds, rule, f"teams.{team}.rules[{i}]", errors)
            kind = rule.get("kind") if isinstance(rule, dict) else None
            if model is not None and isinstance(kind, str):
                if kind in kinds_seen:
                    errors.append(
                        f"teams.{team}.rules[{i}]: a second {kind!r} rule "
                        f"(first at rules[{kinds_seen[kind]}]); a team has one rule of each kind"
                    )
                kinds_seen.setdefault(kind, i)
            rule_source = getattr(model, "source", None)
            if rule_source is not None and rule_source not in (raw_team.get("sources") or []):
                errors.append(
                    f"teams.{team}.rules[{i}].source: {rule_source!r} is not one of the team's sources"
                )
    if errors or config is None:
        raise ConfigError(errors or ["invalid config"])
    return LoadedConfig(config=config, sources=sources)


def load(
    path: str | Path, *, env: Mapping[str, str] | None = None, check_secrets: bool = True
) -> LoadedConfig:
    """Read and validate a config file."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
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
    return LoadedConfig(loaded.config, loaded.sources, path)


def read_secret(env_name: str | None, file: str | Path | None, what: str) -> SecretStr | None:
    """A secret from an environment variable or a file (its first line); None when neither is given."""
    if env_name:
        if env_name not in os.environ:
            raise ConfigError([f"{what}: environment variable {env_name!r} is not set"])
        return SecretStr(os.environ[env_name])
    if file:
        try:
            return SecretStr(Path(file).read_text(encoding="utf-8").splitlines()[0].strip())
        except (OSError, IndexError) as err:
            raise ConfigError([f"{what}: cannot read secret file {str(file)!r}"]) from err
    return None


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

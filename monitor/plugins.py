"""Plugins: a generic registry per plugin group, filled from entry points; the strict config base; SecretRef.

Every plugin, built-in or third-party, is a :class:`Plugin` object named by an entry point of its group
(``replywatch.sources``, ``replywatch.rules``, ``replywatch.notifiers``) in its distribution's metadata.
Its kind is declared once, as the ``kind: Literal[...]`` field of its config class; the entry point must
carry the same name.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

SOURCES_GROUP = "replywatch.sources"
RULES_GROUP = "replywatch.rules"
NOTIFIERS_GROUP = "replywatch.notifiers"

Location = tuple[str | int, ...]
"""Where in a config section a problem is, as pydantic spells it: ``("rules", 1, "within")``."""


def config_errors(title: str, problems: Sequence[tuple[Location, str]]) -> ValidationError:
    """A validation error holding each ``(location, message)``; raised inside a validator, pydantic
    prefixes the locations with the path of the value being validated."""
    return ValidationError.from_exception_data(title, _line_errors(problems))


def _line_errors(
    problems: Iterable[tuple[Location, str]], error_type: str = "replywatch"
) -> list[InitErrorDetails]:
    """``(location, message)`` pairs as pydantic line errors of type ``error_type``."""
    return [
        InitErrorDetails(
            type=PydanticCustomError(error_type, "{message}", {"message": message}), loc=loc, input=None
        )
        for loc, message in problems
    ]


@dataclass(frozen=True, slots=True)
class Scope:
    """What validation may look at beyond the document itself (passed as pydantic's context)."""

    secrets_env: Mapping[str, str] | None = None
    """The environment secrets are checked against; None: secrets are not checked for existence."""


class SecretError(ValueError):
    """A secret cannot be read: its variable is not set or its file cannot be read (the text names the
    setting, never the secret)."""


class SecretRef(BaseModel):
    """Where a secret is kept, set as ``<name>_env`` (an environment variable) or ``<name>_file`` (a file,
    its first line): never the secret itself, which is read only when used."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str
    """The setting's name without its suffix, e.g. ``password``."""
    env: str | None = None
    """Environment variable holding the secret."""
    file: Path | None = None
    """File holding the secret on its first line."""

    @property
    def key(self) -> str:
        """The config key the secret was given under, e.g. ``password_env``."""
        return f"{self.name}_env" if self.env else f"{self.name}_file"

    @property
    def origin(self) -> str:
        """Where the secret comes from, for messages: ``password_env 'IMAP_PASSWORD'`` (never the secret)."""
        return f"{self.key} {self.env or str(self.file)!r}"

    def problems(self, env: Mapping[str, str] | None) -> list[tuple[str | None, str]]:
        """Every mistake, one each, as ``(key, message)`` (key None: the setting as a whole).

        Both keys at once is one mistake; otherwise, with ``env`` given, a variable that is not set or a
        file that cannot be read.
        """
        if self.env and self.file:
            return [(None, f"give either {self.name}_env or {self.name}_file, not both")]
        if self.env and env is not None and self.env not in env:
            return [(f"{self.name}_env", f"environment variable {self.env!r} is not set")]
        if self.file and env is not None and not os.access(self.file, os.R_OK):
            return [(f"{self.name}_file", f"cannot read {str(self.file)!r}")]
        return []

    def reveal(self) -> SecretStr:
        """The secret, read now from the environment or the file; :class:`SecretError` names what failed."""
        for key, message in self.problems(os.environ):
            raise SecretError(f"{key}: {message}" if key else message)
        if self.env:
            return SecretStr(os.environ[self.env])
        assert self.file is not None  # built only with one of the two
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").splitlines()[0].strip())
        except (OSError, IndexError) as err:
            raise SecretError(f"{self.name}_file: cannot read {str(self.file)!r}") from err


def _secret_names(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` typed :class:`SecretRef` (or ``SecretRef | None``)."""
    return [
        name
        for name, info in model.model_fields.items()
        if info.annotation is SecretRef or SecretRef in get_args(info.annotation)
    ]


class StrictConfig(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen, secrets are SecretRefs.

    A field ``password: SecretRef | None`` is written ``password_env:`` or ``password_file:`` in the
    config; every mistake in it is reported here, once, with its path.

    A model's validator is built when it first validates (``defer_build``), not when its class is made:
    a start builds those of the plugins its config uses, not of every installed one (about 20 ms).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="wrap")
    @classmethod
    def _secret_refs(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        names = _secret_names(cls)
        if not names or not isinstance(data, dict):
            return handler(data)
        scope = info.context if isinstance(info.context, Scope) else Scope()
        data = dict(data)
        problems: list[tuple[Location, str]] = []
        for name in names:
            if name in data and not isinstance(data[name], SecretRef):  # only Python callers pass one
                problems.append(((name,), f"unknown key; did you mean '{name}_env' or '{name}_file'?"))
                del data[name]
            env, file = data.pop(f"{name}_env", None), data.pop(f"{name}_file", None)
            wrong = [
                ((key,), f"expected {what}")
                for key, value, what in (
                    (f"{name}_env", env, "the name of an environment variable"),
                    (f"{name}_file", file, "a file path"),
                )
                if value is not None and (not isinstance(value, str | Path) or not str(value))
            ]
            if wrong:
                problems.extend(wrong)
                continue
            if env is None and file is None:
                continue
            ref = SecretRef(name=name, env=env, file=file)
            problems.extend(
                ((key,) if key else (), message) for key, message in ref.problems(scope.secrets_env)
            )
            data[name] = ref
        try:
            model = handler(data)
        except ValidationError as err:
            if not problems:
                raise
            theirs = [
                line
                for e in err.errors(include_url=False)
                for line in _line_errors([(tuple(e["loc"]), e["msg"])], e["type"])
            ]
            raise ValidationError.from_exception_data(err.title, [*theirs, *_line_errors(problems)]) from err
        if problems:
            raise config_errors(cls.__name__, problems)
        return model


class PluginConfig(StrictConfig):
    """Base of a plugin's config: its subclass narrows ``kind`` to ``Literal["its-kind"]``."""

    kind: str
    """Selects the plugin."""


ConfigT = TypeVar("ConfigT", bound=PluginConfig)
FactoryT = TypeVar("FactoryT", bound=Callable[..., Any])


class PluginError(Exception):
    """A plugin cannot be used: its entry point does not load or does not name a valid plugin."""


def declared_kind(config: type[PluginConfig]) -> str:
    """The kind a config class declares in its ``kind: Literal["..."]`` field."""
    kind_field = config.model_fields.get("kind")
    annotation = kind_field.annotation if kind_field is not None else None
    values = get_args(annotation) if get_origin(annotation) is Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise PluginError(f"{config.__qualname__}.kind must be declared as Literal['<kind>']")
    kind: str = values[0]
    return kind


@dataclass(frozen=True)  # no slots: calling ``Plugin[C, F](...)`` sets ``__orig_class__`` on the instance
class Plugin(Generic[ConfigT, FactoryT]):
    """One plugin: its config class (which declares its kind) and the factory building it from a config."""

    config: type[ConfigT]
    factory: FactoryT
    kind: str = field(init=False)
    """Read from ``config``'s ``kind: Literal[...]``: the plugin's one declaration of its kind."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", declared_kind(self.config))


EntryPoints = Callable[[str], Iterable[metadata.EntryPoint]]
"""Lists the entry points of a group (injectable for tests)."""


def installed_entry_points(group: str) -> Iterable[metadata.EntryPoint]:
    """The entry points of ``group`` in the installed distributions' metadata."""
    return metadata.entry_points(group=group)


BUILT_IN = "replywatch"
"""The distribution whose plugins are loaded when a config first uses their kind (its own, tested with it)."""


class Registry(Generic[ConfigT, FactoryT]):
    """The plugins of one group by kind, from entry points.

    The entry points are listed on first use. Third-party plugins are loaded then, all of them, so that a
    broken one is an error at the start, whether a config uses it or not. replywatch's own plugins
    (:data:`BUILT_IN`) are loaded when their kind is first asked for: a daemon that reads IMAP never
    imports the Exchange, Graph or call-log modules (about 20 ms of every start).
    """

    def __init__(self, group: str, base: type[ConfigT], entry_points: EntryPoints = installed_entry_points):
        self.group = group
        self.base = base
        self._entry_points = entry_points
        self._entries: dict[str, metadata.EntryPoint] | None = None
        self._loaded: dict[str, Plugin[ConfigT, FactoryT]] = {}
        self._lock = threading.RLock()

    def kinds(self) -> list[str]:
        """Every kind the group's entry points name, sorted; :class:`PluginError` names a broken one."""
        return sorted(self._listed())

    def plugins(self) -> Mapping[str, Plugin[ConfigT, FactoryT]]:
        """Every plugin of the group by kind, all loaded now; :class:`PluginError` names a broken one."""
        return {kind: self.get(kind) for kind in self.kinds()}

    def _listed(self) -> dict[str, metadata.EntryPoint]:
        with self._lock:
            if self._entries is None:
                entries: dict[str, metadata.EntryPoint] = {}
                for entry in self._entry_points(self.group):
                    if entry.name in entries:
                        raise PluginError(
                            f"{_describe(entry)}: kind {entry.name!r} is already provided by "
                            f"{_describe(entries[entry.name])}"
                        )
                    entries[entry.name] = entry
                for kind, entry in entries.items():
                    if not _built_in(entry):
                        self._loaded[kind] = self._load(entry, _describe(entry))
                self._entries = entries
            return self._entries

    def _load(self, entry: metadata.EntryPoint, where: str) -> Plugin[ConfigT, FactoryT]:
        try:
            loaded = entry.load()
        except Exception as err:  # any failure of third-party code becomes one clear line
            raise PluginError(f"{where} cannot be loaded: {type(err).__name__}: {err}") from err
        if not isinstance(loaded, Plugin):
            raise PluginError(f"{where}: {entry.value!r} is not a replywatch Plugin")
        if not issubclass(loaded.config, self.base):
            raise PluginError(
                f"{where}: config {loaded.config.__qualname__} does not extend {self.base.__name__}"
            )
        if loaded.kind != entry.name:
            raise PluginError(
                f"{where}: the entry point must be named after the plugin's kind {loaded.kind!r}"
            )
        plugin: Plugin[ConfigT, FactoryT] = loaded
        return plugin

    def get(self, kind: str) -> Plugin[ConfigT, FactoryT]:
        """The plugin of ``kind``, loaded now if it was not yet (KeyError when none)."""
        entry = self._listed()[kind]
        with self._lock:
            if kind not in self._loaded:
                self._loaded[kind] = self._load(entry, _describe(entry))
            return self._loaded[kind]

    def validate(self, raw: Any, info: ValidationInfo) -> ConfigT:
        """A config section validated by the model its ``kind`` selects (errors keep their paths)."""
        if not isinstance(raw, Mapping):
            raise config_errors(self.group, [((), "expected a mapping with a 'kind'")])
        kinds = self.kinds()
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in kinds:
            known = ", ".join(kinds)
            raise config_errors(self.group, [(("kind",), f"unknown kind {kind!r} (known: {known})")])
        return self.get(kind).config.model_validate(raw, context=info.context)

    @property
    def field(self) -> PlainValidator:
        """Pydantic metadata dispatching a field on ``kind``: ``Annotated[Base, REGISTRY.field]``."""
        return PlainValidator(self.validate)


def _built_in(entry: metadata.EntryPoint) -> bool:
    """Whether ``entry`` is one of replywatch's own plugins."""
    return entry.dist is not None and entry.dist.name == BUILT_IN


def _describe(entry: metadata.EntryPoint) -> str:
    dist = entry.dist.name if entry.dist is not None else "an unknown distribution"
    return f"entry point {entry.name!r} ({entry.value}) of distribution {dist!r} in group {entry.group!r}"

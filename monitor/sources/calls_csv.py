"""calls_csv source: any call export with a header row (Twilio, Aircall...), through a column mapping."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from monitor.sources.base import SourcePlugin
from monitor.sources.cdr_file import CdrFileConfig, CdrFileSource, CdrLayout
from monitor.telephony.layouts import CdrLayoutError, MappedLayout


class CallsCsvConfig(CdrFileConfig):
    """A CSV of calls whose first row names its columns; ``columns`` says which holds what."""

    kind: Literal["calls_csv"] = "calls_csv"
    """Selects this source plugin."""
    columns: dict[str, str]
    """Asterisk field -> the file's header name: at least ``src``, ``dst``, ``start`` and
    ``disposition``; also ``uniqueid``, ``linkedid``, ``answer``, ``end``, ``duration``, ``billsec``,
    ``dstchannel`` (who answered), ``did`` (the line), ``lastapp``."""
    date_format: str
    """How times are written (never guessed): a strptime pattern, ``iso`` or ``epoch``."""
    answered_values: list[str] = Field(default_factory=lambda: ["answered", "completed"])
    """Values of the ``disposition`` column that mean a person answered (compared in lower case)."""

    @model_validator(mode="after")
    def _layout(self) -> Self:
        if "disposition" not in self.columns:
            raise ValueError("columns needs 'disposition' (the column saying whether the call was answered)")
        self.layout()
        return self

    def layout(self) -> MappedLayout:
        """The layout this config describes; ValueError (a config error) when it cannot be used."""
        try:
            return MappedLayout(
                dict(self.columns),
                self.date_format,
                frozenset(value.lower() for value in self.answered_values),
            )
        except CdrLayoutError as err:
            raise ValueError(str(err)) from err


class CallsCsvSource(CdrFileSource):
    """Polls one call export (see :mod:`monitor.sources.cdr_file` for how it is followed)."""

    config: CallsCsvConfig

    def make_layout(self) -> CdrLayout:
        """The configured column mapping."""
        return self.config.layout()

    @property
    def has_header(self) -> bool:
        """Always: the mapping names header columns."""
        return True


PLUGIN = SourcePlugin(CallsCsvConfig, CallsCsvSource)
"""The ``calls_csv`` source plugin (entry point ``calls_csv`` of ``replywatch.sources``)."""

"""threecx_csv source: follows a 3CX CDR file (the CDR service's output or an export), old or V20 format."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from monitor.sources.base import SourcePlugin
from monitor.sources.cdr_file import CdrFileConfig, CdrFileSource, CdrLayout
from monitor.telephony.layouts import THREECX_V20, CdrLayoutError, ThreeCxLayout


class ThreeCxCsvConfig(CdrFileConfig):
    """A 3CX CDR file: one row per call before V20 (no header), one per call segment in V20 (a header)."""

    kind: Literal["threecx_csv"] = "threecx_csv"
    """Selects this source plugin."""
    format: Literal["legacy", "v20"] = "v20"
    """``legacy``: 3CX before V20 (27 fields, ``2020/05/04 10:53:43`` times); ``v20``: V20's header row."""
    date_format: str | None = None
    """How times are written, when not 3CX's own (a strptime pattern, ``iso`` or ``epoch``)."""
    columns: dict[str, str] = Field(default_factory=dict)
    """V20 only: header names that differ from 3CX's (``{start: cdr_started_at}``); keys are those of
    the V20 layout: callid, start, answer, end, from, from_dn, to, to_dn, to_type, final."""

    @model_validator(mode="after")
    def _layout(self) -> Self:
        self.layout()
        return self

    def layout(self) -> ThreeCxLayout:
        """The layout this config describes; ValueError (a config error) when it cannot be used."""
        unknown = sorted(set(self.columns) - set(THREECX_V20))
        if unknown:
            raise ValueError(f"unknown 3CX field {unknown[0]!r}: use {', '.join(THREECX_V20)}")
        if self.columns and self.format != "v20":
            raise ValueError("columns apply to format 'v20' only (legacy rows have fixed positions)")
        try:
            return ThreeCxLayout(
                v20=self.format == "v20",
                date_format=self.date_format,
                v20_columns={**THREECX_V20, **self.columns},
            )
        except CdrLayoutError as err:
            raise ValueError(str(err)) from err


class ThreeCxCsvSource(CdrFileSource):
    """Polls one 3CX CDR file (see :mod:`monitor.sources.cdr_file` for how it is followed)."""

    config: ThreeCxCsvConfig

    def make_layout(self) -> CdrLayout:
        """The configured 3CX layout."""
        return self.config.layout()

    @property
    def has_header(self) -> bool:
        """True for V20 files."""
        return self.config.format == "v20"


PLUGIN = SourcePlugin(ThreeCxCsvConfig, ThreeCxCsvSource)
"""The ``threecx_csv`` source plugin (entry point ``threecx_csv`` of ``replywatch.sources``)."""

"""asterisk_csv source: follows Asterisk's Master.csv (``cdr_csv``) or a ``cdr_custom`` file as it grows."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from monitor.sources.base import SourcePlugin
from monitor.sources.cdr_file import CdrFileConfig, CdrFileSource, CdrLayout
from monitor.telephony.layouts import ISO, AsteriskLayout, CdrLayoutError


class AsteriskCsvConfig(CdrFileConfig):
    """An Asterisk call log file: ``/var/log/asterisk/cdr-csv/Master.csv`` or a ``cdr_custom`` file."""

    kind: Literal["asterisk_csv"] = "asterisk_csv"
    """Selects this source plugin."""
    columns: list[str] | None = None
    """The column list of a ``cdr_custom`` mapping, in order (``[clid, src, dst, ...]``, Asterisk's
    field names); unset: ``cdr_csv``'s Master.csv, with or without ``newcdrcolumns``' three columns."""
    header: bool = False
    """The first row names the columns (a FreePBX report export): its names replace ``columns``."""
    date_format: str = ISO
    """How times are written: a strptime pattern (``%d/%m/%Y %H:%M:%S``), ``iso`` or ``epoch``."""

    @model_validator(mode="after")
    def _layout(self) -> Self:
        self.layout()
        return self

    def layout(self) -> AsteriskLayout:
        """The layout this config describes; ValueError (a config error) when it cannot be used."""
        try:
            if self.columns is None:
                return AsteriskLayout(date_format=self.date_format, header=self.header)
            return AsteriskLayout(tuple(self.columns), date_format=self.date_format, header=self.header)
        except CdrLayoutError as err:
            raise ValueError(str(err)) from err


class AsteriskCsvSource(CdrFileSource):
    """Polls one Asterisk CSV call log (see :mod:`monitor.sources.cdr_file` for how it is followed)."""

    config: AsteriskCsvConfig

    def make_layout(self) -> CdrLayout:
        """The configured Asterisk layout."""
        return self.config.layout()

    @property
    def has_header(self) -> bool:
        """True for an export with a header row."""
        return self.config.header


PLUGIN = SourcePlugin(AsteriskCsvConfig, AsteriskCsvSource)
"""The ``asterisk_csv`` source plugin (entry point ``asterisk_csv`` of ``replywatch.sources``)."""

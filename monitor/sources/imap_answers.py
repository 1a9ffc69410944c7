"""Reading a command's answer off imaplib's connection: without its protocol trace, FETCH lines without its
general response parser.

imapclient sets imaplib's debug level to 5 to trace lines into its ``imapclient.imaplib`` logger; at that
level imaplib formats every record, header literal included, even when the logger drops them (a third of
reading a FETCH answer). At level 0 it still formats every response line into a ring of the last ten, kept
for a trace at a higher level (a quarter of reading the rest). And each response goes through four or five
regular expressions that tell a tagged answer, an untagged one, a status and a literal apart: for the
thousands of ``* n FETCH`` lines of a first sync, one expression and a look at the line's end do.

:func:`untraced` does both for one command, unless that logger listens (then imaplib reads, and traces,
as it always does). What the command returns, and what it leaves in ``untagged_responses``, are imaplib's
own (a test compares both ways on the answers servers give, odd ones included).
"""

from __future__ import annotations

import functools
import imaplib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

IMAPLIB_LOG = logging.getLogger("imapclient.imaplib")
"""Where imapclient sends imaplib's protocol trace."""

_UNTAGGED_FETCH = re.compile(rb"\* (\d+) FETCH(?![A-Z-])(?: (.*))?", re.DOTALL)
"""imaplib's untagged status line (``* <number> <type> <data>``) when its type is FETCH (its type is a run
of capitals and hyphens: ``* 1 FETCHES`` is not a FETCH)."""


@contextmanager
def untraced(imap: imaplib.IMAP4, *, fetch: bool = False) -> Iterator[None]:
    """One command's answer read without imaplib's trace (and its FETCH lines by :func:`_read_response`
    when ``fetch``), unless the ``imapclient.imaplib`` logger listens."""
    if IMAPLIB_LOG.isEnabledFor(logging.DEBUG):
        yield
        return
    debug = imap.debug
    imap.debug = 0
    lines = _Lines(imap)
    imap._get_line = lines  # type: ignore[attr-defined]
    if fetch:
        imaplib_reads = functools.partial(type(imap)._get_response, imap)  # type: ignore[attr-defined]
        imap._get_response = functools.partial(_read_response, imap, lines, imaplib_reads)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        imap.debug = debug
        vars(imap).pop("_get_line", None)
        vars(imap).pop("_get_response", None)


class _Lines:
    """``imaplib.IMAP4._get_line`` without the trace, and a line handed back for imaplib to read again."""

    def __init__(self, imap: imaplib.IMAP4) -> None:
        self.imap = imap
        self.back: bytes | None = None

    def __call__(self) -> bytes:
        """One response line, its CRLF cut."""
        if self.back is not None:
            line, self.back = self.back, None
            return line
        line = self.imap.readline()
        if not line:
            raise self.imap.abort("socket error: EOF")
        if not line.endswith(b"\r\n"):  # the protocol ends every line with CRLF
            raise self.imap.abort("socket error: unterminated line")
        return line[:-2]


def _read_response(imap: imaplib.IMAP4, lines: _Lines, imaplib_reads: Callable[[], Any]) -> Any:
    """``imaplib.IMAP4._get_response`` for one response: an untagged FETCH is stored here as imaplib
    stores it (each literal with the text before it, then the rest of the line); any other line goes back
    to imaplib's own reader."""
    line = lines()
    found = _UNTAGGED_FETCH.match(line)
    if found is None:
        lines.back = line
        return imaplib_reads()
    number, rest = found.groups()
    data = number + b" " + rest if rest else number
    untagged = imap.untagged_responses
    while (size := _literal_size(data)) is not None:
        literal = imap.read(size)  # a read that fails leaves nothing behind of this response, as in imaplib
        untagged.setdefault("FETCH", []).append((data, literal))
        data = lines()
    untagged.setdefault("FETCH", []).append(data)
    return line


def _literal_size(data: bytes) -> int | None:
    """The size of the literal ``data`` ends with (``{n}``, as imaplib's ``.*{(?P<size>\\d+)}$`` finds it);
    None when it ends with none."""
    start = data.rfind(b"{") if data.endswith(b"}") else -1
    if start < 0:
        return None
    digits = data[start + 1 : -1]
    return int(digits) if digits.isdigit() else None

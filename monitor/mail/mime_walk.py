"""The first text part of a message prefix, found by a small MIME walker (pure).

The standard library's parser builds every part of the first 4 KB of a message as a Message object to
find its first text/plain part: most of the cost of a text preview. This walker reads the same bytes
line by line as ``email.feedparser`` does (boundaries, part headers, the end of a part) and decodes
only the part it returns. Whatever it does not read exactly as the standard library does (a forwarded
``message/*`` part, RFC 2231 or odd parameters, uuencode, non-ASCII Content-Type, an attachment name
to check) makes it answer None, and the caller parses the message with the standard library. A test
compares both on every message of the corpora.
"""

from __future__ import annotations

import functools
import importlib
import quopri
import re
from collections.abc import Callable, Mapping
from email.message import Message
from types import MappingProxyType
from typing import cast

from monitor.mail.headers import parse_header_block

_HEADER_LINE = re.compile(rb"^(?:From |[\041-\071\073-\176]*:|[\t ])")
_PARAM = re.compile(r'\s*;\s*([A-Za-z0-9_.\-]+)\s*=\s*("[^"\\]*"|[^;"\s<>]*)\s*')
_BLANK = (b"\r\n", b"\n", b"\r")
# What Message.get_payload(decode=True) uses for base64 (it tolerates bad padding); no typing stub.
_decode_b = cast(
    Callable[[bytes], tuple[bytes, list[object]]], importlib.import_module("email._encoded_words").decode_b
)
_SEPARATOR_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\r|\n)?\Z")


class _Unsure(Exception):
    """Something the walker does not read exactly as the standard library: fall back to it."""


Leaf = tuple[str, str | None, bytes]
"""A leaf part: (content type, charset, decoded payload)."""


def first_text(headers: Message, body: bytes) -> tuple[str, str | None, bytes] | None:
    """The first text/plain leaf (else the first text/html one) of a message, as ``email`` walks it.

    ``headers`` is the message's parsed header block, ``body`` what follows its blank line. Returns
    ``(content type, charset, decoded payload)``, ``("", None, b"")`` when there is no text part, or None
    when the standard library must decide.
    """
    try:
        lines = body.splitlines(keepends=True)
        found: list[Leaf] = []
        _entity(headers, lines, 0, [], found)
    except _Unsure:
        return None
    except (ValueError, IndexError, TypeError):
        return None
    for leaf in found:
        if leaf[0] == "text/plain":
            return leaf
    return found[0] if found else ("", None, b"")


MAX_REMEMBERED_PART_HEADERS = 512
"""Part header blocks up to this size are parsed once and remembered: mail clients write the same few
(``Content-Type: text/plain; charset="UTF-8"`` and its transfer encoding) in message after message."""


@functools.lru_cache(maxsize=256)
def _remembered_part_headers(raw: bytes) -> Message:
    return parse_header_block(raw)


def _part_headers(raw: bytes) -> Message:
    """A part's parsed header block; the walker only reads it (a remembered one is shared)."""
    if len(raw) > MAX_REMEMBERED_PART_HEADERS:
        return parse_header_block(raw)
    return _remembered_part_headers(raw)


def _content_type(headers: Message) -> tuple[str, Mapping[str, str]]:
    value = headers.get("Content-Type")
    if value is None:
        return "text/plain", {}
    if not isinstance(value, str) or not value.isascii():
        raise _Unsure
    if len(value) > MAX_REMEMBERED_PART_HEADERS:
        return _parsed_content_type(value)
    return _remembered_content_type(value)


def _parsed_content_type(value: str) -> tuple[str, Mapping[str, str]]:
    head, _, rest = value.partition(";")
    ctype = head.strip().lower()
    if ctype.count("/") != 1:
        ctype = "text/plain"
    params: dict[str, str] = {}
    if rest:
        text = ";" + rest
        pos = 0
        while pos < len(text):
            match = _PARAM.match(text, pos)
            if match is None or match.end() == pos:
                raise _Unsure
            name, raw = match.group(1).lower(), match.group(2)
            params.setdefault(name, raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw)
            pos = match.end()
    return ctype, MappingProxyType(params)  # read-only: a remembered one is shared


# The same few content types come in part after part; the walker only reads the parameters.
_remembered_content_type = functools.lru_cache(maxsize=256)(_parsed_content_type)


def _matcher(boundary: bytes) -> Callable[[bytes], bool | None]:
    """None: not this boundary; False: a part boundary; True: the close boundary."""
    separator = b"--" + boundary

    def match(line: bytes) -> bool | None:
        if not line.startswith(separator):
            return None
        tail = _SEPARATOR_TAIL.match(line, len(separator))
        if tail is None:
            return None
        return tail.group(1) is not None

    return match


def _at_end(stack: list[Callable[[bytes], bool | None]], line: bytes) -> bool:
    return line[:2] == b"--" and any(match(line) is not None for match in stack)


def _part_end(stack: list[Callable[[bytes], bool | None]], lines: list[bytes], pos: int) -> int:
    """The first line from ``pos`` on that is an enclosing boundary (:func:`_at_end`), else the end."""
    end, count = pos, len(lines)
    while end < count:
        line = lines[end]
        if line[:2] == b"--" and any(match(line) is not None for match in stack):
            return end
        end += 1
    return end


def _entity(
    headers: Message,
    lines: list[bytes],
    pos: int,
    stack: list[Callable[[bytes], bool | None]],
    found: list[Leaf],
) -> int:
    """Walk one entity whose body starts at ``lines[pos]``; append its leaves; return where it ends."""
    ctype, params = _content_type(headers)
    maintype = ctype.split("/", 1)[0]
    if maintype == "message":
        raise _Unsure
    if maintype != "multipart":
        end = _part_end(stack, lines, pos) if stack else len(lines)
        if ctype in ("text/plain", "text/html"):
            disposition = headers.get("Content-Disposition")
            if "name" in params or (disposition is not None and "name" in str(disposition).lower()):
                raise _Unsure  # get_filename() decides whether it is an attachment
            payload = b"".join(lines[pos:end])
            found.append((ctype, params.get("charset"), _decode(headers, payload, inside=bool(stack))))
        return end
    boundary = params.get("boundary")
    if boundary is None or not boundary.rstrip():
        raise _Unsure
    match = _matcher(boundary.rstrip().encode("ascii"))
    inner = [*stack, match]
    while pos < len(lines):  # the preamble
        line = lines[pos]
        if _at_end(stack, line):
            raise _Unsure  # no start boundary: the standard library keeps the body as text
        if match(line) is not None:
            break
        pos += 1
    else:
        raise _Unsure
    while pos < len(lines):
        line = lines[pos]
        if _at_end(stack, line):
            return pos  # an enclosing boundary (an unclosed part)
        kind = match(line)
        if kind is None:
            raise _Unsure  # cannot happen: a part ends at a boundary or the end
        if kind:  # the close boundary: the epilogue runs to the enclosing boundary or the end
            return _part_end(stack, lines, pos + 1)
        while pos < len(lines) and match(lines[pos]) is False:
            pos += 1
        start = pos
        while pos < len(lines) and not _at_end(inner, lines[pos]) and _HEADER_LINE.match(lines[pos]):
            pos += 1
        part_headers = _part_headers(b"".join(lines[start:pos]))
        if pos < len(lines) and lines[pos] in _BLANK:
            pos += 1
        before = len(found)
        pos = _entity(part_headers, lines, pos, inner, found)
        if any(leaf[0] == "text/plain" for leaf in found[before:]):
            return pos  # the walk stops at the first text/plain part: the rest does not matter
    return pos


def _decode(headers: Message, payload: bytes, *, inside: bool) -> bytes:
    """``Message.get_payload(decode=True)`` of a leaf (inside a multipart, feedparser removes the line
    break before the boundary)."""
    if inside:
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        elif payload.endswith((b"\n", b"\r")):
            payload = payload[:-1]
    encoding = headers.get("Content-Transfer-Encoding")
    cte = str(encoding).lower() if encoding is not None else ""
    if cte == "quoted-printable":
        return quopri.decodestring(payload)
    if cte == "base64":
        return _decode_b(b"".join(payload.splitlines()))[0]
    if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        raise _Unsure
    return payload

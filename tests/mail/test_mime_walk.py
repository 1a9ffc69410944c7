"""The IMAP preview's MIME walker gives the standard library parser's preview on every corpus message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.mail.headers import WANTED_HEADERS, parse_header_block
from monitor.mail.mime_walk import first_text
from monitor.mail.preview import preview, preview_of_parts
from monitor.sources.imap import TEXT_PREVIEW_BYTES

CORPORA = Path("/work/shared/corpora/email")
_WANTED = {name.lower() for name in WANTED_HEADERS}
_BREAK = re.compile(rb"\r\n\r\n|\n\n")


def corpus_files() -> list[Path]:
    if not CORPORA.is_dir():
        pytest.fail(f"the mail corpora are missing ({CORPORA}): see docs/development.md, Corpora")
    return sorted(p for p in CORPORA.rglob("*") if p.is_file() and p.suffix not in {".md", ".txt", ".py"})


def imap_parts(raw: bytes) -> tuple[bytes, bytes]:
    """What Dovecot answers: ``BODY[HEADER.FIELDS (wanted)]`` and the whole ``BODY[TEXT]``."""
    found = _BREAK.search(raw)
    head, text = (raw[: found.start()], raw[found.end() :]) if found else (raw, b"")
    fields: list[bytes] = []
    keep = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if keep:
                fields.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = b":" in line and name in _WANTED
        if keep:
            fields.append(line if line.endswith(b"\n") else line + b"\r\n")
    return b"".join(fields) + b"\r\n", text


def test_same_preview_as_the_standard_library_on_every_corpus_message() -> None:
    files = corpus_files()
    assert len(files) > 2000
    walked = differ = 0
    examples: list[str] = []
    for path in files:
        raw = path.read_bytes()
        header, whole_text = imap_parts(raw)
        # The 4 KB that the IMAP source fetches, the whole text, and a header block without fields.
        cases = ((header, whole_text[:TEXT_PREVIEW_BYTES]), (header, whole_text), (b"", whole_text))
        for head, text in cases:
            block = parse_header_block(head)
            expected = preview(head + b"\r\n" + text)
            got = preview_of_parts(head, block, text)
            if first_text(block, b"\r\n" + text if head else text) is not None:
                walked += 1
            if got != expected:
                differ += 1
                if len(examples) < 5:
                    examples.append(f"{path}: {expected[:80]!r} != {got[:80]!r}")
    assert differ == 0, examples
    assert walked > len(files) * 2  # the walker itself reads most messages, not the fallback


def test_multipart_cut_inside_its_first_part() -> None:
    header = b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    text = (
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        b"\r\nMerci beaucoup =C3=A0 vous, =\r\nAnna\r\n\r\nOn Mon wrote:\r\n> x\r\n"
        b"--b1\r\nContent-Type: text/html\r\n\r\n<p>no</p>\r\n--b1--\r\n"
    )
    block = parse_header_block(header)
    assert first_text(block, b"\r\n" + text) is not None
    assert preview_of_parts(header, block, text) == "Merci beaucoup à vous, Anna"
    assert preview_of_parts(header, block, text[:60]) == preview(header + b"\r\n" + text[:60])


def test_forwarded_message_part_is_left_to_the_standard_library() -> None:
    header = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    text = b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nInner text\r\n--b--\r\n"
    block = parse_header_block(header)
    assert first_text(block, b"\r\n" + text) is None
    assert preview_of_parts(header, block, text) == preview(header + b"\r\n" + text) == "Inner text"

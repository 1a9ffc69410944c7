"""Property-based fuzzing (issue 7): hostile variants of real mail, FETCH responses and configs.

Seeded from ``../shared/corpora``. In CI each target runs ``FUZZ_EXAMPLES`` inputs (default 150, a few
seconds); ``scripts/fuzz.sh`` runs many more. Asserted: no exception escapes, every message yields an
event, and parsing time stays linear (doubling the input at most about doubles the time).
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, load
from monitor.mail.classify import classify
from monitor.mail.event import parse_event
from monitor.mail.headers import parse_header_block
from monitor.sources.imap_fetch import FetchParseError, fetch_responses, parse_fetch_response
from monitor.sources.maildir import MaildirConfig, MaildirSource
from monitor.sources.mbox import scan_mbox
from tests.corpus import corpora_root

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# Bytes hostile mail is made of: separators, brackets, quotes, encoded-word marks, 8-bit, NUL, line ends.
HOSTILE = [b" ", b"\t", b",", b"<", b">", b"(", b")", b'"', b"\\", b"@", b"=?", b"?=", b"=?utf-8?b?",
           b"\r\n", b"\n ", b"\xff", b"\xe9", b"\x00", b":", b";", b"From ", b"\r\n\r\n", b"=?x?q?",
           b"Date: "]  # fmt: skip


@cache
def seeds() -> list[bytes]:
    """The header blocks of a spread of corpus messages (every 15th file: a few hundred)."""
    files = sorted(p for p in corpora_root("email").rglob("*") if p.is_file())
    out = []
    for path in files[::15]:
        raw = path.read_bytes()[:65536]
        cut = raw.find(b"\n\n")
        out.append(raw[: cut + 2] if cut >= 0 else raw)
    return out


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    """A corpus header block with hostile pieces inserted, repeated or cut."""
    raw = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(raw)))
        piece = draw(st.sampled_from(HOSTILE)) if draw(st.booleans()) else draw(st.binary(max_size=40))
        raw[at:at] = piece * draw(st.sampled_from([1, 2, 50, 2000]))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return bytes(raw)


@FUZZ
@given(hostile_mail())
def test_header_parser_and_event_builder_never_raise(raw: bytes) -> None:
    event = parse_event(raw, source="fuzz", folder="inbox", external_id="1", internal_date=NOW)
    assert event.date.tzinfo is not None
    assert event.message_id is None or len(event.message_id) <= 250


@FUZZ
@given(hostile_mail())
def test_classifier_never_raises(raw: bytes) -> None:
    classify(parse_header_block(raw))


FETCH_TOKENS = [b"(", b")", b" ", b"UID", b"1", b"FLAGS", b"INTERNALDATE", b'"', b"NIL", b"{5}",
                b"BODY[HEADER.FIELDS (FROM)]", b"\\Seen", b"-9999", b'"01-Jan-2026 00:00:00 +99999999999"',
                b"\xff", b"[", b"]", b"<0>", b"RFC822.SIZE", b"X-GM-THRID", b"MODSEQ"]  # fmt: skip


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                b"(",
                b")",
                b" ",
                b"UID",
                b"1",
                b"FLAGS",
                b"INTERNALDATE",
                b'"',
                b"NIL",
                b"{5}",
                b"BODY[HEADER.FIELDS (FROM)]",
                b"\\Seen",
                b"-9999",
                b'"01-Jan-2026 00:00:00 +99999999999"',
                b"\xff",
                b"[",
                b"]",
                b"<0>",
                b"RFC822.SIZE",
                b"X-GM-THRID",
                b"MODSEQ",
            ]
        ),
        max_size=30,
    ),
    st.lists(st.binary(max_size=64), max_size=3),
)
def test_fetch_parser_raises_only_fetch_parse_error(tokens: list[bytes], literals: list[bytes]) -> None:
    text = b"1 (" + b" ".join(tokens) + b")"
    try:
        parse_fetch_response(text, literals)
        fetch_responses([(text, literals[0]) if literals else text])
    except FetchParseError:
        pass


@FUZZ
@given(st.lists(hostile_mail(), min_size=1, max_size=5))
def test_every_maildir_message_yields_an_event(
    tmp_path_factory: pytest.TempPathFactory, mails: list[bytes]
) -> None:
    root = tmp_path_factory.mktemp("maildir")
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir()
    for n, raw in enumerate(mails):
        (root / "new" / f"{n}.fuzz").write_bytes(raw)
    config = MaildirConfig.model_validate({"path": root, "folders": {"sent": None}})
    result = MaildirSource("fuzz", config, clock=lambda: NOW).poll(None)
    assert len(result.messages) == len(mails)


@FUZZ
@given(st.lists(hostile_mail(), min_size=1, max_size=5))
def test_the_mbox_reader_splits_any_bytes(
    tmp_path_factory: pytest.TempPathFactory, mails: list[bytes]
) -> None:
    path = tmp_path_factory.mktemp("mbox") / "fuzz.mbox"
    path.write_bytes(b"".join(b"From fuzz@example.com Mon Nov 30 10:00:00 2026\n" + m + b"\n" for m in mails))
    with path.open("rb") as fh:
        entries = list(scan_mbox(fh))
    assert len(entries) >= 1
    for entry in entries:
        parse_event(entry.header, source="fuzz", folder="inbox", external_id="1", internal_date=NOW)


CONFIG_SEED = (Path(__file__).resolve().parents[2] / "config" / "examples").glob("*.yaml")


@FUZZ
@given(st.sampled_from(sorted(CONFIG_SEED)), st.binary(max_size=30), st.integers(0, 10_000))
def test_the_config_loader_raises_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, example: Path, junk: bytes, at: int
) -> None:
    raw = example.read_bytes()
    at = at % (len(raw) + 1)
    path = tmp_path_factory.mktemp("config") / "fuzz.yaml"
    path.write_bytes(raw[:at] + junk + raw[at:])
    with contextlib.suppress(ConfigError):
        load(path, env={}, check_secrets=False)


# --- linear time ----------------------------------------------------------------------------------

UNITS: dict[str, Callable[[int], bytes]] = {
    "to-spaces": lambda n: b"To: support@example.com," + b" " * n + b"x",
    "reply-to-words": lambda n: b"Reply-To: " + b"a " * n,
    "from-parens": lambda n: b"From: " + b"(" * n + b"a@b",
    "from-angles": lambda n: b"From: " + b"<" * n,
    "references": lambda n: b"References: " + b"<a@b> " * (n // 6),
    "msgid-ats": lambda n: b"Message-ID: <" + b"a@" * (n // 2),
    "msgid-quotes": lambda n: b"Message-ID: " + b'<"' * (n // 2),
    "subject-words": lambda n: b"Subject: " + b"=?utf-8?q?a?= " * (n // 14),
    "subject-open-words": lambda n: b"Subject: " + b"=?x?q?" * (n // 6),
    "to-quoted": lambda n: b'To: "' + b"\\" * n,
    "date": lambda n: b"Date: " + b"1 " * (n // 2),
    "folded": lambda n: b"Subject: a" + b"\r\n b" * (n // 4),
}


def _parse_seconds(raw: bytes) -> float:
    best = float("inf")
    gc.disable()  # a collection during one run is noise, not parsing cost
    try:
        for _ in range(5):
            start = time.perf_counter()
            parse_event(raw, source="fuzz", folder="inbox", external_id="1", internal_date=NOW)
            classify(parse_header_block(raw))
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("name", sorted(UNITS))
def test_parse_time_is_linear_in_the_header_size(name: str) -> None:
    make = UNITS[name]
    _parse_seconds(make(1000))  # warm caches
    ratios = []
    for _ in range(3):  # quadratic work fails every round; a busy shared machine spoils at most one
        small = _parse_seconds(b"From: a@b.example\r\n" + make(12_000) + b"\r\n\r\n")
        large = _parse_seconds(b"From: a@b.example\r\n" + make(24_000) + b"\r\n\r\n")
        ratios.append((large - 0.005) / small)
        if large < 3 * small + 0.005:
            break
    else:
        pytest.fail(f"{name}: doubling the header multiplied the time by {min(ratios):.1f}")
    print(f"{name}: {large / 24 * 1000:.3f} ms per KB")
    assert large / 24 < 0.01, f"{name}: {large / 24 * 1000:.2f} ms per KB"

"""``no_reply_senders`` patterns, compiled once, match exactly as one ``fnmatchcase`` per pattern."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from monitor.mail.classify import DEFAULT_NO_REPLY, matches_sender_pattern
from monitor.mail.headers import address_pairs, parse_header_block

CORPORA = Path("/work/shared/corpora/email")


def one_by_one(address: str, patterns: Sequence[str]) -> bool:
    local = address.rpartition("@")[0] if "@" in address else address
    for pattern in patterns:
        pattern = pattern.strip().lower()
        if pattern and fnmatchcase(address if "@" in pattern else local, pattern):
            return True
    return False


def test_same_answer_as_fnmatchcase_on_every_corpus_sender() -> None:
    assert CORPORA.is_dir(), f"the mail corpora are missing ({CORPORA})"
    senders = {"noreply@x.example", "mailer-daemon", "", "a@b@c", "no-reply+tag@shop.example"}
    for path in CORPORA.rglob("*"):
        if path.is_file():
            value = parse_header_block(path.read_bytes()).get("From")
            if value:
                senders.update(addr.lower() for _name, addr in address_pairs(str(value)))
    assert len(senders) > 500
    custom = ["  Bounce*  ", "*@alerts.example.com", "", "[ab]ot?", "*-daemon@*"]
    matched = 0
    for patterns in (DEFAULT_NO_REPLY, custom, [], [*DEFAULT_NO_REPLY, *custom]):
        for sender in senders:
            expected = one_by_one(sender, patterns)
            assert matches_sender_pattern(sender, patterns) is expected, (sender, patterns)
            matched += expected
    assert matched > 20

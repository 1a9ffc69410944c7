"""Reply and forward prefixes: one list for threading and for the classifier."""

from __future__ import annotations

import email.policy
from email.parser import BytesParser

import pytest

from monitor.mail.classify import classify
from monitor.mail.subject import REPLY_PREFIXES, has_reply_prefix, normalized_subject


@pytest.mark.parametrize(
    "subject",
    [
        "x",
        "Re: x",
        "回复: x",
        "回复\uff1ax",  # the full-width colon Chinese clients write
        "ynt: x",
        "AW: x",
        "Re[2]: x",
        "SV: x",
        "RE: Fwd: aw:  X",
        "Re [3] : x",
        "TRS: x",
    ],
)
def test_reply_and_forward_prefixes_give_the_thread_subject(subject: str) -> None:
    assert normalized_subject(subject) == "x"


@pytest.mark.parametrize("subject", ["Rex: x", "Research: x", "Fwd x", "x Re: y"])
def test_words_that_only_look_like_prefixes_stay(subject: str) -> None:
    assert not has_reply_prefix(subject)
    assert normalized_subject(subject) == " ".join(subject.lower().split())


def _verdict(subject: str) -> str | None:
    raw = f"From: a@customer.example\nTo: support@example.com\nSubject: {subject}\n\n".encode()
    return classify(BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)).automated


@pytest.mark.parametrize("prefix", REPLY_PREFIXES)
def test_the_classifier_reads_every_prefix_as_a_person_replying(prefix: str) -> None:
    """A bounce subject behind any reply/forward prefix is someone answering about it, not a bounce."""
    assert _verdict("Undeliverable: Order 1") == "bounce"
    assert _verdict(f"{prefix}: Undeliverable: Order 1") is None
    assert _verdict(f"{prefix.upper()}[2]: Undeliverable: Order 1") is None
    assert normalized_subject(f"{prefix}: Undeliverable: Order 1") == "undeliverable: order 1"

"""``replywatch replay`` end to end on the SpamAssassin easy_ham corpus, checked against our own ground truth.

The corpus (2,500 real 2002 mailing-list messages) is copied into a temporary maildir (the maildir
source never follows symlinks); its ten most frequent posters (by From address) play the team, everyone else
the customers. ``replywatch replay --all`` runs in-process and its CSV is compared with a ground truth
computed here from the raw headers by code that shares nothing with :mod:`monitor.engine` or
:mod:`monitor.mail.headers`. Only the automation verdict is reused:
:func:`monitor.mail.classify.classify` on each message's header block (the classifier has its own corpus
test, ``test_classify_corpus.py``), so that this test measures threading, next-reply and response
semantics, not classification.

Ground truth (:data:`LIST_AWARE`, asserted):

* conversation: messages joined by In-Reply-To and by every References entry (as mail readers thread); a
  message with neither joins the latest message with the same subject (without Re:/Fwd:) exchanged with
  the same customer within 14 days. In-Reply-To tokens that are a person's address (``Message from Gary
  <garym@canada.com> of ...``) are phrases, not parents;
* customer: the From address. Reply-To adds an address the customer may be answered at, unless it names
  the list (List-Post, Mailing-List, or an address the message itself went To/Cc);
* a human message from a non-team address opens an awaiting item unless its author already has one open
  in the conversation (a follow-up does not restart the clock);
* the item closes at the earliest later team message of the conversation that replies to something
  (has a parent) and either is addressed to the customer (To/Cc) or - the list rule - replies to a
  message the customer wrote (In-Reply-To, else the last References entry) and goes beyond the team.

:data:`ADDRESSED` (the same without the list rule: the engine's response rule today) and the brief's
first, stricter definition (In-Reply-To alone, no References, no subject) are printed for comparison.
Items are matched by opening Message-ID and agree when both sides have one with the same status,
responded_at and response id. Every disagreement is attributed to the engine behaviour that causes it
(:data:`HEURISTICS`), by re-running the truth with that behaviour adopted.
"""

from __future__ import annotations

import csv
import email.parser
import email.policy
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import getaddresses, parsedate_tz
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.mail.classify import REASONS, classify
from tests.corpus import corpora_root

EASY_HAM = ("email", "spamassassin", "easy_ham")
NOW = datetime(2002, 12, 31, tzinfo=UTC)
WITHIN = timedelta(hours=24)
TEAM_SIZE = 10
TARGET = 0.99

HEADER = [
    "team", "channel", "id", "customer", "received_at", "responded_at", "response_id", "responder",
    "business_seconds", "wall_seconds", "status", "reason",
]  # fmt: skip
STATUSES = frozenset({"answered_on_time", "answered_late", "waiting", "breached"})
PLAIN_REASONS = frozenset(
    {"internal", "outbound", "duplicate", "follow_up", "response", "acknowledgment", "no_sender"}
    | {"internal_forward", "closing_thanks"}  # documented on monitor.engine.Unopened
)
AUTOMATED_REASONS = frozenset(REASONS) | {"no_reply_sender"}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
MSG_ID = re.compile(r"<([^<>\s]+)>")
MAILTO = re.compile(r"mailto:([^>?,\s]+)", re.IGNORECASE)
LIST_OF = re.compile(r"\blist\s+([^\s;]+@[^\s;]+)", re.IGNORECASE)

_parser = email.parser.BytesParser(policy=email.policy.compat32)


# --- the corpus, read our own way ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    """What the ground truth needs of one corpus message."""

    name: str
    """The corpus file name (also the maildir key)."""
    message_id: str
    date: datetime
    author: str
    """The From address, lower-cased ('' when none): the customer, for a customer's message."""
    reply_to: tuple[str, ...]
    personal: frozenset[str]
    """The author's own addresses: From, and Reply-To unless it names a list (list munging)."""
    recipients: frozenset[str]
    """To and Cc addresses, lower-cased."""
    parents: tuple[str, ...]
    """Every id in In-Reply-To."""
    references: tuple[str, ...]
    subject: str
    thread_index: str | None
    """The conversation part of Outlook's Thread-Index (its first 22 bytes), if any."""
    automated: str | None


def _addresses(values: Iterable[str]) -> list[str]:
    """Lower-cased addr-specs of address header values."""
    return [a.strip().lower() for _, a in getaddresses([str(v) for v in values]) if "@" in a]


def _date(value: str | None) -> datetime:
    """A Date header as an aware UTC datetime."""
    parts = parsedate_tz(value or "")
    assert parts is not None, f"unparsable Date {value!r}"
    offset = parts[9] or 0  # -0000 (unknown zone) and no zone are read as UTC
    naive = datetime(*parts[:6])
    return (naive - timedelta(seconds=offset)).replace(tzinfo=UTC)


def _list_addresses(msg: Message) -> set[str]:
    """Addresses that name the list (or group) a message went to: List-Post, Mailing-List, To and Cc."""
    found = {a.lower() for a in MAILTO.findall(str(msg.get("List-Post", "")))}
    found |= {a.lower() for a in LIST_OF.findall(str(msg.get("Mailing-List", "")))}
    found |= set(_addresses([*(msg.get_all("To") or []), *(msg.get_all("Cc") or [])]))
    return found


def read_mail(path: Path) -> Mail:
    """Parse one corpus file's header block."""
    msg = _parser.parsebytes(path.read_bytes(), headersonly=True)
    # Not MSG_ID: one corpus id has a quoted local part with spaces (RFC 5322 §3.6.4 obs-id-left).
    raw_id = re.sub(r"\r?\n", "", str(msg.get("Message-ID", ""))).strip()
    assert raw_id.startswith("<") and raw_id.endswith(">"), f"{path.name}: Message-ID {raw_id!r}"
    authors = _addresses(msg.get_all("From") or [])
    author = authors[0] if authors else ""
    reply_to = tuple(_addresses(msg.get_all("Reply-To") or []))
    return Mail(
        name=path.name,
        message_id=raw_id[1:-1],
        date=_date(msg.get("Date")),
        author=author,
        reply_to=reply_to,
        personal=frozenset({author, *(set(reply_to) - _list_addresses(msg))} - {""}),
        recipients=frozenset(_addresses([*(msg.get_all("To") or []), *(msg.get_all("Cc") or [])])),
        parents=tuple(MSG_ID.findall(str(msg.get("In-Reply-To", "")))),
        references=tuple(MSG_ID.findall(str(msg.get("References", "")))),
        subject=" ".join(str(msg.get("Subject", "")).split()),
        thread_index=str(msg["Thread-Index"]).strip()[:30] if msg["Thread-Index"] else None,
        automated=classify(msg).automated,
    )


def read_corpus(folder: Path) -> list[Mail]:
    """Every corpus message, with In-Reply-To tokens that are people's addresses dropped.

    Old mailers (exmh, Emacs) write ``In-Reply-To: Message from Gary <garym@canada.com> of "date"``: an
    address in angle brackets that parses as a msg-id yet names no message. Any token that is the From
    address of a corpus message is such a phrase, not a parent.
    """
    mails = [read_mail(p) for p in sorted(folder.iterdir()) if p.is_file()]
    people = {m.author for m in mails}
    return [replace(m, parents=tuple(p for p in m.parents if p.lower() not in people)) for m in mails]


def top_posters(mails: list[Mail], n: int) -> list[str]:
    """The ``n`` most frequent From addresses (ties by address)."""
    counts = Counter(m.author for m in mails if m.author)
    return [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --- ground truth ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Semantics:
    """Which definition of conversation, customer and response the ground truth uses."""

    list_aware: bool = True
    """A team message replying to a customer's message (In-Reply-To, else the last References entry)
    answers that customer even when it goes To the list only."""
    references: str = "all"
    """``all``: In-Reply-To and every References entry join a message to its thread (as mail readers
    thread); ``agreeing``: References only where the last entry is the In-Reply-To parent, or stands in
    for a missing In-Reply-To; ``none``: In-Reply-To alone."""
    subject_fallback: bool = True
    """A message with neither In-Reply-To nor References joins the latest message of the same subject
    (without Re:/Fwd:) exchanged with the same customer, at most 14 days before."""
    reply_to_customer: bool = False
    """The customer is the first Reply-To address (else From), Reply-To addresses all count as theirs."""
    last_in_reply_to: bool = False
    """Only the last id of In-Reply-To counts."""
    thread_index: bool = False
    """Outlook's Thread-Index joins messages too, and a message that has one never joins by subject."""


ADDRESSED = Semantics(list_aware=False)
LIST_AWARE = Semantics(list_aware=True)
STRICT_ADDRESSED = Semantics(list_aware=False, references="none", subject_fallback=False)
STRICT_LIST_AWARE = Semantics(list_aware=True, references="none", subject_fallback=False)
"""The brief's first definition: threads by In-Reply-To only (printed for comparison, not asserted)."""

REPLY_TO_CAUSE = "engine takes the customer from Reply-To"
HEURISTICS: dict[str, dict[str, Any]] = {
    REPLY_TO_CAUSE: {"reply_to_customer": True},
    "engine has no list rule (a reply To the list answers nobody)": {"list_aware": False},
    "engine uses References only where they agree with In-Reply-To": {"references": "agreeing"},
    "engine joins parentless messages by subject": {"subject_fallback": True},
    "engine reads only the last In-Reply-To id": {"last_in_reply_to": True},
    "engine trusts Outlook's Thread-Index over the subject": {"thread_index": True},
}
"""What the engine does differently, as truth settings: a disagreement is attributed to the smallest
set of them that, adopted by the truth, makes the item agree."""

SUBJECT_WINDOW = timedelta(days=14)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass(slots=True)
class Expected:
    """An awaiting item as the ground truth sees it."""

    opening: str
    customer: str
    addresses: frozenset[str]
    received_at: datetime
    responded_at: datetime | None = None
    response_id: str | None = None

    @property
    def status(self) -> str:
        """The reply_within verdict at ``NOW`` (wall clock, 24 h)."""
        end = max(self.responded_at or NOW, self.received_at)
        late = end > self.received_at + WITHIN
        if self.responded_at is not None:
            return "answered_late" if late else "answered_on_time"
        return "breached" if late else "waiting"


def _in_reply_to(m: Mail, rules: Semantics) -> tuple[str, ...]:
    """The In-Reply-To ids that count."""
    return m.parents[-1:] if rules.last_in_reply_to else m.parents


def _links(m: Mail, rules: Semantics) -> tuple[str, ...]:
    """The ids that join ``m`` to its thread."""
    parents = _in_reply_to(m, rules)
    if rules.thread_index and m.thread_index:
        parents = (*parents, f"thread-index:{m.thread_index}")
    if rules.references == "all":
        return (*parents, *m.references)
    if rules.references == "agreeing":
        if not parents:
            return m.references[-1:]
        if m.references and m.references[-1] == parents[-1]:
            return (*parents, *m.references)
    return parents


def _replied_to(m: Mail, rules: Semantics) -> tuple[str, ...]:
    """The message(s) ``m`` answers: In-Reply-To, else the last References entry."""
    parents = _in_reply_to(m, rules)
    if not parents and rules.references != "none":
        return m.references[-1:]
    return parents


def _customer(m: Mail, rules: Semantics) -> tuple[str, frozenset[str]]:
    """Who a customer's message is from, and every address they may be answered at."""
    if rules.reply_to_customer and m.reply_to:
        return m.reply_to[0], frozenset({m.author, *m.reply_to})
    return m.author, m.personal


def conversations(
    mails: list[Mail], team: frozenset[str], rules: Semantics
) -> tuple[list[list[Mail]], set[str]]:
    """Connected components of thread links, each in time order; and the ids joined by subject."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra

    latest: dict[tuple[str, str], Mail] = {}
    by_subject: set[str] = set()
    for m in sorted(mails, key=lambda m: (m.date, m.message_id)):
        links = _links(m, rules)
        for p in links:
            join(m.message_id, p)
        if not rules.subject_fallback:
            continue
        subject = _SUBJECT_PREFIX.sub("", m.subject).lower()
        if m.author in team:
            counterparts = sorted(m.recipients - team)
        else:
            counterparts = [*_customer(m, rules)[1], _customer(m, rules)[0]]
        if not links and subject:
            for address in counterparts:
                earlier = latest.get((subject, address))
                if earlier is not None and m.date - earlier.date <= SUBJECT_WINDOW:
                    join(earlier.message_id, m.message_id)
                    by_subject.add(m.message_id)
                    break
        for address in counterparts:
            latest[(subject, address)] = m
    groups: dict[str, list[Mail]] = defaultdict(list)
    for m in mails:
        groups[root(m.message_id)].append(m)
    return [sorted(g, key=lambda m: (m.date, m.message_id)) for g in groups.values()], by_subject


def ground_truth(mails: list[Mail], team: frozenset[str], rules: Semantics) -> dict[str, Expected]:
    """Expected awaiting items by opening Message-ID."""
    author = {m.message_id: m.author for m in mails}
    items: dict[str, Expected] = {}
    groups, by_subject = conversations(mails, team, rules)
    for conversation in groups:
        open_items: dict[str, Expected] = {}
        for m in conversation:
            if m.automated or not m.author:
                continue
            if m.author in team:
                if not _links(m, rules) and m.message_id not in by_subject:
                    continue  # starts something new: answers nobody
                # The list rule: replying to a customer's message, to anyone beyond the team (the list),
                # answers that customer; a reply to colleagues only is an internal discussion.
                public = not m.recipients <= team or not m.recipients  # no To/Cc: sent to the list unseen
                replied_to = (
                    {author.get(p) for p in _replied_to(m, rules)} if rules.list_aware and public else set()
                )
                for customer, item in list(open_items.items()):
                    if item.addresses & m.recipients or customer in replied_to:
                        item.responded_at, item.response_id = m.date, m.message_id
                        del open_items[customer]
                continue
            customer, addresses = _customer(m, rules)
            if customer in open_items:
                continue  # a follow-up while waiting does not restart the clock
            item = Expected(m.message_id, customer, addresses, m.date)
            open_items[customer] = items[m.message_id] = item
    return items


# --- replay ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replay:
    """One ``replywatch replay --all`` run over the corpus."""

    mails: list[Mail] = field(repr=False)
    team: frozenset[str]
    rows: list[dict[str, str]] = field(repr=False)
    header: list[str]
    exit_code: int
    maildir: Path

    @property
    def items(self) -> dict[str, dict[str, str]]:
        """Item rows by opening id."""
        return {r["id"]: r for r in self.rows if r["status"]}


def build_maildir(files: list[Path], root: Path) -> Path:
    """A maildir whose ``cur/`` holds a copy (flag S) of every file, named after it."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, root / "cur" / f"{path.name}:2,S")
    return root


def write_config(path: Path, maildir: Path, team: list[str]) -> Path:
    """A config with one maildir source and one always-open team made of ``team``."""
    addresses = "".join(f"\n      - {a}" for a in team)
    path.write_text(
        f"""store: {{url: "sqlite:///{path.parent / "unused.db"}"}}
sources:
  easy-ham: {{kind: maildir, path: "{maildir}", folders: {{inbox: INBOX, sent: null}}}}
teams:
  regulars:
    addresses:{addresses}
    internal_domains: []
    sources: [easy-ham]
    rules:
      - {{kind: reply_within, within: 24h, business_hours: false}}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    """Run ``replywatch replay --all`` once over the corpus (copied into a maildir)."""
    corpus = corpora_root(*EASY_HAM)
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    assert len(files) == 2500, f"{corpus} holds {len(files)} files, expected 2,500"
    mails = read_corpus(corpus)
    team = top_posters(mails, TEAM_SIZE)
    tmp = tmp_path_factory.mktemp("easy_ham_replay")
    maildir = build_maildir(files, tmp / "Maildir")
    cfg = write_config(tmp / "replywatch.yaml", maildir, team)
    out = tmp / "replay.csv"
    code = main(["replay", "-c", str(cfg), "--now", "2002-12-31T00:00:00Z", "--out", str(out), "--all"])
    with out.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    return Replay(mails, frozenset(team), rows, header, code, maildir)


# --- comparison ------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    """The CSV's time format."""
    return value.isoformat().replace("+00:00", "Z") if value else ""


def agrees(row: dict[str, str] | None, item: Expected | None) -> bool:
    """Both sides have the item, with the same status, response time and response."""
    return (
        row is not None
        and item is not None
        and row["status"] == item.status
        and row["responded_at"] == _iso(item.responded_at)
        and row["response_id"] == (item.response_id or "")
    )


def _unexplained(replay: Replay, opening: str) -> str:
    """A category for a disagreement no engine behaviour explains."""
    known = {m.message_id for m in replay.mails}
    if opening not in known or not MSG_ID.fullmatch(f"<{opening}>"):
        return (
            "engine drops a Message-ID with a quoted, spaced local part (RFC 5322 obs-id-left) "
            "and keys the item by its source id"
        )
    return "unexplained"


def _reply_to_kind(replay: Replay, opening: str) -> str:
    """What the Reply-To behind a customer-identity disagreement named."""
    opener = next((m for m in replay.mails if m.message_id == opening), None)
    if opener is None or not opener.reply_to or opener.reply_to[0] == opener.author:
        return " [the Reply-To of another message of the conversation]"
    if opener.reply_to[0] in opener.personal:
        return " [Reply-To is the author's alias, e.g. a TMDA dated address]"
    return " [Reply-To is the list's address]"


def _same(row: dict[str, str] | None, item: Expected | None) -> bool:
    """Agreement, where neither side having the item also counts."""
    return (row is None and item is None) or agrees(row, item)


@dataclass(slots=True)
class Comparison:
    """Agreement of the engine's items with one ground truth, disagreements by cause."""

    name: str
    total: int = 0
    agree: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def ratio(self) -> float:
        """Share of items both sides agree on."""
        return self.agree / self.total if self.total else 1.0

    def summary(self) -> str:
        """A printable report."""
        lines = [
            f"[{self.name}] items {self.total}, agreements {self.agree} ({self.ratio:.2%}), "
            f"disagreements {self.total - self.agree}"
        ]
        for category, n in self.categories.most_common():
            lines.append(f"  {n:5d}  {category}; e.g. {', '.join(self.examples[category][:4])}")
        return "\n".join(lines)


def compare(replay: Replay, rules: Semantics, name: str) -> Comparison:
    """Match engine items with expected items by opening id; attribute every disagreement.

    A disagreement is attributed to the smallest set of engine behaviours (:data:`HEURISTICS`) that,
    adopted by the truth, makes that item agree; else it stays unexplained.
    """
    truth = ground_truth(replay.mails, replay.team, rules)
    causes = [c for c, knob in HEURISTICS.items() if any(getattr(rules, k) != v for k, v in knob.items())]
    variants: list[tuple[str, dict[str, Expected]]] = []
    for size in (1, 2, 3):
        for combo in combinations(causes, size):
            knobs = {k: v for c in combo for k, v in HEURISTICS[c].items()}
            variants.append(
                (" + ".join(combo), ground_truth(replay.mails, replay.team, replace(rules, **knobs)))
            )
    result = Comparison(name)
    engine = replay.items
    for opening in sorted(set(engine) | set(truth)):
        result.total += 1
        row = engine.get(opening)
        if agrees(row, truth.get(opening)):
            result.agree += 1
            continue
        cause = next((c for c, variant in variants if _same(row, variant.get(opening))), None)
        if cause is None:
            cause = _unexplained(replay, opening)
        elif REPLY_TO_CAUSE in cause:
            cause += _reply_to_kind(replay, opening)
        result.categories[cause] += 1
        result.examples[cause].append(opening)
    return result


# --- tests -----------------------------------------------------------------------------------------


def test_csv_header_and_exit_code(replay: Replay) -> None:
    assert replay.header == HEADER
    statuses = Counter(r["status"] for r in replay.rows if r["status"])
    assert statuses, "replay produced no awaiting items"
    expected = 1 if statuses["breached"] or statuses["answered_late"] else 0
    assert replay.exit_code == expected


def test_rows_are_well_formed(replay: Replay) -> None:
    for row in replay.rows:
        assert row["team"] == "regulars" and row["channel"] == "email", row
        for column in ("id", "response_id"):
            assert "<" not in row[column] and ">" not in row[column], row
        for column in ("received_at", "responded_at"):
            assert row[column] == "" or ISO_UTC.match(row[column]), row
        assert ISO_UTC.match(row["received_at"]), row
        if row["status"]:
            assert row["status"] in STATUSES, row
            assert row["reason"] == "", row
            assert row["customer"], row
            assert float(row["wall_seconds"]) >= 0 and float(row["business_seconds"]) >= 0, row
            assert bool(row["responded_at"]) == bool(row["response_id"]), row
            answered = row["status"].startswith("answered_")
            assert answered == bool(row["responded_at"]), row
        else:
            reason = row["reason"]
            kind, _, detail = reason.partition(":")
            assert reason in PLAIN_REASONS or (kind == "automated" and detail in AUTOMATED_REASONS), row


def test_every_message_is_counted_exactly_once(replay: Replay) -> None:
    ids = Counter(r["id"] for r in replay.rows if r["team"] == "regulars")
    corpus = Counter(m.message_id for m in replay.mails)
    assert len(corpus) == len(replay.mails) == 2500
    lost = sorted(set(corpus) - set(ids))
    extra = sorted(set(ids) - set(corpus))
    twice = sorted(i for i, n in ids.items() if n > 1)
    assert not lost and not extra and not twice, (
        f"message ids missing from the CSV: {lost[:5]}; ids not in the corpus: {extra[:5]}; "
        f"ids on more than one row: {twice[:5]}"
    )


def test_team_mail_never_opens_an_item(replay: Replay) -> None:
    author = {m.message_id: m.author for m in replay.mails}
    opened_by_team = [i for i in replay.items if author.get(i) in replay.team]
    assert not opened_by_team, opened_by_team[:5]


def test_items_agree_with_ground_truth(replay: Replay) -> None:
    result = compare(replay, LIST_AWARE, "list_aware (asserted)")
    print()
    print(result.summary())
    print(compare(replay, ADDRESSED, "addressed: without the list rule").summary())
    print(compare(replay, STRICT_LIST_AWARE, "list_aware, In-Reply-To only").summary())
    print(compare(replay, STRICT_ADDRESSED, "addressed, In-Reply-To only").summary())
    assert result.ratio >= TARGET, result.summary()

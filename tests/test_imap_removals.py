"""IMAP removals against a real Dovecot: expunged and moved mail found cheaply, stale rows purged after a
UIDVALIDITY change, with QRESYNC, with CONDSTORE only and with neither, through the store on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.sources.base import PollResult
from monitor.store.db import Store
from tests.servers.dovecot import Mailbox
from tests.test_imap_source import NOW, Recorder, make_source, message, team  # noqa: F401 - fixture

pytestmark = pytest.mark.server


def expunge(mailbox: Mailbox, folder: str, uids: list[int]) -> None:
    """Delete as a mail client does, from its own connection: SELECT, STORE +FLAGS \\Deleted, EXPUNGE."""
    with mailbox.client() as client:
        client.select_folder(folder)
        client.add_flags(uids, [b"\\Deleted"])
        client.expunge()


def searches(recorder: Recorder) -> list[tuple[object, ...]]:
    return [args for name, args, _ in recorder.calls if name == "search"]


def gone(result: PollResult, known: set[str]) -> set[str]:
    """What a poll says left the inbox: the ids QRESYNC named, or the known ones its listing lacks."""
    if "inbox" in result.remaining:
        assert result.removed == []
        return known - result.remaining["inbox"]
    return set(result.removed)


MODES = {"qresync": (), "condstore": ("QRESYNC",), "plain": ("CONDSTORE", "QRESYNC")}


@pytest.mark.parametrize("mode", list(MODES))
def test_expunge_is_found_with_one_command_and_a_quiet_poll_stays_one_status_per_folder(
    team: Mailbox,  # noqa: F811 - fixture
    mode: str,
) -> None:
    recorder = Recorder(hide=MODES[mode])
    source = make_source(team, factory=recorder)
    first = source.poll(None)
    validity = team.uidvalidity("INBOX")
    # The first read lists every folder: nothing was stored before, so nothing is removed.
    assert first.remaining["inbox"] == {f"INBOX/{validity}/{uid}" for uid in (1, 2, 3)}

    recorder.reset()
    quiet = source.poll(first.cursor)
    assert quiet.remaining == {} and quiet.removed == []
    assert [name for name in recorder.wire if name != "CAPABILITY"] == ["STATUS", "STATUS"]

    # Only grew: a new message is fetched, nothing is listed.
    team.append("INBOX", message("Another question", msgid="q2@example.org"))
    recorder.reset()
    grown = source.poll(quiet.cursor)
    assert [m.message_id for m in grown.messages] == ["q2@example.org"]
    assert grown.remaining == {}
    assert ("ALL",) not in searches(recorder)

    # A colleague deletes two messages: found with one command (QRESYNC's VANISHED, else one UID SEARCH
    # ALL listing what remains), in that folder only.
    known = {f"INBOX/{validity}/{uid}" for uid in (1, 2, 3, 4)}
    expunge(team, "INBOX", [1, 4])
    recorder.reset()
    after = source.poll(grown.cursor)
    assert gone(after, known) == {f"INBOX/{validity}/1", f"INBOX/{validity}/4"}
    assert set(after.remaining) <= {"inbox"}
    assert searches(recorder).count(("ALL",)) == (0 if mode == "qresync" else 1)
    assert bool(after.removed) is (mode == "qresync")
    assert after.messages == []
    quiet_again = source.poll(after.cursor)
    assert quiet_again.remaining == {} and quiet_again.removed == []

    # Deleted and a new one arrived between two polls: the count alone stays the same, still found.
    team.append("INBOX", message("Third question", msgid="q3@example.org"))
    expunge(team, "INBOX", [2])
    both = source.poll(after.cursor)
    assert [m.message_id for m in both.messages] == ["q3@example.org"]
    assert gone(both, {f"INBOX/{validity}/{uid}" for uid in (2, 3)}) == {f"INBOX/{validity}/2"}


@pytest.mark.parametrize("mode", ["qresync", "plain"])
def test_expunged_mail_is_marked_removed_in_the_store(
    team: Mailbox,  # noqa: F811 - fixture
    store: Store,
    mode: str,
) -> None:
    source = make_source(team, factory=Recorder(hide=MODES[mode]))
    first = source.poll(None)
    store.save_poll("support", first, NOW)
    stamp = store.engine_stamp(["support"])
    expunge(team, "INBOX", [1])
    later = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    saved = store.save_poll("support", source.poll(first.cursor), later)
    assert (saved.inserted, saved.updated, saved.removed) == (0, 0, 1)
    rows = {m.message_id: m for m in store.messages(["support"])}
    assert rows["q1@example.org"].removed_at == later
    assert {k for k, m in rows.items() if m.removed_at is None} == {
        "ar1@example.org",
        "nl1@shop.example.net",
        "r1@example.com",
    }
    assert store.engine_stamp(["support"]) == later != stamp
    assert [m.message_id for m in store.removed_messages(["support"])] == ["q1@example.org"]


def test_uidvalidity_change_purges_rows_that_came_back_and_removes_the_rest(
    team: Mailbox,  # noqa: F811 - fixture
    store: Store,
) -> None:
    team.append("Sent", message("Re: old", sender="support@example.com", msgid="r0@example.com"))
    source = make_source(team)
    first = source.poll(None)
    store.save_poll("support", first, NOW)
    old = team.uidvalidity("Sent")
    # The Sent folder is rebuilt (a server migration): r1 comes back under new UIDs, r0 does not.
    team.delete_folder("Sent")
    team.create_folder("Sent")
    team.append("Sent", message("Re: Order 17 missing", sender="support@example.com", msgid="r1@example.com"))
    team.append("Sent", message("Re: new", sender="support@example.com", msgid="r2@example.com"))
    second = source.poll(first.cursor)
    assert second.resync
    new = team.uidvalidity("Sent")
    assert new != old
    later = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    store.save_poll("support", second, later)

    sent = {
        (m.external_id, m.message_id, m.removed_at) for m in store.messages(["support"]) if m.folder == "sent"
    }
    # r1's old row was superseded by the re-read (deleted: one row per message, nothing twice); r0 is gone
    # from the server: its row is kept, removed (an answer stays an answer).
    assert sent == {
        (f"Sent/{new}/1", "r1@example.com", None),
        (f"Sent/{new}/2", "r2@example.com", None),
        (f"Sent/{old}/2", "r0@example.com", later),
    }
    # The inbox did not change: untouched.
    assert all(m.removed_at is None for m in store.messages(["support"]) if m.folder == "inbox")

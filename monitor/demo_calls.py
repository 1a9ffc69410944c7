"""A realistic sample call log for ``replywatch demo``: an Asterisk ``Master.csv`` dated relative to now.

The support line (the dialplan context and queue ``support``) rings Alice (201) and Bob (202). The log
holds missed calls returned in time and late, callers still waiting and past their deadline, a caller who
tried twice, an answered call, an internal call, a short abandon and a call the IVR answered that reached
nobody. Times are written in UTC (the demo's call-log source has ``timezone: UTC``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from monitor.demo_mail import BREACHED_MIN, WAITING_MAX

LINE = "support"
"""The queue the demo's support line rings (the team's ``lines``)."""
MEMBERS = {"201": "Alice Smith", "202": "Bob Jones"}
"""Extension -> member."""


@dataclass(frozen=True, slots=True)
class CallLogSummary:
    """What the generator meant, to compare with what the engine makes of the same log.

    Statuses follow ``replay`` for a ``callback_within: 24h`` rule (see :mod:`monitor.demo_mail` for why
    :data:`WAITING_MAX` and :data:`BREACHED_MIN` hold in any weekly calendar).
    """

    path: Path
    rows: int
    calls: int
    statuses: dict[str, str] = field(default_factory=dict)
    """Linked id of each missed call that opens an item -> its status."""
    attempts: dict[str, int] = field(default_factory=dict)
    """Linked id -> how many missed calls the caller made while waiting (more than one only)."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Linked id of each call that opens none -> why (``answered``, ``internal``, ``short_abandon``...)."""

    @property
    def waiting(self) -> int:
        """Callers not called back yet, in or past their deadline."""
        return sum(status in ("waiting", "breached") for status in self.statuses.values())


class _Log:
    """Rows of a Master.csv (``newcdrcolumns = yes``), in the order Asterisk writes them."""

    def __init__(self, start: datetime) -> None:
        self.rows: list[tuple[datetime, list[str]]] = []
        self.seq = 0
        self.epoch = int(start.timestamp())

    def _id(self, at: datetime) -> str:
        self.seq += 1
        return f"{int(at.timestamp())}.{self.seq}"

    def leg(
        self,
        linkedid: str,
        at: datetime,
        src: str,
        dst: str,
        *,
        dstchannel: str = "",
        app: str = "Dial",
        data: str = "",
        ring: float = 20.0,
        talk: float = 0.0,
        context: str = LINE,
        clid: str = "",
    ) -> None:
        answered = talk > 0
        answer = at + timedelta(seconds=ring) if answered else None
        end = at + timedelta(seconds=ring + talk)
        self.rows.append(
            (
                at,
                [
                    "", src, dst, context, clid or f'"" <{src}>', f"SIP/trunk-{self.seq:08x}", dstchannel,
                    app, data, _t(at), _t(answer), _t(end), f"{ring + talk:.0f}", f"{talk:.0f}",
                    "ANSWERED" if answered else "NO ANSWER", "DOCUMENTATION", self._id(at), "", "",
                    linkedid, str(self.seq),
                ],
            )
        )  # fmt: skip

    def call_id(self, at: datetime) -> str:
        """A linked id for a call starting at ``at``."""
        return f"{int(at.timestamp())}.{self.seq + 1}"


def _t(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def write_demo_call_log(path: Path, *, now: datetime) -> CallLogSummary:
    """Write the sample Master.csv to ``path`` (the parent folder is created); return what it holds."""
    log = _Log(now)
    statuses: dict[str, str] = {}
    attempts: dict[str, int] = {}
    reasons: dict[str, str] = {}

    def missed(at: datetime, caller: str, ring: float = 25.0) -> str:
        """A call to the support queue that rang both phones and was not picked up."""
        linked = log.call_id(at)
        log.leg(linked, at, caller, LINE, app="Queue", data=f"{LINE},t,,,60", ring=ring)
        for ext in MEMBERS:
            log.leg(linked, at, caller, LINE, dstchannel=f"SIP/{ext}-0000", ring=ring)
        return linked

    def call_back(at: datetime, ext: str, number: str, talk: float = 180.0) -> str:
        linked = log.call_id(at)
        log.leg(
            linked, at, ext, number, dstchannel="SIP/trunk-out", ring=8, talk=talk, context="from-internal"
        )
        return linked

    # Called back within half an hour by Alice.
    first = missed(now - timedelta(hours=2), "+442079460101")
    call_back(now - timedelta(hours=1, minutes=30), "201", "+442079460101")
    statuses[first] = "answered_on_time"
    # Called back eight days later by Bob.
    late = missed(now - BREACHED_MIN - timedelta(days=2), "+442079460102")
    call_back(now - timedelta(days=1), "202", "+442079460102", talk=240.0)
    statuses[late] = "answered_late"
    # Still waiting for a call-back.
    waiting = missed(now - WAITING_MAX / 4, "+447700900103")
    statuses[waiting] = "waiting"
    # Tried twice, more than a week ago, never called back.
    breached = missed(now - BREACHED_MIN - timedelta(days=1), "+447700900104")
    again = missed(now - BREACHED_MIN - timedelta(days=1) + timedelta(hours=1), "+447700900104")
    statuses[breached] = "breached"
    attempts[breached] = 2
    reasons[again] = "follow_up"
    # The IVR answered and played a message, nobody spoke to the caller: a missed call, returned by Bob.
    ivr = log.call_id(now - timedelta(hours=5))
    log.leg(
        ivr, now - timedelta(hours=5), "+442079460105", LINE, app="Playback", data="closed", ring=1, talk=30
    )
    call_back(now - timedelta(hours=4), "202", "+442079460105")
    statuses[ivr] = "answered_on_time"
    # Answered by Alice at once: nobody waits.
    answered = log.call_id(now - timedelta(hours=1))
    log.leg(answered, now - timedelta(hours=1), "+442079460106", LINE, dstchannel="SIP/201-0001", talk=300)
    reasons[answered] = "answered"
    # Alice calls Bob.
    internal = log.call_id(now - timedelta(minutes=45))
    log.leg(internal, now - timedelta(minutes=45), "201", "202", dstchannel="SIP/202-0002", talk=60,
            context="from-internal")  # fmt: skip
    reasons[internal] = "internal"
    # Hung up after four seconds of ringing.
    short = missed(now - timedelta(hours=3), "+442079460107", ring=4.0)
    reasons[short] = "short_abandon"

    rows = sorted(log.rows, key=lambda row: row[0])
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for _, row in rows:
        writer.writerow(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")
    calls = len({row[19] for _, row in rows})
    return CallLogSummary(path, len(rows), calls, statuses, attempts, reasons)

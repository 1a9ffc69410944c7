"""End-to-end performance, each figure against its raw baseline measured in the same run: one table.

Run: ``uv run python benchmarks/perf_table.py`` (``--help`` for sizes). Rows:

- daemon start -> the right ``replywatch_awaiting``: ``replywatch run`` as a process against a real Dovecot
  mailbox (TLS, INBOX 80 %, Sent 20 %), from its start until ``/metrics`` shows the open item count that
  the engine finds in the same messages; baseline: a raw imapclient fetch of the same header items.
- no-change poll, wall (``replywatch_source_poll_seconds``: the daemon's poll and store step) and the CPU
  of the same path, against raw ``STATUS`` of both folders with the same items.
- idle daemon with N waiting items: CPU of the evaluations of one minute (every 30 s).
- one ``\\Seen`` flag set -> the next evaluation, against an evaluation with nothing changed.
- ingest of N messages into PostgreSQL, against the same into SQLite.
- peak memory (max RSS) of a process that evaluates a store holding N messages, from a fresh start.
- M mailboxes (Dovecot users with 3 messages each) polled every minute by one daemon process: its CPU
  seconds per minute (over ``--window`` seconds once every mailbox was read) and RSS.

Every ratio is the median of ``--runs`` runs. Targets are those of issue 9.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_bench import messages as engine_messages
from imap_bench import raw_header_fetch, realistic_message, seen_or_not

from monitor.config import validate
from monitor.daemon import Daemon
from monitor.evaluate import Evaluator, team_awaiting
from monitor.events import MessageEvent
from monitor.sources.base import PollResult
from monitor.sources.imap import ImapConfig, ImapSource
from monitor.store.db import Store
from tests.servers.dovecot import DovecotServer, Mailbox, free_port

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STATUS_ITEMS = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"]


@dataclass
class Row:
    what: str
    size: str
    ours: str
    raw: str
    ratio: float | None
    target: str
    met: bool | None


ROWS: list[Row] = []


def row(
    what: str, size: str, ours: str, raw: str, ratio: float | None, target: str, met: bool | None
) -> None:
    ROWS.append(Row(what, size, ours, raw, ratio, target, met))
    print(
        f"  {what} [{size}]: {ours} vs {raw}" + (f" = {ratio:.2f}x" if ratio is not None else ""), flush=True
    )


class BigDovecot(DovecotServer):
    """The test Dovecot with room for one IMAP process per watched mailbox."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        super().__init__(spare_mailboxes=0)

    def _config(self) -> str:
        limit = max(400, self.processes + 50)
        return super()._config().replace("default_process_limit = 400", f"default_process_limit = {limit}")


@contextmanager
def dovecot(processes: int) -> Iterator[DovecotServer]:
    server = BigDovecot(processes)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def store_url(kind: str, tmp: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        try:
            yield f"sqlite:///{tmp / (name + '.db')}"
        finally:
            for suffix in (".db", ".db-wal", ".db-shm"):
                (tmp / (name + suffix)).unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def daemon_config(
    url: str, sources: dict[str, dict[str, Any]], port: int, every: str = "1m"
) -> dict[str, Any]:
    return {
        "store": {"url": url},
        "http": {"listen": f"127.0.0.1:{port or 9687}"},
        "calendars": {"office": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:30"}}},
        "sources": {name: {**settings, "poll_every": every} for name, settings in sources.items()},
        "teams": {
            "support": {
                "calendar": "office",
                "addresses": ["support@example.com"],
                "members": [{"name": f"Agent {i}", "email": [f"agent{i}@example.com"]} for i in range(3)],
                "sources": list(sources),
                "rules": [{"kind": "reply_within", "within": "8h", "warn_before": "1h"}],
            }
        },
    }


def fill(mailbox: Mailbox, count: int, now: datetime, seed: int = 20261102) -> None:
    """``count`` realistic messages over the last 30 days, INBOX 80 %, Sent 20 %."""
    rng = random.Random(seed)
    inbound = int(count * 0.8)
    span = timedelta(days=30) / max(count, 1)
    start = now - timedelta(days=30)
    for folder, n, offset, outbound in (
        ("INBOX", inbound, 0, False),
        ("Sent", count - inbound, inbound, True),
    ):
        times = [start + span * (offset + i) for i in range(n)]
        mailbox.write_messages(
            folder,
            (
                (realistic_message(rng, offset + i, when, outbound=outbound), seen_or_not(rng), when)
                for i, when in enumerate(times)
            ),
        )


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def start_daemon(config: dict[str, Any], tmp: Path, name: str) -> subprocess.Popen[bytes]:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(path), "--log-level", "WARNING"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(port: int, check: Callable[[dict[Any, float]], bool], timeout: float, process: Any) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replywatch exited with {process.returncode}")
        try:
            if check(scrape(port)):
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("replywatch did not reach the expected state")


def awaiting_value(samples: dict[Any, float]) -> float | None:
    return samples.get(("replywatch_awaiting", (("channel", "email"), ("team", "support"))))


# --- rows -------------------------------------------------------------------------------------------


def bench_start(server: DovecotServer, count: int, kinds: list[str], runs: int, tmp: Path) -> None:
    now = datetime.now(UTC)
    mailbox = server.new_mailbox()
    fill(mailbox, count, now)
    settings = {**mailbox.imap_settings("implicit"), "folders": {"inbox": "INBOX", "sent": "Sent"}}
    source = ImapSource("mail", ImapConfig.model_validate(settings))
    header_items = source._fetch_items()
    polled = source.poll(None)  # also warms Dovecot's indexes and cache, for both sides
    source.close()
    loaded = validate(daemon_config("sqlite://", {"mail": settings}, 0), check_secrets=False)
    result = team_awaiting(loaded.config, "support", polled.messages, [])
    expected = float(sum(1 for item in result.items if item.response is None))
    raw_client = mailbox.client("implicit")
    raw_fetch = functools.partial(raw_header_fetch, raw_client, header_items, count)

    for kind in kinds:
        raws, starts = [], []
        for run in range(runs):
            raws.append(raw_fetch())
            with store_url(kind, tmp, f"rw_perf_start_{run}") as url:
                port = free_port()
                began = time.perf_counter()
                process = start_daemon(daemon_config(url, {"mail": settings}, port), tmp, "start")
                try:
                    done = wait_for(port, lambda s: awaiting_value(s) == expected, 600, process)
                finally:
                    stop(process)
                starts.append(done - began)
                if run == 0 and kind == kinds[0]:
                    bench_no_change_poll(mailbox, settings, url, runs)
        ours, raw = statistics.median(starts), statistics.median(raws)
        row(
            f"daemon start -> right replywatch_awaiting ({int(expected)}), {kind}",
            f"{count:,} msgs",
            f"{ours:.2f} s",
            f"raw fetch {raw:.2f} s",
            ours / raw,
            "<= 1.5x",
            ours / raw <= 1.5,
        )
    raw_client.logout()


def bench_no_change_poll(
    mailbox: Mailbox, settings: dict[str, Any], url: str, runs: int, polls: int = 200, turns: int = 10
) -> None:
    """The daemon's own poll step on an unchanged mailbox (its cursor from the store), in-process.

    Each run takes turns: ``polls / turns`` raw STATUS rounds, then as many daemon polls, ``turns`` times,
    so that what else the machine does meanwhile (a server still writing after the start before) weighs
    on both sides alike.
    """
    loaded = validate(daemon_config(url, {"mail": settings}, 0), check_secrets=False)
    daemon = Daemon(loaded, listen=("127.0.0.1", 0))
    daemon._apply_sources()
    daemon.poll_source("mail")  # connects, loads and saves the cursor once
    raw_client = mailbox.client("implicit")
    key = next(k for k in daemon.supervisor.snapshot() if k.endswith("mail"))
    each = max(1, polls // turns)

    def raw_status() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(each):
            for folder in ("INBOX", "Sent"):
                raw_client.folder_status(folder, STATUS_ITEMS)
        return time.perf_counter() - wall, time.thread_time() - cpu

    def daemon_poll() -> tuple[float, float]:
        before = daemon.supervisor.snapshot()[key]
        cpu = time.thread_time()
        for _ in range(each):
            assert not daemon.poll_source("mail")
        cpu = time.thread_time() - cpu
        after = daemon.supervisor.snapshot()[key]
        return after.duration_sum - before.duration_sum, cpu

    def one_run() -> tuple[tuple[float, float], tuple[float, float]]:
        """(raw, ours), each (wall, CPU) per poll."""
        raw = [0.0, 0.0]
        ours = [0.0, 0.0]
        for _ in range(turns):
            for total, measured in ((raw, raw_status()), (ours, daemon_poll())):
                total[0] += measured[0]
                total[1] += measured[1]
        count = each * turns
        return (raw[0] / count, raw[1] / count), (ours[0] / count, ours[1] / count)

    one_run()  # warm-up
    raws, ours = [], []
    for _ in range(runs):
        raw, our = one_run()
        raws.append(raw)
        ours.append(our)
    raw_client.logout()
    daemon.stop()
    wall = statistics.median(o[0] / r[0] for o, r in zip(ours, raws, strict=True))
    cpu = statistics.median(o[1] / r[1] for o, r in zip(ours, raws, strict=True))
    row(
        "no-change poll, wall (replywatch_source_poll_seconds)",
        "2 folders",
        f"{statistics.median(o[0] for o in ours) * 1000:.2f} ms",
        f"raw STATUS {statistics.median(r[0] for r in raws) * 1000:.2f} ms",
        wall,
        "<= 1.3x",
        wall <= 1.3,
    )
    row(
        "no-change poll, CPU of the daemon path",
        "2 folders",
        f"{statistics.median(o[1] for o in ours) * 1000:.2f} ms",
        f"raw STATUS {statistics.median(r[1] for r in raws) * 1000:.2f} ms",
        cpu,
        "<= 1.3x",
        cpu <= 1.3,
    )


def waiting(count: int, now: datetime) -> list[MessageEvent]:
    """``count`` customer messages over the last 20 days, none answered."""
    rng = random.Random(3)
    return [
        MessageEvent(
            source="inbox",
            folder="inbox",
            external_id=f"INBOX/1/{n}",
            message_id=f"w{n}@example.net",
            date=now - timedelta(minutes=rng.randrange(20 * 24 * 60)),
            from_addr=f"customer{n}@example.net",
            to_addrs=("support@example.com",),
            subject=f"Order {n}",
        )
        for n in range(count)
    ]


def engine_config(url: str) -> Any:
    cfg = daemon_config(url, {"inbox": {"kind": "mbox", "path": "/dev/null"}}, 0)
    return validate(cfg, check_secrets=False).config


def cpu(fn: Callable[[], object]) -> float:
    began = time.process_time()
    fn()
    return time.process_time() - began


def bench_idle(count: int, runs: int, tmp: Path) -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    per_minute = []
    for run in range(runs):
        with store_url("sqlite", tmp, f"idle{run}") as url:
            store = Store.open(url)
            store.upgrade()
            store.save_poll("inbox", PollResult(waiting(count, now)), now)
            evaluator = Evaluator(store, engine_config(url))
            evaluator.run(now)  # the first evaluation judges everything
            minute = [now + timedelta(seconds=s) for s in (30, 60)]
            per_minute.append(sum(cpu(functools.partial(evaluator.run, at)) for at in minute))
            open_items = len(store.awaiting("support", open_only=True))
            store.close()
    value = statistics.median(per_minute)
    row(
        f"idle daemon, {open_items:,} waiting items: evaluation CPU per minute",
        f"{count:,} items",
        f"{value:.3f} s/min",
        "-",
        None,
        "<= 1 s/min",
        value <= 1.0,
    )


def bench_seen(count: int, kinds: list[str], runs: int, tmp: Path) -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    batch = engine_messages(count)
    for kind in kinds:
        ratios, seen_s, idle_s = [], [], []
        for run in range(runs):
            with store_url(kind, tmp, f"rw_perf_seen_{run}") as url:
                store = Store.open(url)
                store.upgrade()
                store.save_poll("inbox", PollResult(batch), now)
                evaluator = Evaluator(store, engine_config(url))
                evaluator.run(now)
                idle = cpu(functools.partial(evaluator.run, now + timedelta(seconds=30)))
                read = replace(batch[0], flags=batch[0].flags | {"\\Seen"})
                store.save_poll("inbox", PollResult([read]), now + timedelta(seconds=45))
                seen = cpu(functools.partial(evaluator.run, now + timedelta(seconds=60)))
                store.close()
            ratios.append(seen / idle)
            seen_s.append(seen)
            idle_s.append(idle)
        ratio = statistics.median(ratios)
        row(
            f"one \\Seen flag -> next evaluation (CPU), {kind}",
            f"{count:,} msgs",
            f"{statistics.median(seen_s) * 1000:.1f} ms",
            f"nothing changed {statistics.median(idle_s) * 1000:.1f} ms",
            ratio,
            "<= 1x (noise ~0.2x)",
            ratio <= 1.2,
        )


def bench_ingest(count: int, runs: int, tmp: Path) -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    batch = engine_messages(count)
    times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    for run in range(runs):
        for kind in times:
            with store_url(kind, tmp, f"rw_perf_ingest_{run}") as url:
                store = Store.open(url)
                store.upgrade()
                began = time.perf_counter()
                saved = store.save_poll("inbox", PollResult(batch), now)
                times[kind].append(time.perf_counter() - began)
                assert saved.inserted == len(batch)
                store.close()
    pg, lite = statistics.median(times["postgresql"]), statistics.median(times["sqlite"])
    ratio = statistics.median(p / s for p, s in zip(times["postgresql"], times["sqlite"], strict=True))
    row(
        "ingest (save_poll), PostgreSQL vs SQLite",
        f"{count:,} msgs",
        f"PostgreSQL {pg:.2f} s",
        f"SQLite {lite:.2f} s",
        ratio,
        "<= 2x",
        ratio <= 2.0,
    )


MEMORY_CHILD = """
import json, sys
from datetime import datetime
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from perf_table import engine_config, peak_kb
from monitor.evaluate import Evaluator
from monitor.store.db import Store
store = Store.open({url!r})
Evaluator(store, engine_config({url!r})).run(datetime.fromisoformat({now!r}))
print(json.dumps({{"maxrss_kb": peak_kb()}}))
"""


def peak_kb() -> int:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak across fork and exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def bench_memory(count: int, tmp: Path) -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    with store_url("sqlite", tmp, "memory") as url:
        store = Store.open(url)
        store.upgrade()
        batch = engine_messages(count)
        for start in range(0, count, 20_000):
            store.save_poll("inbox", PollResult(batch[start : start + 20_000]), now)
        del batch
        store.close()
        here = Path(__file__).resolve().parent
        code = MEMORY_CHILD.format(root=str(here.parent), bench=str(here), url=url, now=now.isoformat())
        baseline = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path[:0] = [{str(here.parent)!r}, {str(here)!r}]; "
             "from perf_table import peak_kb; import monitor.evaluate; print(peak_kb())"],
            check=True, capture_output=True, text=True, cwd=here.parent,
        )  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    peak = json.loads(out.stdout.strip().splitlines()[-1])["maxrss_kb"] / 1024
    imported = int(baseline.stdout.strip()) / 1024
    row(
        "peak memory (max RSS) of the first evaluation",
        f"{count:,} msgs stored",
        f"{peak:.0f} MB",
        f"imports alone {imported:.0f} MB",
        None,
        "<= 250 MB at 300,000",
        peak <= 250 if count >= 300_000 else None,
    )


def bench_many(server: DovecotServer, mailboxes: int, window: float, tmp: Path) -> None:
    now = datetime.now(UTC)
    rng = random.Random(11)
    sources = {}
    for n in range(mailboxes):
        box = server.add_user(f"many{n:04d}")
        box.write_messages(
            "INBOX",
            (
                (realistic_message(rng, n * 10 + k, now - timedelta(hours=k + 1), outbound=False), [], now)
                for k in range(3)
            ),
        )
        box.write_messages(
            "Sent", [(realistic_message(rng, n * 10 + 3, now, outbound=True), ["\\Seen"], now)]
        )
        folders = {"inbox": "INBOX", "sent": "Sent"}
        sources[f"m{n:04d}"] = {**server.imap_settings(box.user, "implicit"), "folders": folders}
    with store_url("sqlite", tmp, "many") as url:
        port = free_port()
        process = start_daemon(daemon_config(url, sources, port, every="1m"), tmp, "many")
        try:

            def all_read(samples: dict[Any, float]) -> bool:
                return (
                    sum(1 for (name, _), v in samples.items() if name == "replywatch_source_up" and v)
                    == mailboxes
                )

            began = time.perf_counter()
            wait_for(port, all_read, 900, process)
            ready = time.perf_counter() - began
            time.sleep(5)  # the first evaluation
            stat = Path(f"/proc/{process.pid}/stat")
            ticks = os.sysconf("SC_CLK_TCK")

            def cpu_seconds() -> float:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / ticks

            first = cpu_seconds()
            time.sleep(window)
            used = cpu_seconds() - first
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss = (
                int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
            )
            threads = int(next(line for line in status.splitlines() if line.startswith("Threads")).split()[1])
            fds = len(os.listdir(f"/proc/{process.pid}/fd"))
        finally:
            stop(process)
    per_minute = used / window * 60
    row(
        f"{mailboxes} mailboxes polled every minute: daemon CPU (all read after {ready:.0f} s)",
        f"{mailboxes} x 3 msgs",
        f"{per_minute:.2f} s/min, RSS {rss:.1f} MB",
        f"{threads} threads, {fds} fds",
        None,
        "keep ~2.8 s/min, 130 MB (at 1,000)",
        (per_minute <= 2.8 and rss <= 130) if mailboxes >= 1000 else None,
    )


def print_table() -> None:
    header = ("measure", "size", "replywatch", "raw baseline (same run)", "ratio", "target", "met")
    lines = [
        (r.what, r.size, r.ours, r.raw, f"{r.ratio:.2f}x" if r.ratio is not None else "-", r.target,
         {True: "yes", False: "NO", None: "-"}[r.met])
        for r in ROWS
    ]  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    rule = "+".join("-" * (w + 2) for w in widths)
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + rule + "|")
    for line in lines:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", default="10000", help="mailbox sizes, comma-separated (e.g. 10000,50000)"
    )
    parser.add_argument("--stores", default="sqlite,postgresql", help="stores for the start and \\Seen rows")
    parser.add_argument("--waiting", type=int, default=30_000, help="waiting items of the idle daemon")
    parser.add_argument("--memory-messages", type=int, default=50_000, help="stored messages for peak memory")
    parser.add_argument("--mailboxes", type=int, default=100, help="mailboxes of the many-mailbox daemon")
    parser.add_argument(
        "--window",
        type=float,
        default=150.0,
        help="seconds the many-mailbox CPU is sampled (default: one refresh of every source's stored "
        "last poll time, half the default 5-minute staleness limit)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--skip", default="", help="rows to skip: start,idle,seen,ingest,memory,many")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.messages.split(",")]
    kinds = args.stores.split(",")
    skip = set(args.skip.split(","))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} ({os.cpu_count()} CPUs); figures are medians of {args.runs}")
    with tempfile.TemporaryDirectory(prefix="replywatch-perf-") as name:
        tmp = Path(name)
        if "start" not in skip or "many" not in skip:
            with dovecot(args.mailboxes) as server:
                if "start" not in skip:
                    for size in sizes:
                        bench_start(server, size, kinds, args.runs, tmp)
                if "many" not in skip:
                    bench_many(server, args.mailboxes, args.window, tmp)
        if "idle" not in skip:
            bench_idle(args.waiting, args.runs, tmp)
        for size in sizes:
            if "seen" not in skip:
                bench_seen(size, kinds, args.runs, tmp)
            if "ingest" not in skip and "postgresql" in kinds:
                bench_ingest(size, args.runs, tmp)
        if "memory" not in skip:
            bench_memory(args.memory_messages, tmp)
    print_table()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

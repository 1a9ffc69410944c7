"""The ``replywatch`` command: run, demo, check-config, status, replay, report, db upgrade."""

from __future__ import annotations

import argparse
import errno
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from monitor import __version__
from monitor import config as config_mod
from monitor.config import ConfigError, LoadedConfig

if TYPE_CHECKING:
    from monitor.exporters.reports.period import Period
    from monitor.store.db import Store

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CONFIG = 2

log = logging.getLogger("monitor.cli")
T = TypeVar("T")


def _load(path: str, *, check_secrets: bool = True) -> LoadedConfig:
    try:
        return config_mod.load(path, check_secrets=check_secrets)
    except ConfigError as err:
        print(f"{path}: {len(err.errors)} error(s)", file=sys.stderr)
        for line in err.errors:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from err


def _password(loaded: LoadedConfig) -> str | None:
    """The store password, or exit 2 saying which setting is wrong."""
    from monitor.daemon import store_password

    try:
        return store_password(loaded)
    except ConfigError as err:
        for line in err.errors:
            print(f"{loaded.path}: {line}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from err


def edge_error(loaded: LoadedConfig, err: BaseException) -> str | None:
    """One line naming a start-up problem of the machine or the database and the setting to change.

    None when ``err`` is not one of them (a bug: let it show its traceback).
    """
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    cfg = loaded.config
    where = f"{loaded.path}: " if loaded.path else ""
    if isinstance(err, OSError) and err.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
        return (
            f"{where}http.listen {cfg.http.host}:{cfg.http.port}: {err.strerror}; "
            "choose a free address in http.listen or stop the program using it"
        )
    if isinstance(err, DBAPIError | SQLAlchemyError | OSError):
        orig = getattr(err, "orig", None) or err
        reason = (getattr(orig, "strerror", None) or str(orig)).strip().splitlines()[0][:300]
        store = make_url_text(cfg.store.url)
        return (
            f"{where}store.url {store}: {reason}; check store.url (the database, its folder, its permissions)"
        )
    return None


def make_url_text(url: str) -> str:
    """A store URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unreadable URL)"


def _starting(loaded: LoadedConfig, step: Callable[[], T]) -> T:
    """Run a start-up ``step``; a busy port or an unusable store exits 2 with one line, no traceback."""
    try:
        return step()
    except Exception as err:
        line = edge_error(loaded, err)
        if line is None:
            raise
        print(line, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from err


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config (and with --probe, log in to every source and notifier, sending nothing)."""
    loaded = _load(args.config)
    from monitor.config_warnings import config_warnings

    for warning in config_warnings(loaded.config):
        print(f"warning: {warning}")
    if not args.probe:
        print(f"{args.config}: ok ({len(loaded.sources)} sources, {len(loaded.config.teams)} teams)")
        return EXIT_OK
    from monitor.config_warnings import sent_folder_warnings
    from monitor.daemon import build_source

    problems = 0
    senders: dict[str, list[str]] = {}
    for name, cfg in loaded.sources.items():
        source = build_source(name, cfg)
        try:
            found = source.check()
            if not found and hasattr(source, "sent_senders"):
                senders[name] = _sent_senders(source)
        except Exception as err:
            found = [str(err)]
        finally:
            source.close()
        for problem in found:
            print(f"sources.{name}: {problem}", file=sys.stderr)
        print(f"sources.{name}: {'ok' if not found else 'FAILED'}")
        problems += len(found)
    for warning in sent_folder_warnings(loaded.config, senders):
        print(f"warning: {warning}")
    from monitor.exporters.outbox import build_notifiers

    for name, notifier in build_notifiers(loaded.config).items():
        probe = getattr(notifier, "probe", None)
        if probe is None:
            print(f"notifiers.{name}: not probed (its kind cannot check without sending)")
            continue
        try:
            found = probe()
        except Exception as err:
            found = [str(err)]
        for problem in found:
            print(f"notifiers.{name}: {problem}", file=sys.stderr)
        print(f"notifiers.{name}: {'ok' if not found else 'FAILED'}")
        problems += len(found)
    return EXIT_CONFIG if problems else EXIT_OK


def _sent_senders(source: object) -> list[str]:
    """The From addresses of a probed source's newest sent mail; none when it cannot tell."""
    from monitor.sources.base import SourceError

    try:
        return list(source.sent_senders())  # type: ignore[attr-defined]
    except SourceError:  # the folders checked out; a failed look at the Sent folder only skips a warning
        return []


GC_THRESHOLDS = (10_000, 10, 10)
"""The daemon's garbage collector thresholds. A first sync or a rebuild allocates millions of objects that
live on (events, rows, items, hardly any cycle), and with Python's default of a young collection every 700
allocations the collector walked them again and again: a first start at 10,000 messages spent about 0.26 s in
it until its first verdict, about 0.1 s with these."""


SWITCH_INTERVAL = 0.001
"""Seconds a thread of the daemon runs before one waiting for the GIL gets it (Python's default: 0.005).
While an evaluation judges thousands of items, a scrape of ``/metrics`` gives the GIL up at each store read
and waited up to 5 ms to get it back each time: the scrape right after a first rebuild took 50 to 140 ms
instead of a few. A poll's thread waits alike after each socket read."""


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM."""
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)
    from monitor.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts
    from monitor import gc_pause
    from monitor.logs import setup_logging

    # What the start-up makes (modules, the config, the store's schema) lives as long as the process: the
    # collector has nothing to find in it (about 20 ms of a start went to walking it).
    with gc_pause.paused():
        loaded = _load(args.config)
        setup_logging(args.log_level or loaded.config.log.level, args.log_format or loaded.config.log.format)
        if any(source.kind == "imap" for source in loaded.config.sources.values()):
            from monitor.sources import parse_pool

            parse_pool.prestart()  # a first sync's parse workers start while the daemon's modules load
        from monitor.daemon import Daemon

        daemon = _starting(loaded, lambda: Daemon(loaded))
    daemon.start = functools.partial(_starting, loaded, gc_pause.during(daemon.start))  # type: ignore[method-assign]
    if daemon.run_forever():
        # A poll is stuck on a server that stopped answering: its thread would keep the process alive
        # until the socket times out. Exit now; the unfinished poll's transaction was never committed.
        logging.shutdown()
        os._exit(EXIT_OK)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Print who waits, how long, due when, and open breaches."""
    from monitor.status import NeverPolled, render_status
    from monitor.store.db import Store

    loaded = _load(args.config, check_secrets=False)
    store = _starting(loaded, lambda: Store.open(loaded.config.store.url, _password(loaded)))
    try:
        overdue = _starting(
            loaded, lambda: render_status(loaded.config, store, datetime.now(UTC), sys.stdout)
        )
    except NeverPolled as err:
        print(f"replywatch status: {err}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        store.close()
    return EXIT_FINDINGS if overdue else EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply pending store migrations."""
    from monitor.store.db import Store
    from monitor.store.migrate import current

    loaded = _load(args.config, check_secrets=False)
    store = _starting(loaded, lambda: Store.open(loaded.config.store.url, _password(loaded)))
    try:
        _starting(loaded, store.upgrade)
        print(f"store at revision {current(store.engine)}")
    finally:
        store.close()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Write sample mail relative to now and run the daemon on it."""
    from monitor.demo import run_demo

    return run_demo(directory=args.dir, listen=args.listen, duration=args.duration)


def _timestamp(value: str) -> datetime:
    """An ISO 8601 time or date for --since/--until/--now; UTC when no zone is given."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"invalid time {value!r}: expected ISO 8601, e.g. 2026-10-01T00:00Z"
        ) from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_replay(args: argparse.Namespace) -> int:
    """Run the engine and rules over past data and write one CSV row per item."""
    from monitor.events import known_at
    from monitor.replay import collect_events, stored_removals, write_replay

    loaded = _load(args.config)
    names = args.source or [s for team in loaded.config.teams.values() for s in team.sources]
    unknown = [n for n in names if n not in loaded.sources]
    if unknown:
        print(f"unknown source(s): {', '.join(unknown)}", file=sys.stderr)
        return EXIT_FINDINGS
    names = list(dict.fromkeys(names))
    now = args.now or args.until or datetime.now(UTC)
    try:
        stored = stored_removals(loaded.config.store.url, _password(loaded), names)
        removed = {name: known_at(gone, now) for name, gone in stored.items()}
    except Exception as err:  # the store is an extra here: replay still reads the sources
        print(f"replay: store not read ({type(err).__name__}); removed mail is not shown", file=sys.stderr)
        removed = {}
    events = collect_events(loaded, names, args.since, args.until, removed)
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        counts = write_replay(loaded, events, now, out, include_all=args.all)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no items"
    print(f"{args.out}: {summary}")
    late = counts.get("breached") or counts.get("answered_late")
    breaches = any(key.endswith(" breaches") for key in counts)  # any rule's, holding_reply's too
    return EXIT_FINDINGS if late or breaches else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Write a team's report for a month or a week from the store, or send it through the outbox."""
    from monitor.exporters.reports.build import render_file, stored_report, team_period

    loaded = _load(args.config, check_secrets=args.send)
    config = loaded.config
    if args.team not in config.teams:
        known = ", ".join(sorted(config.teams)) or "none"
        print(f"unknown team {args.team!r} (known: {known})", file=sys.stderr)
        return EXIT_FINDINGS
    try:
        period = team_period(config, args.team, args.period)
    except ValueError as err:
        print(f"--period: {err}", file=sys.stderr)
        return EXIT_FINDINGS
    now = datetime.now(UTC)
    if args.send and period.end > now:
        print(f"--send: the period {period.label} has not ended yet", file=sys.stderr)
        return EXIT_FINDINGS
    from monitor.store.db import Store

    store = _starting(loaded, lambda: Store.open(config.store.url, _password(loaded)))
    try:
        polled = store.last_polls()
        if not any(source in polled for source in config.teams[args.team].sources):
            print(
                f"replywatch report: no source of team {args.team!r} has been polled into this store yet: "
                "start `replywatch run` first",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        if args.send:
            return _send_report(loaded, store, args.team, period, now)
        report = stored_report(store, config, args.team, period, now)
        text = render_file(report, args.format)
    finally:
        store.close()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"{args.out}: {args.team} {period.label} ({args.format})")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _send_report(loaded: LoadedConfig, store: Store, team: str, period: Period, now: datetime) -> int:
    """Owe the period's report to the team's recipients and send it now (once per period and recipient)."""
    from monitor.exporters.outbox import Dispatcher, build_notifiers
    from monitor.exporters.reports.build import owe_report
    from monitor.store.outbox import Outbox

    config = loaded.config
    if config.teams[team].report is None or config.teams[team].report_via is None:
        print(f"teams.{team}: --send needs report: {{to: [...]}} in the config", file=sys.stderr)
        return EXIT_CONFIG
    outbox = Outbox(store)
    recipients = owe_report(outbox, config, team, period, now, now)
    dispatcher = Dispatcher(outbox, lambda: config, build_notifiers(config))
    sent = dispatcher.run_reports(now, team, period.label)
    rows = {recipient: outcome for label, recipient, outcome in outbox.reports(team) if label == period.label}
    for recipient in recipients:
        print(f"{recipient}: {rows.get(recipient, 'unknown')}")
    failed = [r for r in recipients if rows.get(r) == "pending"]
    if failed:
        print(f"{len(failed)} not delivered yet: the daemon retries them", file=sys.stderr)
        return EXIT_FINDINGS
    if not sent:
        print(f"the {period.label} report of {team} was sent before; nothing sent again")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from monitor.durations import parse_duration

    parser = argparse.ArgumentParser(prog="replywatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"replywatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", choices=["text", "json"])
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file")
    p.add_argument("-c", "--config", required=True)
    p.add_argument(
        "--probe", action="store_true", help="also log in to every source and notifier (nothing is sent)"
    )
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("status", help="who waits, how long, due when; open breaches")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("db", help="store maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("-c", "--config", required=True)
    up.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("replay", help="what the rules would have said over past data (CSV)")
    p.add_argument("-c", "--config", required=True)
    p.add_argument(
        "--source", action="append", help="only this source (repeatable; default: all of the teams')"
    )
    p.add_argument("--since", type=_timestamp, help="only messages dated at or after this time")
    p.add_argument("--until", type=_timestamp, help="only messages dated before this time")
    p.add_argument(
        "--now", type=_timestamp, help="judge as if it were this time (default: --until, else now)"
    )
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument(
        "--all", action="store_true", help="also one row per message that opened no item, with why"
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("report", help="a team's month or week: response times, breaches, wins")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--team", required=True)
    p.add_argument("--period", required=True, help="a month (2026-10) or an ISO week (2026-W44)")
    p.add_argument("--format", choices=["html", "md", "json"], default="html")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.add_argument(
        "--send", action="store_true", help="send it to the team's report recipients (once per period)"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="run on realistic sample mail written relative to now")
    p.add_argument("--dir", help="where to write the sample (default: a new temporary folder)")
    p.add_argument("--listen", default="127.0.0.1:9687", help="HTTP address (default 127.0.0.1:9687)")
    p.add_argument(
        "--for",
        dest="duration",
        type=parse_duration,
        default=None,
        help="stop after this long (e.g. 30s); default: until Ctrl-C",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``replywatch`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_FINDINGS if exc.code not in (0, None) else EXIT_OK
    try:
        return int(args.func(args))
    except SystemExit as exc:
        return int(exc.code or 0)


if __name__ == "__main__":
    sys.exit(main())

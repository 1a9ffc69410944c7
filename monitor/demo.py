"""``replywatch demo``: realistic sample mail relative to now, the daemon on it, where to look."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from monitor import config as config_mod
from monitor.demo_calls import LINE, write_demo_call_log
from monitor.demo_mail import write_demo_maildir

DEMO_CONFIG = """\
# replywatch demo config: written by `replywatch demo`; a commented tour of the real thing.
store: {{url: "sqlite:///{db}"}}
http: {{listen: "{listen}"}}
calendars:
  # Office hours: a customer's wait counts only while the team is at work (weekdays 09:00-17:30 in
  # London); the sample's overdue mail is more than a week old, so it is overdue whatever the day.
  office-hours: {{timezone: Europe/London, hours: {{mon-fri: "09:00-17:30"}}}}
sources:
  demo-mailbox: {{kind: maildir, path: "{mail}", poll_every: 30s}}
  # The phone system's call log (Asterisk's Master.csv), followed as it grows.
  demo-pbx: {{kind: asterisk_csv, path: "{calls}", timezone: UTC, default_region: GB, poll_every: 30s}}
teams:
  support:
    calendar: office-hours
    addresses: [support@demo.example]
    internal_domains: [demo.example]
    members:
      - {{name: Alice Example, email: [alice@demo.example], phone: ["201"], role: lead}}
      - {{name: Bob Example, email: [bob@demo.example], phone: ["202"]}}
    sources: [demo-mailbox, demo-pbx]
    lines: [{line}]             # the support queue's calls are this team's
    member_metrics: true
    rules:
      - {{kind: reply_within, within: 24h, business_hours: true, warn_before: 4h}}
      - {{kind: callback_within, within: 24h, business_hours: true}}
"""


def command_prefix() -> str:
    """How to run replywatch from another shell, as printed: a command that works there as it stands.

    The bare ``replywatch`` only when it is installed outside a virtual environment; from one (``uv run``,
    an environment not activated) the script's own path, which exists and works from any shell; else this
    interpreter with ``-m monitor``.
    """
    found = shutil.which("replywatch")
    if found is None:
        return f"{sys.executable} -m monitor"
    in_venv = sys.prefix != sys.base_prefix
    if in_venv and Path(found).resolve().is_relative_to(Path(sys.prefix).resolve()):
        return str(Path(found).absolute())
    return "replywatch"


def run_demo(directory: str | None, listen: str, duration: timedelta | None) -> int:
    """Write the sample, run the daemon on it until Ctrl-C (or ``duration``), print where to look."""
    from monitor.daemon import Daemon
    from monitor.logs import setup_logging
    from monitor.status import render_status

    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    # Before anything is served: a Ctrl-C or SIGTERM at any time ends the demo cleanly.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="replywatch-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    summary = write_demo_maildir(root / "mail", now=now)
    calls = write_demo_call_log(root / "cdr-csv" / "Master.csv", now=now)
    config_path = root / "replywatch.yaml"
    config_path.write_text(
        DEMO_CONFIG.format(
            db=root / "replywatch.db", listen=listen, mail=root / "mail", calls=calls.path, line=LINE
        )
    )
    loaded = config_mod.load(config_path)
    setup_logging("WARNING", "text")

    daemon = Daemon(loaded)
    daemon.start()
    # One poll and one evaluation right away, so that the first scrape already shows the state.
    for name in loaded.sources:
        daemon.poll_source(name)
    daemon.evaluate()

    url = f"http://{listen}/metrics"
    total = summary.inbox_messages + summary.sent_messages
    print(f"replywatch demo: {total} sample messages in {root / 'mail'}")
    print(f"  and a call log of {calls.calls} calls in {calls.path}")
    print(f"  config:  {config_path}")
    print(f"  metrics: {url}")
    print(f"  status:  {command_prefix()} status -c {config_path}\n")
    render_status(loaded.config, daemon.store, datetime.now(UTC), sys.stdout)
    sys.stdout.flush()

    if duration is None:
        print("Ctrl-C stops the demo.")
    stop.wait(timeout=None if duration is None else duration.total_seconds())
    daemon.stop()
    return 0

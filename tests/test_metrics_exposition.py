"""The whole ``/metrics`` output of a daemon run in-process: golden file, promtool lint, OpenMetrics.

The scenario is fixed (maildirs written here, an injected clock), so nearly every sample value is known.
The golden comparison normalizes the few that are not, in :func:`normalize`:

- ``replywatch_source_poll_seconds_bucket`` and ``_sum``: how long a poll took; ``<duration>``
  (``_count``, the number of polls, is kept; bucket consistency is checked here);
- ``replywatch_build_info{version=...}``: changes with every release; ``<version>`` (checked here);
- any ``*_created`` sample: a process start time (prometheus_client adds them to counters it owns).

Regenerate with ``REPLYWATCH_REGEN=1 pytest tests/test_metrics_exposition.py`` and read the diff.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from monitor import __version__
from monitor.config import validate
from monitor.daemon import Daemon
from tests.mailfactory import deliver, make_maildir, make_message
from tests.servers.promtool import Promtool

GOLDEN = Path(__file__).with_name("golden") / "metrics.txt"
REGEN = os.environ.get("REPLYWATCH_REGEN") == "1"
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday, 12:00 in London (GMT)
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OPENMETRICS_ACCEPT = "application/openmetrics-text"
PROMETHEUS_ACCEPT = (  # what Prometheus 2.x sends when it scrapes (scrape/scrape.go, acceptHeader)
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class FixedClock:
    """The daemon's injected clock: always ``NOW``."""

    def __call__(self) -> datetime:
        return NOW


def scenario_config(root: Path, sources: dict[str, Path]) -> dict[str, Any]:
    """Two teams: support (member metrics on, complete) and billing (quiet, with a missing maildir: not
    judged, ``replywatch_team_complete`` 0)."""
    return {
        "store": {"url": f"sqlite:///{root / 'replywatch.db'}"},
        "calendars": {"london": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
        "sources": {name: {"kind": "maildir", "path": str(path)} for name, path in sources.items()},
        # Nothing listens on port 9 of loopback: the alerts the outbox owes stay pending, counted failed.
        "notifiers": {
            "mail": {"kind": "smtp", "host": "127.0.0.1", "port": 9, "tls": "none", "from": "rw@example.com"}
        },
        "teams": {
            "support": {
                "calendar": "london",
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [
                    {"name": "Alice Smith", "email": ["alice@example.com"]},
                    {"name": "Bob", "email": ["bob@example.com"]},
                ],
                "sources": ["support-mail"],
                "member_metrics": True,
                "rules": [{"kind": "reply_within", "within": "8h", "warn_before": "2h"}],
                "notify": {"via": "mail", "escalation": [{"at": "breach", "to": ["owner", "team"]}]},
            },
            "billing": {
                "calendar": "london",
                "addresses": ["billing@example.com"],
                "internal_domains": ["example.com"],
                "members": [{"name": "Carl", "email": ["carl@example.com"]}],
                "sources": ["billing-mail", "support-archive"],
                "rules": [{"kind": "reply_within", "within": "24h"}],
            },
        },
    }


def _customer_mail(maildir: Path) -> None:
    """Support's mailbox: waiting, breached, answered in time, answered late, and automated mail."""

    def inbound(msgid: str, sender: str, when: datetime, **kw: Any) -> None:
        deliver(maildir, make_message(msgid=msgid, sender=sender, to="support@example.com", date=when, **kw))

    def reply(msgid: str, sender: str, to: str, in_reply_to: str, when: datetime) -> None:
        raw = make_message(msgid=msgid, sender=sender, to=to, in_reply_to=in_reply_to, date=when)
        deliver(maildir, raw, folder=".Sent")

    # Monday 10:00, unanswered: due Tuesday 10:00, breached by now.
    inbound("c1@cust.example", "carol@cust.example", datetime(2026, 11, 16, 10, 0, tzinfo=UTC))
    # Wednesday 08:00, unanswered: 3 business hours so far, waiting.
    inbound("c2@cust.example", "dave@cust.example", datetime(2026, 11, 18, 8, 0, tzinfo=UTC))
    # Tuesday 09:00, answered by Alice at 09:30: 30 minutes.
    inbound("c3@cust.example", "frank@cust.example", datetime(2026, 11, 17, 9, 0, tzinfo=UTC))
    reply(
        "r3@example.com",
        "alice@example.com",
        "frank@cust.example",
        "c3@cust.example",
        datetime(2026, 11, 17, 9, 30, tzinfo=UTC),
    )
    # Monday 09:00, answered by Bob on Tuesday 11:00: 10 business hours, late.
    inbound("c4@cust.example", "gina@cust.example", datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
    reply(
        "r4@example.com",
        "bob@example.com",
        "gina@cust.example",
        "c4@cust.example",
        datetime(2026, 11, 17, 11, 0, tzinfo=UTC),
    )
    # Automated mail opens nothing.
    inbound(
        "ooo@cust.example",
        "erin@cust.example",
        datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        subject="Automatic reply: your ticket",
        headers={"Auto-Submitted": "auto-replied"},
    )
    inbound(
        "news@shop.example",
        "news@shop.example",
        datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        subject="Our November deals",
        headers={"List-Unsubscribe": "<mailto:unsub@shop.example>", "Precedence": "bulk"},
    )


@dataclass
class Scenario:
    """A daemon that polled and evaluated the fixed scenario once, serving HTTP on a free port."""

    daemon: Daemon
    polled_after: float
    polled_before: float

    def scrape(self, accept: str | None = None) -> tuple[str, str]:
        """GET /metrics; returns (Content-Type, body)."""
        headers = {"Accept": accept} if accept else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.daemon.http.port}/metrics", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.headers["Content-Type"]), response.read().decode("utf-8")


@contextlib.contextmanager
def running_scenario(root: Path) -> Iterator[Scenario]:
    """Write the maildirs, poll every source once, evaluate at ``NOW``, serve /metrics; stop afterwards."""
    support = make_maildir(root / "support")
    billing = make_maildir(root / "billing")
    _customer_mail(support)
    sources = {"support-mail": support, "support-archive": root / "missing", "billing-mail": billing}
    daemon = Daemon(validate(scenario_config(root, sources)), clock=FixedClock(), listen=("127.0.0.1", 0))
    try:
        daemon.store.upgrade()
        daemon.http.start()
        daemon._apply_sources()  # sources without the scheduler: the test polls them itself
        polled_after = time.time()
        for name in sources:
            daemon.poll_source(name)
        polled_before = time.time()
        daemon.evaluate()
        daemon.dispatch()
        yield Scenario(daemon, polled_after, polled_before)
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """One scenario daemon for the module (scrapes do not change its state)."""
    with running_scenario(tmp_path_factory.mktemp("exposition")) as running:
        yield running


@pytest.fixture(scope="module")
def promtool() -> Promtool:
    """The installed promtool (a missing one fails these tests)."""
    return Promtool.find()


_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum")}


def series_names(exposition: str) -> frozenset[str]:
    """Every series name PromQL can select in a text-format exposition, from its TYPE lines."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return frozenset(names)


@functools.cache
def scenario_exposition() -> str:
    """A real text-format scrape of the scenario daemon (run once per test session, then reused)."""
    with (
        tempfile.TemporaryDirectory(prefix="replywatch-scrape-") as root,
        running_scenario(Path(root)) as run,
    ):
        return run.scrape()[1]


def exposed_series_names() -> frozenset[str]:
    """The series names the scenario daemon exposes (rules and dashboards may select only these)."""
    return series_names(scenario_exposition())


def exposed_label_names() -> dict[str, frozenset[str]]:
    """Series name -> label names seen on its samples in the scenario scrape (``le`` included)."""
    labels: dict[str, set[str]] = {}
    for family in parse_text(scenario_exposition()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(found) for name, found in labels.items()}


# -- normalization ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})? (?P<value>\S+)$")
_PLACEHOLDERS = {
    "replywatch_source_poll_seconds_bucket": "<duration>",
    "replywatch_source_poll_seconds_sum": "<duration>",
}


def normalize(exposition: str) -> str:
    """The exposition with the non-deterministic values replaced (see the module docstring)."""
    out = []
    for line in exposition.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:  # HELP, TYPE, EOF: kept as they are
            out.append(line)
            continue
        name, labels, value = sample["name"], sample["labels"] or "", sample["value"]
        if name.endswith("_created"):
            continue
        if name == "replywatch_build_info":
            labels = re.sub(r'version="[^"]*"', 'version="<version>"', labels)
        value = _PLACEHOLDERS.get(name, value)
        out.append(f"{name}{labels} {value}")
    return "\n".join(out) + "\n"


# -- tests ------------------------------------------------------------------------------------------


def test_golden_exposition(scenario: Scenario) -> None:
    """Names, HELP/TYPE lines, label sets and deterministic values match tests/golden/metrics.txt."""
    content_type, body = scenario.scrape()
    assert content_type.startswith("text/plain; version=0.0.4")
    got = normalize(body)
    if REGEN or not GOLDEN.exists():
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(got)
        if not REGEN:
            pytest.fail(f"{GOLDEN} was missing and has been written: review it")
    assert got == GOLDEN.read_text()


def test_normalized_values_are_sane(scenario: Scenario) -> None:
    """What the golden file leaves out is still checked: version and poll durations; stamps use the clock."""
    _, body = scenario.scrape()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in parse_text(body) for s in f.samples
    }
    assert samples[("replywatch_build_info", (("version", __version__),))] == 1
    stamps = {k: v for k, v in samples.items() if k[0] == "replywatch_source_last_success_timestamp_seconds"}
    assert set(stamps) == {
        ("replywatch_source_last_success_timestamp_seconds", (("source", s),))
        for s in ("support-mail", "billing-mail")
    }
    for stamp in stamps.values():
        assert stamp == NOW.timestamp()  # the injected clock, not the wall clock
    for source in ("support-mail", "support-archive", "billing-mail"):
        labels = (("source", source),)
        count = samples[("replywatch_source_poll_seconds_count", labels)]
        buckets = sorted(
            (float(dict(k[1])["le"]), v)
            for k, v in samples.items()
            if k[0] == "replywatch_source_poll_seconds_bucket" and dict(k[1])["source"] == source
        )
        values = [v for _, v in buckets]
        assert values == sorted(values), f"buckets of {source} are not cumulative: {buckets}"
        assert buckets[-1] == (float("inf"), count)
        assert samples[("replywatch_source_poll_seconds_sum", labels)] >= 0


def test_promtool_check_metrics(scenario: Scenario, promtool: Promtool) -> None:
    """promtool's lint (naming, units, counter suffixes, HELP) finds nothing in the real scrape."""
    _, body = scenario.scrape()
    result = promtool.check_metrics(body)
    assert result.returncode == 0 and result.output == "", result.describe()


@pytest.mark.parametrize("accept", [OPENMETRICS_ACCEPT, PROMETHEUS_ACCEPT], ids=["plain", "prometheus"])
def test_openmetrics_exposition(scenario: Scenario, accept: str) -> None:
    """Asked for OpenMetrics, /metrics answers in it, and a strict parser reads the same samples."""
    content_type, body = scenario.scrape(accept)
    assert content_type.startswith(OPENMETRICS)
    assert body.endswith("# EOF\n")
    _, text_body = scenario.scrape()

    def samples(families: Iterable[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in families
            for s in family.samples
            if not s.name.endswith("_created") and "poll_seconds" not in s.name
        }

    om = samples(parse_openmetrics(body))  # type: ignore[no-untyped-call]
    text = samples(parse_text(text_body))
    # Two scrapes, one state: every sample matches except the wall-clock poll stamps already checked.
    assert om.keys() == text.keys()
    assert {k: v for k, v in om.items() if "timestamp" not in k[0]} == {
        k: v for k, v in text.items() if "timestamp" not in k[0]
    }
    types = {family.name: family.type for family in parse_openmetrics(body)}  # type: ignore[no-untyped-call]
    assert types["replywatch_build"] == "info"
    assert types["replywatch_breaches"] == "counter"
    assert types["replywatch_response_seconds"] == "histogram"


def test_poll_durations_made_as_read_are_what_add_metric_makes() -> None:
    """The per-source poll durations, whose samples are made as the encoder reads them, expose exactly
    what ``HistogramMetricFamily.add_metric`` would, in both formats."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import HistogramMetricFamily
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    from monitor.exporters.prometheus import _DURATION_SAMPLES, _duration_samples, _le, _Samples
    from monitor.supervisor import DURATION_BUCKETS

    seen = [
        (
            f'source-{n}"\\{n}',  # quotes and backslashes in a name are escaped alike
            SimpleNamespace(
                duration_buckets=[n * k for k in range(len(DURATION_BUCKETS))],
                duration_count=n * len(DURATION_BUCKETS) + 1,
                duration_sum=n * 1.25 + 0.001,
            ),
        )
        for n in range(5)
    ]

    def family(lazy: bool) -> HistogramMetricFamily:
        made = HistogramMetricFamily("replywatch_source_poll_seconds", "Duration.", labels=["source"])
        if lazy:
            made.samples = _Samples(  # type: ignore[assignment]
                functools.partial(_duration_samples, made.name, seen), len(seen) * _DURATION_SAMPLES
            )
            return made
        for source, health in seen:
            buckets = [
                (_le(b), float(c)) for b, c in zip(DURATION_BUCKETS, health.duration_buckets, strict=True)
            ]
            made.add_metric([source], [*buckets, ("+Inf", float(health.duration_count))], health.duration_sum)
        return made

    lazy, eager = family(True), family(False)
    assert len(lazy.samples) == len(eager.samples) == len(seen) * _DURATION_SAMPLES
    assert list(lazy.samples) == eager.samples and lazy.samples == eager.samples
    assert lazy.samples[3] == eager.samples[3]

    class One:
        def __init__(self, metric: Metric) -> None:
            self.metric = metric

        def collect(self) -> Iterator[Metric]:
            yield self.metric

    texts = []
    for made in (lazy, eager):
        registry = CollectorRegistry()
        registry.register(One(made))
        texts.append((generate_latest(registry), generate_openmetrics(registry)))
    assert texts[0] == texts[1]

"""The report's charts as PNG images (matplotlib, Agg backend): mail clients show PNG, not SVG or scripts.

matplotlib is imported here only, when a report is drawn, so that the daemon starts without it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from monitor.exporters.reports.figures import Day

WIDTH_IN, HEIGHT_IN, DPI = 6.4, 2.6, 110
"""About 700 x 290 pixels: fits a mail column and stays sharp."""
BLUE, RED, GREY, AMBER = "#1f5fa8", "#b00020", "#888888", "#d08c00"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display, no GUI toolkit: render to memory only
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    plt.close(figure)
    return buffer.getvalue()


def _axes(title: str) -> tuple[Any, Any]:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    axes.set_title(title, loc="left", fontsize=10, color="#222222", pad=14)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(labelsize=8, colors="#444444")
    axes.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure, axes


def _labels(days: Sequence[Day]) -> list[str]:
    return [f"{d.day:%d}" if len(days) > 7 else f"{d.day:%a %d}" for d in days]


def response_chart(days: Sequence[Day], target: tuple[str, float] | None) -> bytes:
    """Median business response time per day over every channel (bars, hours), with one channel's target
    (``(channel, seconds)``) as a line; a day whose median is past it shows red."""
    figure, axes = _axes("Median response per day of arrival (business hours)")
    target_seconds = target[1] if target is not None else None
    positions = range(len(days))
    hours = [(d.median_seconds or 0.0) / 3600 for d in days]
    colors = [
        RED if target_seconds is not None and d.median_seconds and d.median_seconds > target_seconds else BLUE
        for d in days
    ]
    axes.bar(positions, hours, color=colors, width=0.7)
    if target_seconds is not None:
        label = f"{target[0]} target" if target is not None else "target"
        axes.axhline(target_seconds / 3600, color=AMBER, linestyle="--", linewidth=1.2, label=label)
        axes.legend(fontsize=8, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0))
        axes.set_ylim(top=max([*hours, target_seconds / 3600]) * 1.1)
    axes.set_xticks(list(positions), _labels(days))
    axes.set_ylabel("hours", fontsize=8, color="#444444")
    axes.set_ylim(bottom=0)
    return _png(figure)


def waiting_chart(days: Sequence[Day]) -> bytes:
    """Customers still waiting at each day's close, and how many of them past their deadline."""
    figure, axes = _axes("Customers waiting at the end of each day")
    positions = list(range(len(days)))
    waiting = [d.waiting_at_close - d.overdue_at_close for d in days]
    overdue = [d.overdue_at_close for d in days]
    axes.bar(positions, waiting, color=GREY, width=0.7, label="within the deadline")
    axes.bar(positions, overdue, bottom=waiting, color=RED, width=0.7, label="past the deadline")
    axes.set_xticks(positions, _labels(days))
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(bottom=0, top=max([*(d.waiting_at_close for d in days), 1]) * 1.1)
    axes.legend(fontsize=8, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2)
    return _png(figure)

"""The HTML report opened in a real headless Chromium: no console error, no broken image, not a blank page.

``REPLYWATCH_REGEN=1`` also writes the screenshot to ``docs/report.png``.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from monitor.cli import main
from tests.report_month import Month
from tests.test_reports import month  # noqa: F401 - fixture

DOCS = Path(__file__).resolve().parent.parent / "docs"
WIDTH = 760

# Injected first into a copy of the page: records script errors, console errors and resources that failed
# to load (images), then, once everything loaded, writes what it saw into the DOM for --dump-dom.
PROBE = """<script>
window.__problems = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__problems.push(t && t.tagName ? "failed to load " + t.tagName : "script error " + e.message);
}, true);
var __consoleError = console.error;
console.error = function () {
  window.__problems.push("console.error " + Array.from(arguments).join(" "));
  __consoleError.apply(console, arguments);
};
window.addEventListener("load", function () {
  var images = Array.from(document.images).map(function (i) {
    if (!i.complete || i.naturalWidth === 0) { window.__problems.push("broken image " + i.alt); }
    return [i.alt, i.naturalWidth, i.naturalHeight];
  });
  var out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({problems: window.__problems, images: images,
                                    text: document.body.innerText.trim().length});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: run scripts/test-servers.sh (Debian's chromium package)")
    return found


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--enable-logging=stderr", "--v=0", f"--user-data-dir={cwd / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, check=False,
    )  # fmt: skip


def open_page(page: Path, work: Path) -> dict[str, Any]:
    """What Chromium saw loading ``page``: problems, images (alt, width, height), length of the text, and
    the console lines it logged."""
    probe = work / f"probe-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), "utf-8")
    done = _run(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], work)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, f"chromium did not load the page: {done.stderr[-2000:]}"
    seen: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    seen["console"] = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    return seen


def screenshot(page: Path, work: Path, height: int = 2600) -> Image.Image:
    """A screenshot of ``page``, cropped below its last painted row."""
    shot = work / f"{page.stem}.png"
    done = _run(
        ["--hide-scrollbars", f"--window-size={WIDTH},{height}", f"--screenshot={shot}", page.as_uri()], work
    )
    assert shot.exists(), f"chromium wrote no screenshot: {done.stderr[-2000:]}"
    image = Image.open(shot).convert("RGB")
    background = image.getpixel((2, image.height - 2))
    rows = [y for y in range(image.height) if any(image.getpixel((x, y)) != background
                                                   for x in range(0, image.width, 4))]  # fmt: skip
    return image.crop((0, 0, image.width, min(image.height, (rows[-1] if rows else 0) + 24)))


def painted_share(image: Image.Image) -> float:
    """Share of pixels that are neither white nor the page's background grey."""
    colors = image.getcolors(maxcolors=1 << 20) or []
    plain = sum(n for n, rgb in colors if min(rgb) >= 240)
    return 1 - plain / (image.width * image.height)


def problems(seen: dict[str, Any]) -> list[str]:
    """Everything that makes a page fail: errors, broken images, console lines, no text."""
    out = list(seen["problems"]) + list(seen["console"])
    out += [f"image {alt!r} has no pixels" for alt, w, h in seen["images"] if not (w and h)]
    if seen["text"] < 20:
        out.append("blank page")
    return out


def test_the_checks_catch_a_broken_image_a_console_error_and_a_blank_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><p>A page with a missing chart.</p>'
        '<img src="cid:nowhere" alt="chart"><script>console.error("boom")</script></body></html>'
    )
    found = problems(open_page(bad, tmp_path))
    assert any("broken image chart" in p for p in found), found
    assert any("console.error boom" in p for p in found), found
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head></head><body></body></html>")
    assert problems(open_page(blank, tmp_path)) == ["blank page"]
    assert painted_share(screenshot(blank, tmp_path, 400)) < 0.01


def test_html_report_opens_cleanly_in_chromium(month: tuple[Month, Path], tmp_path: Path) -> None:  # noqa: F811
    _, config = month
    page = tmp_path / "support-2026-10.html"
    args = ["report", "-c", str(config), "--team", "support", "--period", "2026-10", "--out", str(page)]
    assert main(args) == 0
    seen = open_page(page, tmp_path)
    assert problems(seen) == []
    assert [(alt, w > 500, h > 200) for alt, w, h in seen["images"]] == [
        ("Median response time per day", True, True),
        ("Customers waiting at the end of each day", True, True),
    ]
    image = screenshot(page, tmp_path)
    assert image.height > 1200, "the report is shorter than its content"
    assert painted_share(image) > 0.05, "the page is (nearly) blank"
    if os.environ.get("REPLYWATCH_REGEN"):
        image.save(DOCS / "report.png", optimize=True)

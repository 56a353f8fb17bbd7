"""The HTML denial report rendered in a real headless browser (Debian's `chromium`): after
its scripts ran, each chart is a plotly plot with its SVG, bars and legend.

`.ci/run` installs chromium; under CI=true a missing browser fails this test, elsewhere it
skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cleanclaim.engine.denials import build_report, parse_decisions, read_remittance
from cleanclaim.engine.denials.html import CHART_IDS, render_html

DATA = Path(__file__).parent / "data" / "x835"


def _browser() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed")


class _Charts(HTMLParser):
    """What the rendered DOM holds inside each chart's element."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []  # the chart each open element is in
        self.found: dict[str, dict[str, int]] = {}
        self.classes: dict[str, str] = {}
        self.legend: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        chart = self.stack[-1] if self.stack else None
        if values.get("id") in CHART_IDS:
            chart = values["id"]
            assert chart is not None
            self.classes[chart] = values.get("class") or ""
            self.found[chart] = {"svg": 0, "bars": 0, "points": 0}
            self.legend[chart] = []
        if tag not in ("meta", "br", "img", "input", "link"):
            self.stack.append(chart)
        if chart is None:
            return
        names = (values.get("class") or "").split()
        if tag == "svg" and "main-svg" in names:
            self.found[chart]["svg"] += 1
        if tag == "g" and "trace" in names and "bars" in names:
            self.found[chart]["bars"] += 1
        if tag == "g" and "point" in names:
            self.found[chart]["points"] += 1
        if tag == "text" and "legendtext" in names:
            self.legend[chart].append(values.get("data-unformatted") or "")

    def handle_endtag(self, tag: str) -> None:
        if self.stack and tag not in ("meta", "br", "img", "input", "link"):
            self.stack.pop()


def test_the_report_renders_its_charts_in_headless_chromium(tmp_path: Path) -> None:
    browser = _browser()
    decisions = tmp_path / "decisions.ndjson"
    # Decisions as `cleanclaim check` writes them (one a line), for the checker chart.
    decisions.write_text(
        '{"claim_id":"C-1001","status":"deny","findings":[{"rule":"r/ncci","kind":"coding",'
        '"severity":"deny","line":2,"group":"CO","carc":"236","rarc":[],"root_cause":'
        '"coding","owner":"coding","message":"m","reference":null,"source":null}],'
        '"policy":{}}\n'
    )
    report = build_report(
        [read_remittance(DATA / "denials.835")],
        checked=parse_decisions(decisions.read_text(), str(decisions)),
    )
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    assert "<script src=" not in page.read_text()  # self-contained: plotly.js inline
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    charts = _Charts()
    charts.feed(result.stdout)
    assert set(charts.found) == set(CHART_IDS), result.stdout[:500]
    for chart in CHART_IDS:
        assert "js-plotly-plot" in charts.classes[chart], chart  # plotly ran
        assert charts.found[chart]["svg"] >= 1 and charts.found[chart]["bars"] >= 1, (
            chart,
            charts.found[chart],
        )
    # One bar series per root cause over time, named in the legend.
    assert sorted(charts.legend["chart-root-cause-month"]) == ["coding", "medical_necessity"]
    # Predicted, missed, over-flagged, not checked: four bars.
    assert charts.found["chart-checker"]["points"] == 4
    # The five top reasons of the remittance.
    assert charts.found["chart-reasons"]["points"] == 5
    assert "1EG4TE5MK73" not in result.stdout and "JANE" not in result.stdout

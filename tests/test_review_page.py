"""The decision page: its figures' decimation, its warnings, and a real browser on a small study.

Run as a script to screenshot a page and measure its decision section:
``python tests/test_review_page.py results/dc_current_loop/review.html results/screens/dc_review.png``.
"""

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simbaflow.review.decimate import minmax_decimate
from simbaflow.review.decision import constraint_margins, schedule_warning, ties

VIEWPORT = (1280, 800)


# --- decimation -------------------------------------------------------------------------------------------

def test_decimation_keeps_every_column_extreme():
    # 200 000 samples of a 16 kHz ripple on a step, plus one isolated spike: drawn on 500 columns.
    t = np.linspace(0.0, 0.02, 200_001)
    y = np.where(t > 0.005, 14.0, 6.0) + 0.3 * np.sin(2 * np.pi * 16e3 * t)
    y[123_457] = 25.0
    td, yd = minmax_decimate(t, y, 500)
    assert len(td) <= 1000 and np.all(np.diff(td) > 0)
    assert yd.max() == 25.0 and td[np.argmax(yd)] == t[123_457]
    # The ripple envelope survives: within each column the extremes of ±0.3 around 6 and 14 A are kept.
    assert yd.min() == pytest.approx(6.0 - 0.3, abs=1e-3)
    late = yd[td > 0.006]
    assert late.min() == pytest.approx(14.0 - 0.3, abs=1e-3) and np.sort(late)[-2] == pytest.approx(14.3, abs=1e-3)


def test_decimation_leaves_short_signals_alone_and_drops_nan():
    t = np.arange(10.0)
    y = t.copy()
    y[3] = math.nan
    td, yd = minmax_decimate(t, y, 100)
    assert list(td) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


# --- warnings ---------------------------------------------------------------------------------------------

def _selection(values, tie_rel=None):
    objective = {"minimize": "settling_time_s", **({"tie_rel": tie_rel} if tie_rel is not None else {})}
    return {"objective": objective,
            "ranking": [{"candidate_id": f"c{i}", "settling_time_s": v} for i, v in enumerate(values)]}


def test_ties_within_the_declared_tolerance():
    sel = _selection([1.0e-3, 1.005e-3, 1.02e-3])
    assert [r["candidate_id"] for r in ties(sel)] == ["c1"]  # default 1 %
    assert [r["candidate_id"] for r in ties(_selection([1.0e-3, 1.005e-3, 1.02e-3], tie_rel=0.05))] == ["c1", "c2"]
    assert ties(_selection([1.0e-3, 1.2e-3])) == []


def test_sample_period_must_be_whole_microseconds():
    # The seed's 16 kHz is 62.5 µs: TaskAPI cannot schedule it; 10 kHz (100 µs) it can.
    assert "62.5 µs" in schedule_warning(1 / 16000)
    assert schedule_warning(1 / 10000) is None


def test_disagreement_beyond_threshold_is_named():
    import pandas as pd

    from simbaflow.review.decision import disagreements

    metrics = pd.DataFrame([
        {"candidate_id": "w", "design": "discrete_pi", "status": "ok", "overshoot_pct": 12.0,
         "analytic_overshoot_pct": 8.0, "settling_time_s": 2.1e-3, "analytic_settling_time_s": 2.0e-3},
        {"candidate_id": "w", "design": "continuous_pi", "status": "ok", "overshoot_pct": 8.5,
         "analytic_overshoot_pct": 8.0, "settling_time_s": 3.0e-3, "analytic_settling_time_s": 2.0e-3},
        {"candidate_id": "other", "design": "discrete_pi", "status": "ok", "overshoot_pct": 30.0,
         "analytic_overshoot_pct": 8.0, "settling_time_s": 2.0e-3, "analytic_settling_time_s": 2.0e-3},
    ])
    found = disagreements(metrics, "w")
    # 4 pp of overshoot (> 2) on discrete_pi, 50 % of settling (> 25 %) on continuous_pi; nothing else.
    assert len(found) == 2
    assert found[0].startswith("discrete_pi.overshoot_pct") and found[1].startswith("continuous_pi.settling_time_s")


def test_margins_tightest_first():
    margins = constraint_margins({"overshoot_pct": {"max": 10}, "phase_margin_deg": {"min": 45}, "stable": True},
                                 {"overshoot_pct": 8.99913, "phase_margin_deg": 70.2543, "stable": True})
    assert [m["name"] for m in margins] == ["overshoot_pct", "phase_margin_deg", "stable"]
    assert margins[0]["margin"] == pytest.approx(1.00087) and margins[1]["margin"] == pytest.approx(25.2543)


# --- a real browser ---------------------------------------------------------------------------------------

# Measures once the layout has settled (the report renders its front page and job graph after load):
# the same boxes on four polls in a row, 250 ms apart.
_PROBE = """<script>
(function () {
  var last = '', same = 0;
  function probe() {
    var el = document.getElementById('decision');
    if (!el) { return setTimeout(probe, 250); }
    var box = function (e) { var r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
    var now = JSON.stringify({viewport: [innerWidth, innerHeight], section: box(el),
      heading: box(el.querySelector('h1')), gains: box(el.querySelector('table.gains'))});
    same = now === last ? same + 1 : 0;
    last = now;
    if (same < 4) { return setTimeout(probe, 250); }
    var out = document.createElement('pre');
    out.id = 'sf-probe';
    out.textContent = now;
    document.body.appendChild(out);
  }
  window.addEventListener('load', function () { setTimeout(probe, 250); });
})();
</script>"""


def _chromium(args, tmp: Path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by `make system-deps`"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", f"--user-data-dir={tmp / 'profile'}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def console_errors(stderr: str) -> list[str]:
    """Lines where a page logged an error or threw (Chromium's console lines on stderr)."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("rror" in line or "Uncaught" in line)]


def measure(page: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load ``page`` (a copy with a probe script) and return the decision section's boxes and console errors."""
    probe = tmp / f"probe-{page.name}"
    text = page.read_text()
    cut = text.rfind("</body>")
    probe.write_text(text[:cut] + _PROBE + text[cut:])
    res = _chromium(["--dump-dom", probe.as_uri()], tmp)
    found = re.search(r'<pre id="sf-probe">(.*?)</pre>', res.stdout, re.S)
    assert found, "the page never showed a #decision section"
    return json.loads(found.group(1).replace("&quot;", '"')), console_errors(res.stderr)


def screenshot(page: Path, out_png: Path, tmp: Path) -> list[str]:
    """The first screen of ``page`` as a PNG; returns the console errors of that load."""
    out_png.parent.mkdir(parents=True, exist_ok=True)
    res = _chromium([f"--screenshot={out_png}", page.as_uri()], tmp)
    assert out_png.stat().st_size > 10_000
    return console_errors(res.stderr)


def test_console_error_check_can_fail(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><section id='decision'><h1>x</h1><table class='gains'></table>"
                    "</section><script>console.error('broken figure')</script></body></html>")
    _, errors = measure(page, tmp_path)
    assert errors and "broken figure" in errors[0]


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    from cli_helpers import run_cli
    from test_simulate_stage import make_spec, workdir

    work = workdir(tmp_path_factory.mktemp("review"), make_spec("reviewstudy", methods=("tustin", "backward_euler", "zoh")))
    res = run_cli("sweep", "s.yaml", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, res


def test_sweep_prints_the_review_page_last(small_study):
    work, res = small_study
    assert res.stdout.strip().splitlines()[-1] == "review: results/reviewstudy/review.html"


def test_review_page_holds_the_decision(small_study):
    work, _ = small_study
    out = work / "results" / "reviewstudy"
    sel = json.loads((out / "selection.json").read_text())
    page = (out / "review.html").read_text()
    assert (out / "review.html").stat().st_size < 3e6
    assert f"Decision: promote <code>{sel['candidate_id']}</code>" in page
    # No firmware in the work directory: promotion would create the header, every field from "(none)".
    assert "controller_gains.h" in page and "(none)" in page
    assert f"{sel['candidate']['a1_fixed']}" in page and "Q16.16" in page
    # 62.5 µs at 16 kHz: the board cannot schedule it, the page says so.
    assert "62.5 µs" in page
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page
    for runner in sel["runners_up"][:2]:
        assert f"runner-up {runner['candidate_id']}" in page or runner["candidate_id"] in page


def test_decision_is_on_the_first_screen_without_console_errors(small_study, tmp_path):
    work, _ = small_study
    out = work / "results" / "reviewstudy"
    boxes, errors = measure(out / "review.html", tmp_path)
    assert not errors, errors
    # Headless Chromium keeps room for a window's chrome: the page sees at most 800 px, often ~660.
    width, height = boxes["viewport"]
    assert width == VIEWPORT[0] and 600 <= height <= VIEWPORT[1]
    # The whole decision section (choice, why, warnings, gains, margins) fits the first screen.
    assert 0 <= boxes["section"]["top"] and boxes["section"]["bottom"] <= height, boxes
    assert not screenshot(out / "review.html", tmp_path / "review.png", tmp_path)

    # The report opens on it too: Snakemake's front page shows the whole decision section.
    boxes, errors = measure(out / "report.html", tmp_path)
    assert not errors, errors
    assert 0 <= boxes["heading"]["top"] and boxes["section"]["bottom"] <= height, boxes
    assert not screenshot(out / "report.html", tmp_path / "report.png", tmp_path)


if __name__ == "__main__":
    import tempfile

    page, png = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        boxes, errors = measure(page, Path(tmp))
        errors += screenshot(page, png, Path(tmp))
    print(json.dumps({"page": str(page), "bytes": page.stat().st_size, "screenshot": str(png), "boxes": boxes,
                      "console_errors": errors}, indent=1))

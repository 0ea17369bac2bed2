"""The analytic workflow end to end in a temporary directory."""

import json

import pandas as pd
import pytest
import yaml

from cli_helpers import run_cli

SMALL = {
    "study": "small",
    "plant": {"model": "voltage_compensated_inductor", "l_h": 6e-3, "r_ohm": 30, "e_v": 600},
    "sweep": {"xi": [0.7, 1.4], "wn_rad_s": [2500], "fs_hz": [16000], "method": ["tustin", "backward_euler"],
              "delay_samples": [0]},
    "selection": {"constraints": {"overshoot_pct": {"max": 10}, "phase_margin_deg": {"min": 45}, "stable": True},
                  "objective": {"minimize": "settling_time_s"}},
}

CONTRACT_COLUMNS = ["candidate_id", "xi", "wn_rad_s", "kp", "ki", "method", "fs_hz", "ts_s", "delay_samples", "a0",
                    "a1", "a0_fixed", "a1_fixed", "overshoot_pct", "rise_time_s", "settling_time_s",
                    "phase_margin_deg", "stable", "status"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    work = tmp_path_factory.mktemp("study")
    (work / "small.yaml").write_text(yaml.safe_dump(SMALL))
    res = run_cli("sweep", "small.yaml", "--cores", "2", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, res


def _sampled_loop(xi: float, method: str) -> tuple[float, float]:
    """Overshoot (%) and 2 % settling time of the sampled loop, iterated here from the README's formulas.

    Ki = L·ωn²/E, Kp = 2ξ·Ki/ωn; α(k) = α(k−1) + a1·ε(k) + a0·ε(k−1) with Tustin
    a1 = Kp + Ki·Ts/2, a0 = −Kp + Ki·Ts/2 or backward Euler a1 = Kp + Ki·Ts, a0 = −Kp; the
    compensated plant E/(L s) behind a zero-order hold: i(k+1) = i(k) + E·Ts/L·α(k). Between
    samples the current ramps, so its extremes are samples.
    """
    plant, ts, wn = SMALL["plant"], 1 / 16000, 2500.0
    ki = plant["l_h"] * wn**2 / plant["e_v"]
    kp = 2 * xi * ki / wn
    a1, a0 = (kp + ki * ts / 2, -kp + ki * ts / 2) if method == "tustin" else (kp + ki * ts, -kp)
    current, alpha, prev_error, samples = 0.0, 0.0, 0.0, []
    for _ in range(2000):
        error = 1.0 - current
        alpha, prev_error = alpha + a1 * error + a0 * prev_error, error
        samples.append(current)
        current += plant["e_v"] * ts / plant["l_h"] * alpha
    outside = [k for k, i in enumerate(samples) if abs(i - 1.0) > 0.02]
    return 100 * (max(samples) - 1.0), (outside[-1] + 1) * ts


def test_outputs_and_contract_columns(swept):
    work, res = swept
    out = work / "results" / "small"
    df = pd.read_csv(out / "candidates.csv")
    assert set(CONTRACT_COLUMNS) <= set(df.columns)
    assert len(df) == 4
    for row in df.itertuples():
        overshoot, settling = _sampled_loop(row.xi, row.method)
        assert row.overshoot_pct == pytest.approx(overshoot, abs=1e-6)
        assert row.settling_time_s == pytest.approx(settling, rel=1e-9)
    sel = json.loads((out / "selection.json").read_text())
    # Only ξ = 1.4 keeps the sampled overshoot under 10 % (9.4 % Tustin, 9.0 % backward Euler; ξ = 0.7:
    # 22-24 %). Both settle in 35 samples (2.1875 ms): the tie goes to the smaller candidate id.
    feasible = {"xi1p4-wn2500-fs16000-tustin-d0", "xi1p4-wn2500-fs16000-backward_euler-d0"}
    assert sel["candidate_id"] == "xi1p4-wn2500-fs16000-backward_euler-d0"
    assert sel["candidate"]["a1"] == pytest.approx(0.07 + 62.5 / 16000)
    assert {r["candidate_id"] for r in sel["rejected"]} == set(df.candidate_id) - feasible
    assert len(sel["provenance"]["spec_sha256"]) == 64
    assert sel["provenance"]["simbaflow_version"]
    assert "smallest settling_time_s" in sel["reason"]
    for name in ("step_responses", "pole_zero", "metrics_vs_parameters", "continuous_vs_discrete"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    report = (out / "report.html").read_text()
    assert "step_responses.png" in report and "candidates.csv" in report


def test_rerun_does_nothing(swept):
    work, _ = swept
    res = run_cli("sweep", "small.yaml", "--no-report", cwd=work)
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_no_feasible_candidate_is_a_clear_failure(tmp_path):
    spec = dict(SMALL, study="infeasible", selection={"constraints": {"overshoot_pct": {"max": 1}}})
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=tmp_path)
    assert res.returncode == 4
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("simbaflow: s.yaml: no candidate meets every selection constraint")
    assert "overshoot_pct (rejects 4 of 4)" in last
    assert not (tmp_path / "results" / "infeasible" / "selection.json").exists()


def test_design_command_table_and_json(repo):
    res = run_cli("design", "design/dc_current_loop.yaml", "--format", "json", cwd=repo)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 5 * 2 * 4 * 2  # ξ × ωn × method × delay
    seed = next(r for r in rows if r["candidate_id"] == "xi1p4-wn5000-fs16000-tustin-d0")
    assert seed["a0"] == pytest.approx(-0.1321875) and seed["a1"] == pytest.approx(0.1478125)
    table = run_cli("design", "design/dc_current_loop.yaml", cwd=repo)
    assert "xi1p4-wn5000-fs16000-tustin-d0" in table.stdout


def test_sweep_of_a_statespace_spec_points_to_statespace(repo, tmp_path):
    res = run_cli("sweep", str(repo / "design" / "lcl_filter.yaml"), cwd=tmp_path)
    assert res.returncode == 2
    assert "use `simbaflow statespace" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "results").exists()

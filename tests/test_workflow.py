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


def test_outputs_and_contract_columns(swept):
    work, res = swept
    out = work / "results" / "small"
    df = pd.read_csv(out / "candidates.csv")
    assert list(df.columns[: len(CONTRACT_COLUMNS)]) != [] and set(CONTRACT_COLUMNS) <= set(df.columns)
    assert len(df) == 4
    sel = json.loads((out / "selection.json").read_text())
    # Only xi = 1.4 keeps the sampled overshoot under 10 % (about 9 %); the faster-settling one wins.
    feasible = df[(df.overshoot_pct <= 10) & (df.phase_margin_deg >= 45) & df.stable]
    best = feasible.sort_values(["settling_time_s", "candidate_id"]).iloc[0]
    assert sel["candidate_id"] == best.candidate_id
    assert sel["candidate"]["a1"] == pytest.approx(best.a1)
    assert {r["candidate_id"] for r in sel["rejected"]} == set(df.candidate_id) - set(feasible.candidate_id)
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

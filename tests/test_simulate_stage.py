"""The simulate stage end to end on the embedded engine: metrics, failures, interruption, report."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from cli_helpers import REPO, run_cli
from simbaflow.simulate.runio import read_run_parquet

DESIGN_CFG = {
    "continuous_pi": {"set": {"PI.Kp": "kp", "PI.Ki": "ki"}, "signals": ["L1 - Current", "duty_cycle - Out", "iRef - Out"],
                      "response": "L1 - Current", "reference": "iRef - Out", "duty": "duty_cycle - Out"},
    "discrete_pi": {"set": {"a0.Value": "a0", "a1.Value": "a1"},
                    "signals": ["L1 - Current", "duty_cycle - Out", "iRef - Out"],
                    "response": "L1 - Current", "reference": "iRef - Out", "duty": "duty_cycle - Out"},
    "power_flow": {"set": {"a0.Value": "a0", "a1.Value": "a1"},
                   "signals": ["PowerRef - Out", "PowerEstimated - Out", "L1 - Current"], "kind": "power",
                   "response": "PowerEstimated - Out", "reference": "PowerRef - Out"},
}


def make_spec(study, methods=("tustin", "backward_euler"), xi=(1.4,), end_time_s=0.016, timeouts=None, batch_size=2):
    designs = json.loads(json.dumps(DESIGN_CFG))
    for design, seconds in (timeouts or {}).items():
        designs[design]["timeout_s"] = seconds
    return {
        "study": study,
        "plant": {"model": "voltage_compensated_inductor", "l_h": 6e-3, "r_ohm": 30, "e_v": 600},
        "sweep": {"xi": list(xi), "wn_rad_s": [2500], "fs_hz": [16000], "method": list(methods), "delay_samples": [0]},
        "controller": {"output_min": -1, "output_max": 1},
        "selection": {"constraints": {"stable": True, "discrete_pi.overshoot_pct": {"max": 15}},
                      "objective": {"minimize": "discrete_pi.settling_time_s"}},
        "simulate": {"project": "simba_projects/dc_current_loop.jsimba", "engine": "embedded", "end_time_s": end_time_s,
                     "batch_size": batch_size, "designs": designs},
    }


def workdir(tmp_path, spec):
    (tmp_path / "simba_projects").mkdir()
    shutil.copy(REPO / "simba_projects" / "dc_current_loop.jsimba", tmp_path / "simba_projects")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    work = workdir(tmp_path_factory.mktemp("sim"), make_spec("simstudy"))
    res = run_cli("sweep", "s.yaml", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work, res


def test_metrics_table_and_agreement(swept):
    work, res = swept
    out = work / "results" / "simstudy"
    # The spec names the embedded engine: the sweep says so before any job runs.
    assert "simbaflow: engine: embedded (license-free)" in res.stdout
    m = pd.read_csv(out / "metrics.csv")
    for col in ("candidate_id", "design", "engine", "status", "overshoot_pct", "rise_time_s", "settling_time_s",
                "steady_state_error", "ripple_pp", "iae", "wall_time_s", "power_error_pct"):
        assert col in m.columns
    assert len(m) == 2 * 3 and (m.status == "ok").all() and (m.engine == "embedded").all()
    # Continuous and discrete loops: the simulated overshoot follows the analytic prediction
    # (switching ripple averaged out); both are independent computations.
    cur = m[m.design != "power_flow"]
    assert (cur.overshoot_pct - cur.analytic_overshoot_pct).abs().max() < 1.5
    # Settling (last exit from a 2 % band of a slow tail) is the touchiest figure: 15 %.
    assert (cur.settling_time_s / cur.analytic_settling_time_s - 1).abs().max() < 0.15
    # The current follows its reference: 6 A and 14 A within a few per cent at steady state.
    assert cur.steady_state_error.abs().max() < 0.1
    power = m[m.design == "power_flow"]
    assert (power.power_error_pct < 1).all()
    # The continuous design depends on Kp, Ki only: both candidates share one run.
    assert m[m.design == "continuous_pi"].run_id.nunique() == 1
    sel = json.loads((out / "selection.json").read_text())
    assert sel["engine"] == "embedded"
    assert set(sel["run_files"]) == {"continuous_pi", "discrete_pi", "power_flow"}
    best = m[m.design == "discrete_pi"].sort_values("settling_time_s").iloc[0]
    assert sel["candidate_id"] == best.candidate_id


def test_run_files_are_tidy(swept):
    work, _ = swept
    for parquet in (work / "results" / "simstudy" / "runs").glob("*/*.parquet"):
        df, meta = read_run_parquet(parquet)
        assert df.columns[0] == "time_s" and meta["status"] == "ok" and meta["engine"] == "embedded"
        record = json.loads(parquet.with_suffix(".json").read_text())
        assert record["overrides"] == meta["overrides"]


def test_report_opens_in_headless_chromium(swept, tmp_path):
    work, _ = swept
    report = work / "results" / "simstudy" / "report.html"
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by `make system-deps`"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=5000", "--dump-dom", report.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    for name in ("waveforms.html", "sim_metrics_heatmap.png", "analytic_vs_simulated.png", "step_responses.png",
                 "metrics.csv", "selection.html"):
        assert name in dom, name
    errors = [line for line in res.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert not errors, errors


def test_failing_run_is_recorded_and_others_go_on(tmp_path):
    spec = make_spec("failstudy", methods=("tustin",), timeouts={"power_flow": 0.001})
    work = workdir(tmp_path, spec)
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = work / "results" / "failstudy"
    m = pd.read_csv(out / "metrics.csv")
    failed = m[m.design == "power_flow"]
    assert (failed.status == "failed").all()
    assert failed.message.str.contains("time limit of 0.001 s").all()
    assert (m[m.design != "power_flow"].status == "ok").all()
    ok_record = next((out / "runs").glob("*/discrete_pi.json"))
    before = ok_record.stat().st_mtime_ns
    # Rerun with a workable limit: only the failed run is redone.
    spec["simulate"]["designs"]["power_flow"]["timeout_s"] = 300
    (work / "s.yaml").write_text(yaml.safe_dump(spec))
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    m = pd.read_csv(out / "metrics.csv")
    assert (m.status == "ok").all()
    assert ok_record.stat().st_mtime_ns == before


def test_killed_sweep_resumes_without_redoing_finished_runs(tmp_path):
    spec = make_spec("killstudy", methods=("tustin", "backward_euler", "forward_euler"), xi=(1.1, 1.4),
                     end_time_s=0.02, batch_size=2)
    work = workdir(tmp_path, spec)
    runs = work / "results" / "killstudy" / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "simbaflow", "sweep", "s.yaml", "--no-report", "--cores", "1"],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(runs.glob("*/*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # Snakemake runs in a session of its own and gets SIGTERM when the sweep dies; it holds the
    # sweep lock until it and its jobs have stopped, so wait for that before resuming.
    from test_sweep_refusals import _sweep_processes

    deadline = time.monotonic() + 60
    while _sweep_processes(work.resolve()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sweep_processes(work.resolve()), "Snakemake outlived the killed sweep"
    finished = {p: p.stat().st_mtime_ns for p in runs.glob("*/*.json")}
    assert finished, "no run finished before the kill"
    assert not (work / "results" / "killstudy" / "metrics.csv").exists(), "the sweep ended before it was killed"
    for record in finished:
        read_run_parquet(record.with_suffix(".parquet"))  # whole files only: readable
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    m = pd.read_csv(work / "results" / "killstudy" / "metrics.csv")
    assert (m.status == "ok").all() and len(m) == 6 * 3
    for record, mtime in finished.items():
        assert record.stat().st_mtime_ns == mtime, f"{record} was redone"


def test_bench_record_lands_in_the_report(swept):
    """A ScopeMimicry capture made from the selected run comes back into the study's report."""
    from test_records import acquire, dump

    work, _ = swept
    sel = json.loads((work / "results" / "simstudy" / "selection.json").read_text())
    df, _ = read_run_parquet(work / sel["run_files"]["discrete_pi"])  # paths are relative to the study directory
    t = np.arange(0.004, 0.012, 1 / 16e3)
    current = np.interp(t, df.time_s, df["L1 - Current"])
    memory, last = acquire(current[:, None].astype(np.float32), len(t))
    (work / "capture.txt").write_text("console chatter\n" + dump(["I_low"], memory, last))
    res = run_cli("records", "import", "capture.txt", "--study", "s.yaml", "--out", "rec.parquet", cwd=work)
    assert res.returncode == 0, res.stderr
    res = run_cli("records", "compare", "rec.parquet", "--study", "simstudy", "--design", "discrete_pi",
                  "--signal-map", "I_low=L1 - Current", cwd=work)
    assert res.returncode == 0, res.stderr
    bench = json.loads((work / "results" / "simstudy" / "bench" / "rec_compare.json").read_text())
    assert bench["signals"][0]["rms_error"] < 0.05  # the record is the run itself, in float32
    res = run_cli("report", "s.yaml", cwd=work)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "bench.html" in (work / "results" / "simstudy" / "report.html").read_text()


def test_spec_errors_of_the_simulate_section(tmp_path, monkeypatch):
    from simbaflow.core.errors import SpecError
    from simbaflow.core.spec import validate_spec
    from simbaflow.kinds import kind_of

    def simulate_settings(spec):
        return kind_of(spec).simulate_settings(spec)

    work = workdir(tmp_path, make_spec("x"))
    monkeypatch.chdir(work)
    spec = make_spec("x")
    spec["sweep"]["delay_samples"] = [0, 2]
    for design in ("discrete_pi", "power_flow"):
        spec["simulate"]["designs"][design]["set"]["delay.Value"] = "delay_samples"
    with pytest.raises(SpecError, match=r"models a delay of 0 or 1 sample; sweep.delay_samples has \[2\]"):
        simulate_settings(validate_spec(spec, "s.yaml"))
    spec = make_spec("x")
    spec["simulate"]["designs"]["continuous_pi"]["set"]["PI.Kp"] = "gain"
    with pytest.raises(SpecError, match=r"set.PI.Kp: unknown candidate field 'gain'"):
        simulate_settings(validate_spec(spec, "s.yaml"))
    spec = make_spec("x")
    spec["simulate"]["designs"]["continuous_pi"]["response"] = "R1 - Voltage"
    with pytest.raises(SpecError, match=r"continuous_pi.response: 'R1 - Voltage' must be one of its signals"):
        simulate_settings(validate_spec(spec, "s.yaml"))
    spec = make_spec("x")
    spec["simulate"]["project"] = "nowhere.jsimba"
    with pytest.raises(SpecError, match=r"simulate.project: nowhere.jsimba is not a file"):
        simulate_settings(validate_spec(spec, "s.yaml"))

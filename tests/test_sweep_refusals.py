"""What a sweep refuses before any job runs, and how it stops (issue 12, defects 7-11)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cli_helpers import REPO, run_cli
from test_simulate_stage import make_spec, workdir


def _refused(work, *args, code=2):
    res = run_cli(*args, cwd=work)
    assert res.returncode == code, res.stdout[-2000:] + res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("simbaflow: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    return lines[0]


def _nothing_ran(work, study):
    results = work / "results" / study
    assert not (results / "candidates").exists() and not (results / "runs").exists()


@pytest.mark.parametrize(("text", "key"), [(".nan", "sweep.xi[0]"), (".inf", "sweep.xi[0]"),
                                            ("-.inf", "sweep.xi[0]"), ("1.0e+300", "sweep.xi[0]")])
def test_non_finite_or_absurd_numbers_are_refused(tmp_path, text, key):
    spec = make_spec("nf", methods=("tustin",))
    work = workdir(tmp_path, spec)
    raw = (work / "s.yaml").read_text().replace("- 1.4", f"- {text}", 1)
    assert raw != (work / "s.yaml").read_text()
    (work / "s.yaml").write_text(raw)
    for command in (("design", "s.yaml"), ("sweep", "s.yaml")):
        line = _refused(work, *command)
        assert f"s.yaml: {key}:" in line and "finite number" in line
    _nothing_ran(work, "nf")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda s: s["selection"]["constraints"].update({"overshot_pct": {"max": 10}}),
     "selection.constraints.overshot_pct: unknown metric 'overshot_pct'"),
    (lambda s: s["selection"].update({"objective": {"minimize": "discrete_pi.settle_s"}}),
     "selection.objective.minimize: unknown metric 'discrete_pi.settle_s'"),
    (lambda s: s["selection"]["constraints"].update({"method": {"max": 1}}),
     "selection.constraints.method: 'method' is a text column"),
    (lambda s: s["selection"]["constraints"].update({"dicrete_pi.overshoot_pct": {"max": 1}}),
     "'dicrete_pi.overshoot_pct' names no simulated design; simulated designs: continuous_pi, discrete_pi, power_flow"),
    (lambda s: s["simulate"]["designs"].update({"no_such_design": s["simulate"]["designs"]["discrete_pi"]}),
     "simulate.designs.no_such_design: "),
    (lambda s: s["simulate"]["designs"]["continuous_pi"]["set"].update({"PI2.Kp": "kp"}),
     "simulate.designs.continuous_pi: design 'continuous_pi': no device named 'PI2'; valid devices: "),
    (lambda s: s["simulate"]["designs"]["continuous_pi"]["set"].update({"PI.Kq": "kp"}),
     "simulate.designs.continuous_pi: design 'continuous_pi': device 'PI' (PID) has no parameter 'Kq'"),
    (lambda s: s["simulate"]["designs"]["discrete_pi"].update({"signals": ["L1 - Current", "L9 - Current"],
                                                               "response": "L1 - Current", "reference": "L1 - Current",
                                                               "duty": "L1 - Current"}),
     "no scoped signal 'L9 - Current'"),
])
def test_names_are_checked_before_any_job(tmp_path, change, expected):
    spec = make_spec("names", methods=("tustin",))
    change(spec)
    work = workdir(tmp_path, spec)
    line = _refused(work, "sweep", "s.yaml")
    assert expected in line, line
    _nothing_ran(work, "names")


def test_a_million_candidates_are_refused_at_once_with_the_override_named(tmp_path):
    spec = make_spec("huge", methods=("tustin",))
    spec["sweep"]["xi"] = [0.5 + k * 1e-3 for k in range(1000)]
    spec["sweep"]["wn_rad_s"] = [1000.0 + k for k in range(1000)]
    work = workdir(tmp_path, spec)
    for command in (("design", "s.yaml"), ("sweep", "s.yaml")):
        started = time.monotonic()
        line = _refused(work, *command)
        assert time.monotonic() - started < 30
        assert "1000000 candidates; at most 10000 are evaluated (set SIMBAFLOW_MAX_CANDIDATES" in line


def test_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path):
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for x, y in zip("bcdefghi", "abcdefgh"):
        bomb += f"{x}: &{x} [" + ",".join([f"*{y}"] * 9) + "]\n"
    (tmp_path / "bomb.yaml").write_text(bomb + "study: *i\n")
    assert len(bomb) < 1300
    line = _refused(tmp_path, "design", "bomb.yaml")
    assert len(line) < 300 and "YAML nodes once its aliases are expanded" in line


def test_simulate_has_a_default_time_limit(tmp_path):
    res = run_cli("simulate", "--help", cwd=tmp_path)
    assert "--timeout" in res.stdout and "600" in res.stdout
    res = run_cli("simulate", str(REPO / "simba_projects" / "dc_current_loop.jsimba"), "--design", "continuous_pi",
                  "--engine", "embedded", "--end-time", "1e9", "--timeout", "2", "--out", "run.parquet", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "ran past its time limit of 2 s" in res.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run.parquet").exists()


def test_a_failed_job_is_reported_by_its_cause_and_log(tmp_path):
    work = workdir(tmp_path, make_spec("cause", methods=("tustin",)))
    project = work / "simba_projects" / "dc_current_loop.jsimba"
    data = json.loads(project.read_text())
    design = next(d for d in data["Designs"] if d["Name"] == "power_flow")
    next(d for d in design["Circuit"]["Devices"] if d["Name"] == "R1")["LibraryName"] = "Magic Resistor"
    project.write_text(json.dumps(data))
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=work)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("simbaflow: the workflow for s.yaml failed first in rule simulate_batch: ")
    assert "Magic Resistor" in last and "logs/simulate/power_flow-b000.log" in last
    assert "unknown metric" not in last


def _sweep_processes(work: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(os.readlink(proc / "cwd")) == work and b"snakemake" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_sigterm_stops_snakemake_and_its_jobs_and_the_lock_holds_meanwhile(tmp_path):
    spec = make_spec("term", methods=("tustin", "backward_euler", "forward_euler"), xi=(1.1, 1.4), batch_size=1,
                     end_time_s=0.05)
    work = workdir(tmp_path, spec).resolve()
    proc = subprocess.Popen([sys.executable, "-m", "simbaflow", "sweep", "s.yaml", "--no-report", "--cores", "1"],
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = work / "results" / "term" / "runs"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(runs.glob("*/*.json")):
        time.sleep(0.05)
    assert _sweep_processes(work), "no Snakemake process was running"
    # While this sweep runs, a second one is refused: the lock is held.
    assert "another sweep of results/term is running" in run_cli("sweep", "s.yaml", cwd=work).stderr
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "sweep stopped by SIGTERM" in err.strip().splitlines()[-1]
    assert _sweep_processes(work) == [], "Snakemake or a job outlived the sweep"

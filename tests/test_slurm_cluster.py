"""Sweeps through ``--profile workflows/profiles/slurm`` on a real one-node SLURM cluster.

The cluster is the project's own (``workflows/cluster/slurm.sh``: Debian's slurm-wlm and munge,
files under a temporary directory), brought up here when it is not already running and stopped
again afterwards. It needs root; under ``CI=true`` a cluster that cannot start is a failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cli_helpers import REPO, run_cli
from test_simulate_stage import make_spec

SCRIPT = REPO / "workflows" / "cluster" / "slurm.sh"
PROFILE = REPO / "workflows" / "profiles" / "slurm"
CLUSTER_DIR = Path(os.environ.get("SIMBAFLOW_SLURM_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "simbaflow-slurm")
# The plugin's log path is <slurm-logdir>/rule_<rule>/<wildcard values>/<jobid>.log.
JOB_ID = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/([^/\s]+)/\d+\.log\)")


@pytest.fixture(scope="module")
def cluster():
    """Environment for the cluster's commands; the cluster is stopped at the end if this started it."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the SLURM test runs as root under CI (munged, slurmctld and slurmd of the private cluster)")
        pytest.skip("the private SLURM cluster needs root (CI runs this test)")
    was_up = (CLUSTER_DIR / "run" / "slurmctld.pid").exists()
    up = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
    print(up.stdout, up.stderr)
    assert up.returncode == 0, f"the cluster did not start:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}"
    env = {"PATH": f"{CLUSTER_DIR / 'bin'}:{os.environ['PATH']}", "SIMBAFLOW_SLURM_STATUS": "squeue"}
    assert "idle" in squeue_free_sinfo(env), "the node is not idle"
    yield env
    if not was_up:
        subprocess.run(["bash", str(SCRIPT), "down"], capture_output=True, text=True, timeout=120)


def squeue_free_sinfo(env):
    return subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                          env={**os.environ, **env}).stdout


def job_table(env, ids):
    """``{job id: (state, time limit, memory, CPUs)}`` as the scheduler reports them."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%l|%m|%C"],
                         capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
    return {row.split("|")[0]: tuple(row.split("|")[1:]) for row in out.split()}


def workdir(root: Path, spec: dict, project: dict | None = None) -> Path:
    (root / "simba_projects").mkdir(parents=True)
    target = root / "simba_projects" / "dc_current_loop.jsimba"
    if project is None:
        shutil.copy(REPO / "simba_projects" / "dc_current_loop.jsimba", target)
    else:
        target.write_text(json.dumps(project))
    (root / "s.yaml").write_text(yaml.safe_dump(spec))
    return root


def sweep(work: Path, env: dict | None = None, profile: Path | None = None):
    args = ["sweep", "s.yaml", "--no-report"] + (["--profile", str(profile)] if profile else [])
    started = time.monotonic()
    res = run_cli(*args, cwd=work, env=env, timeout=600)
    return res, time.monotonic() - started


def submitted(output: str) -> dict[tuple[str, str], str]:
    """``{(rule, wildcards): SLURM job id}`` of the jobs a sweep submitted."""
    return {(rule, wildcards): job for job, rule, wildcards in JOB_ID.findall(output)}


def comparable_selection(path: Path) -> dict:
    sel = json.loads(path.read_text())
    sel["provenance"].pop("created_utc")
    # metrics.csv records each run's wall time, so its hash differs between any two sweeps;
    # the table itself is compared without wall_time_s above.
    sel["tables_sha256"].pop("metrics.csv")
    return sel


@pytest.fixture(scope="module")
def killed_sweep(cluster, tmp_path_factory):
    """A sweep whose discrete_pi batch hangs until SLURM's time limit kills it, started in the background.

    It waits a minute or two for the scheduler, so it runs beside the equality test.
    """
    spec = make_spec("killedstudy", methods=("tustin",), xi=(1.4,), end_time_s=0.012, batch_size=4)
    del spec["simulate"]["designs"]["power_flow"]
    spec["simulate"]["timeout_s"] = 5  # with the start-up allowance: a one-minute SLURM limit
    spec["selection"]["constraints"] = {"stable": True, "continuous_pi.overshoot_pct": {"max": 50}}
    spec["selection"]["objective"] = {"minimize": "continuous_pi.settling_time_s"}
    work = workdir(tmp_path_factory.mktemp("killed"), spec, hanging_project())
    log = open(work / "sweep.log", "w")
    env = {**os.environ, **cluster, "SIMBAFLOW_TEST_HANG": "1"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "simbaflow", "sweep", "s.yaml", "--no-report", "--profile",
                             str(PROFILE)], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    yield work, proc, started
    if proc.poll() is None:
        proc.terminate()
        proc.wait()
    log.close()


def show(capsys, text: str) -> None:
    """Into the CI log even when the test passes (pytest -q keeps a passing test's output to itself)."""
    with capsys.disabled():
        print(f"\n[slurm] {text}", flush=True)


def test_slurm_sweep_equals_the_local_run(cluster, killed_sweep, tmp_path, capsys):
    spec = make_spec("slurmstudy", methods=("tustin", "backward_euler"), xi=(1.1, 1.4), end_time_s=0.012,
                     batch_size=4)
    spec["simulate"]["timeout_s"] = 20
    local = workdir(tmp_path / "local", spec)
    slurm = workdir(tmp_path / "slurm", spec)
    res, local_s = sweep(local)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res, slurm_s = sweep(slurm, cluster, PROFILE)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = submitted(res.stdout)
    show(capsys, f"SLURM jobs: {jobs}")
    show(capsys, f"wall time: local {local_s:.1f} s, SLURM {slurm_s:.1f} s (ratio {slurm_s / local_s:.2f}; beside the "
          "killed-batch sweep, which holds one of the node's CPUs: benchmarks/bench_slurm.py times them alone)")
    # Heavy rules went to the scheduler (candidates in one batch: the profile's batch_size), light ones did not.
    assert sorted(jobs) == [("evaluate_candidates", "b000"), ("simulate_batch", "continuous_pi-b000"),
                            ("simulate_batch", "discrete_pi-b000"), ("simulate_batch", "power_flow-b000")]
    table = job_table(cluster, list(jobs.values()))
    for (rule, batch), job in jobs.items():
        state, limit, memory, cpus = table[job]
        assert state == "COMPLETED", (rule, batch, state)
        # The rules' requests: 2 Snakemake processes (job step and its srun, ~260 MB each) + the batch process.
        assert (memory, cpus) == ("2000M" if rule == "simulate_batch" else "1000M", "1"), (rule, memory, cpus)
        if rule == "simulate_batch":
            # The batch's time limit lets every run reach its own 20 s limit; whole minutes, SLURM's unit.
            runs = 2 if batch.startswith("continuous") else 4
            minutes = int(limit.split(":")[0])
            assert runs * 20 <= minutes * 60 <= runs * 20 + 120, (batch, limit)
    a, b = local / "results" / "slurmstudy", slurm / "results" / "slurmstudy"
    assert (a / "candidates.csv").read_bytes() == (b / "candidates.csv").read_bytes()
    ma, mb = (pd.read_csv(p / "metrics.csv").drop(columns="wall_time_s") for p in (a, b))
    pd.testing.assert_frame_equal(ma, mb, check_exact=True)
    assert (ma.status == "ok").sum() == 12
    assert comparable_selection(a / "selection.json") == comparable_selection(b / "selection.json")
    # One log per job.
    for (rule, wildcards), job in jobs.items():
        assert (slurm / "results" / "slurm_logs" / f"rule_{rule}" / wildcards / f"{job}.log").is_file()
    show(capsys, "equality: candidates.csv, metrics.csv (without wall_time_s) and selection.json (without created_utc and the metrics.csv hash) "
          "are equal")


def hanging_project() -> dict:
    """Our project with discrete_pi's C Code block stuck in native code while SIMBAFLOW_TEST_HANG is set.

    ``pause()`` in a loop: the run's SIGALRM time limit cannot interrupt C code, so
    only the scheduler ends it, as it would a solver hung in native code.
    """
    project = json.loads((REPO / "simba_projects" / "dc_current_loop.jsimba").read_text())
    design = next(d for d in project["Designs"] if d["Name"] == "discrete_pi")
    block = next(d for d in design["Circuit"]["Devices"] if "Code" in d.get("Parameters", {}))
    code = block["Parameters"]["Code"]
    assert "(void)time_step;" in code
    block["Parameters"]["Code"] = "#include <stdlib.h>\n#include <unistd.h>\n" + code.replace(
        "(void)time_step;", '(void)time_step; while (getenv("SIMBAFLOW_TEST_HANG")) pause();', 1)
    return project


def test_batch_killed_at_its_time_limit_is_a_failed_run_and_a_rerun_redoes_it(cluster, killed_sweep, capsys):
    work, proc, started = killed_sweep
    code = proc.wait(timeout=600)
    killed_s = time.monotonic() - started
    log = (work / "sweep.log").read_text()
    print(log[-1500:])
    assert code == 0, log[-4000:]
    out = work / "results" / "killedstudy"
    killed = submitted(log)[("simulate_batch", "discrete_pi-b000")]
    state, limit, _, _ = job_table(cluster, [killed])[killed]
    show(capsys, f"killed sweep: {killed_s:.1f} s; SLURM job {killed}: {state}, limit {limit}")
    assert (state, limit) == ("TIMEOUT", "1:00")
    m = pd.read_csv(out / "metrics.csv").set_index("design")
    assert m.loc["continuous_pi", "status"] == "ok"
    assert m.loc["discrete_pi", "status"] == "failed"
    assert m.loc["discrete_pi", "message"] == (
        f"the job of batch discrete_pi-b000 ended before this run finished (SLURM-job '{killed}' failed, "
        "SLURM status is: 'TIMEOUT'; see results/killedstudy/logs/simulate/discrete_pi-b000.log)")
    assert json.loads((out / "selection.json").read_text())["candidate_id"] == "xi1p4-wn2500-fs16000-tustin-d0"
    finished = next((out / "runs").glob("*/continuous_pi.json"))
    before = finished.stat().st_mtime_ns
    # The hang is gone (same spec, same project): the rerun redoes the killed batch only, as any rerun
    # redoes a batch with a failed run (no --forcerun: the run batches are targets of the workflow).
    res, rerun_s = sweep(work, cluster, PROFILE)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    again = submitted(res.stdout)
    show(capsys, f"metrics.csv of the killed sweep: discrete_pi: {m.loc['discrete_pi', 'message']}")
    show(capsys, f"rerun: {rerun_s:.1f} s, SLURM jobs {again}")
    assert "--forcerun" not in res.stdout
    assert "redoing failed or unfinished runs of 1 batch(es): discrete_pi-b000" in res.stdout
    assert list(again) == [("simulate_batch", "discrete_pi-b000")]
    assert again[("simulate_batch", "discrete_pi-b000")] != killed
    m = pd.read_csv(out / "metrics.csv")
    assert (m.status == "ok").all() and len(m) == 2
    assert finished.stat().st_mtime_ns == before
    assert not math.isnan(m.set_index("design").loc["discrete_pi", "overshoot_pct"])


# --- without a cluster -------------------------------------------------------------


def _plan(spec: dict, work: Path):
    """The study's plan, as rule plan_simulations writes it: from every candidate's analytic row."""
    from simbaflow.core.spec import load_spec
    from simbaflow.kinds import expand_candidates, kind_of
    from simbaflow.simulate.plan import make_plan

    loaded = load_spec(work / "s.yaml")
    kind = kind_of(loaded)
    rows = [kind.evaluate(loaded, c) for c in expand_candidates(loaded)]
    return make_plan(kind.simulate_settings(loaded), rows)


def test_batch_time_limit_covers_every_run_at_its_own_limit(tmp_path, monkeypatch):
    from simbaflow.simulate.plan import batch_runtime_min

    spec = make_spec("limits", methods=("tustin", "backward_euler", "zoh"), xi=(1.1, 1.4), batch_size=4)
    spec["simulate"]["timeout_s"] = 100
    spec["simulate"]["designs"]["power_flow"]["timeout_s"] = 7
    monkeypatch.chdir(workdir(tmp_path, spec))
    plan = _plan(spec, tmp_path)
    # continuous_pi: 2 gain sets, one batch; discrete_pi and power_flow: 6 discretisations, 4 + 2.
    assert {b: len(r) for b, r in plan.batches.items()} == {
        "continuous_pi-b000": 2, "discrete_pi-b000": 4, "discrete_pi-b001": 2, "power_flow-b000": 4,
        "power_flow-b001": 2}
    for batch, runs_s in {"continuous_pi-b000": 200, "discrete_pi-b000": 400, "discrete_pi-b001": 200,
                          "power_flow-b000": 28, "power_flow-b001": 14}.items():
        minutes = batch_runtime_min(plan, batch)
        assert isinstance(minutes, int)
        assert runs_s < minutes * 60 <= runs_s + 120, batch


def test_a_batch_that_died_without_a_manifest_is_recorded_then_forgotten(tmp_path, monkeypatch):
    import numpy as np

    from simbaflow.simulate.batch import forget_unfinished_batches, record_unfinished_batches
    from simbaflow.simulate.engines.base import RunResult
    from simbaflow.simulate.plan import run_paths
    from simbaflow.simulate.runio import RunRecord, write_run_parquet

    spec = make_spec("lost", methods=("tustin", "backward_euler"), batch_size=2)
    monkeypatch.chdir(workdir(tmp_path, spec))
    plan = _plan(spec, tmp_path)
    results = Path("results") / "lost"
    first, second = plan.batches["discrete_pi-b000"]
    # The job finished its first run, then was killed.
    parquet, record = run_paths(results, first)
    t = np.linspace(0.0, 1e-3, 5)
    done = RunResult(time_s=t, signals={"L1 - Current": t}, status="ok", engine="embedded", engine_version="1",
                     wall_time_s=0.5)
    write_run_parquet(parquet, done, {})
    finished = RunRecord(first.run_id, first.design, "ok", "", "embedded", "1", 0.5, plan.project, "sha",
                         first.overrides, list(first.candidates)).to_json()
    record.write_text(finished)
    lost = record_unfinished_batches(results, plan, {"discrete_pi-b000": "SLURM status is: 'TIMEOUT'"})
    assert lost == ["discrete_pi-b000"]
    assert record.read_text() == finished
    killed = json.loads(run_paths(results, second)[1].read_text())
    assert killed["status"] == "failed" and killed["overrides"] == second.overrides
    assert killed["message"] == ("the job of batch discrete_pi-b000 ended before this run finished (SLURM status is: "
                                 "'TIMEOUT'; see results/lost/logs/simulate/discrete_pi-b000.log)")
    manifest = json.loads((results / "batches" / "discrete_pi-b000.json").read_text())
    assert [(r["run_id"], r["status"]) for r in manifest["runs"]] == [(first.run_id, "ok"), (second.run_id, "failed")]
    # Batches whose jobs did not fail are left alone; the next sweep redoes the lost one.
    assert sorted(p.name for p in (results / "batches").iterdir()) == ["discrete_pi-b000.json"]
    assert forget_unfinished_batches(results, plan) == ["discrete_pi-b000"]


# Snakemake 9's error blocks (snakemake/logging.py, _format_job_error) as a SLURM sweep prints them:
# a run batch the scheduler killed, one that failed locally (no executor message), and another rule.
SNAKEMAKE_ERRORS = """\
[Tue Dec  1 18:40:02 2026]
Error in rule simulate_batch:
    message: SLURM-job '37' failed, SLURM status is: 'TIMEOUT'. For further error details see the cluster/cloud log and the log files of the involved rule(s).
    jobid: 5
    input: results/s/plan.json, simba_projects/dc_current_loop.jsimba
    output: results/s/batches/discrete_pi-b000.json
    log: results/s/logs/simulate/discrete_pi-b000.log, results/slurm_logs/rule_simulate_batch/discrete_pi-b000/37.log (check log file(s) for error details)
    shell:
        python -m simbaflow.simulate.batch results/s/plan.json discrete_pi-b000 results/s/batches/discrete_pi-b000.json embedded > results/s/logs/simulate/discrete_pi-b000.log 2>&1
        (command exited with non-zero exit code)

Error in rule simulate_batch:
    message: None
    jobid: 7
    input: results/s/plan.json, simba_projects/dc_current_loop.jsimba
    output: results/s/batches/power_flow-b001.json
    log: results/s/logs/simulate/power_flow-b001.log (check log file(s) for error details)
Error in rule evaluate_candidates:
    message: SLURM-job '36' failed, SLURM status is: 'NODE_FAIL'. For further error details see the cluster/cloud log.
    jobid: 2
    output: results/s/candidates/b000.json
"""


def test_failed_run_batches_are_read_from_snakemakes_error_blocks():
    from simbaflow.workflow.runner import failed_batch_jobs

    assert failed_batch_jobs(SNAKEMAKE_ERRORS.splitlines()) == {
        "discrete_pi-b000": "SLURM-job '37' failed, SLURM status is: 'TIMEOUT'",
        "power_flow-b001": "",
    }

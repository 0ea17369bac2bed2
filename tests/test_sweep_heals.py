"""A rerun heals whatever a sweep left failed, missing or unreadable (issue 12, defects 5 and 6)."""

import json

import pandas as pd

from cli_helpers import run_cli
from simbaflow.simulate.runio import read_run_parquet
from test_simulate_stage import make_spec, workdir


def _sweep(work, *args, code=0):
    res = run_cli("sweep", "s.yaml", *args, cwd=work)
    assert res.returncode == code, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def test_failed_runs_are_redone_by_a_rerun_of_the_same_spec(tmp_path):
    # The reproduction: runs that cannot finish inside their limit fail...
    spec = make_spec("slow", methods=("tustin",))
    spec["simulate"]["end_time_s"] = 1e9
    spec["simulate"]["timeout_s"] = 1
    work = workdir(tmp_path, spec)
    # Nothing simulated, so no candidate meets the simulated constraint: exit 4 (no feasible candidate).
    _sweep(work, "--no-report", code=4)
    out = work / "results" / "slow"
    first = pd.read_csv(out / "metrics.csv")
    assert (first.status == "failed").all() and first.message.str.contains("time limit of 1 s").all()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*.json")}
    # ... and the rerun, same spec, runs them again instead of only re-selecting.
    res = _sweep(work, "--no-report", code=4)
    assert "redoing failed or unfinished runs of 3 batch(es)" in res.stdout
    assert len(list((out / "batches").glob("*.json"))) == 3
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items()), "a failed run was not redone"
    assert (pd.read_csv(out / "metrics.csv").status == "failed").all()


def test_a_damaged_study_heals_on_the_next_sweep(tmp_path):
    work = workdir(tmp_path, make_spec("heal", methods=("tustin",)))
    _sweep(work, "--no-report")
    out = work / "results" / "heal"
    records = sorted((out / "runs").glob("*/*.json"))
    assert len(records) == 3

    # An injected failure after a complete sweep: the record and its batch say failed.
    injured = records[0]
    rec = json.loads(injured.read_text())
    injured.write_text(json.dumps({**rec, "status": "failed", "message": "injected"}))
    res = _sweep(work, "--no-report")
    assert "redoing failed or unfinished runs of 1 batch(es)" in res.stdout
    assert json.loads(injured.read_text())["status"] == "ok"
    assert (pd.read_csv(out / "metrics.csv").status == "ok").all()

    # A deleted run file and a truncated one, their records intact.
    deleted, truncated = records[1].with_suffix(".parquet"), records[2].with_suffix(".parquet")
    deleted.unlink()
    truncated.write_bytes(truncated.read_bytes()[:100])
    _sweep(work, "--no-report")
    for parquet in (deleted, truncated):
        frame, meta = read_run_parquet(parquet)
        assert meta["status"] == "ok" and len(frame) > 100
    metrics = pd.read_csv(out / "metrics.csv")
    assert (metrics.status == "ok").all() and metrics.overshoot_pct.notna().all()

    # A deleted metrics.csv: gathered again, and the report builds.
    (out / "metrics.csv").unlink()
    _sweep(work)
    assert (pd.read_csv(out / "metrics.csv").status == "ok").all()
    assert (out / "report.html").is_file()

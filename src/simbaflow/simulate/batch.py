"""Simulate stage: the runs of one batch of the plan through an engine, each recorded on its own.

A batch runs in one process, so compiled designs are reused, and writes a
manifest when it is done. A failed run is recorded with its reason and the
batch goes on; a rerun reuses every run whose record says ``ok`` for the same
overrides, project and engine, and redoes the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from simbaflow.core import atomic
from simbaflow.core.errors import SimbaflowError, SpecError
from simbaflow.simulate.engines.base import Overrides, RunResult
from simbaflow.simulate.plan import Plan, PlannedRun, run_paths
from simbaflow.simulate.runio import RunRecord, readable_run


class RunTimeout(Exception):
    """A run went past its time limit."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`RunTimeout` in the calling code after ``seconds`` (main thread only)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise RunTimeout(f"the run exceeded its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def reusable(record_path: Path, parquet: Path, run: PlannedRun, project_sha: str, engine: str) -> bool:
    """A finished run with the same inputs whose files read back whole: nothing to redo."""
    rec = RunRecord.read(record_path)
    return (rec is not None and rec.status == "ok" and rec.overrides == run.overrides
            and rec.project_sha256 == project_sha and rec.engine == engine and readable_run(parquet))


def execute_run(engine, project: Path, run: PlannedRun, cfg: dict, end_time_s: float | None,
                timeout_s: float | None) -> RunResult:
    """One job through ``engine``; any failure but a user error becomes a failed result."""
    started = time.perf_counter()
    try:
        with time_limit(timeout_s):
            return engine.run(project, run.design, Overrides(parameters=run.overrides), list(cfg["signals"]), end_time_s)
    except SpecError:
        raise  # bad spec or project: the user must fix it, not a run failure
    except (RunTimeout, SimbaflowError, ArithmeticError, ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
        return RunResult(time_s=np.zeros(0), signals={}, status="failed", engine=getattr(engine, "name", "?"),
                         engine_version="", wall_time_s=time.perf_counter() - started,
                         message=f"{type(exc).__name__}: {exc}")


def _execute_runs(engine, project: Path, runs: list[PlannedRun], plan: Plan) -> Iterator[tuple[PlannedRun, RunResult]]:
    """``(run, result)`` for each run, as each ends: through the engine's batch process when it has one.

    An engine with ``run_batch`` (SIMBA) starts its simulator once for the
    batch and keeps each run's time limit itself; the others run one
    :func:`execute_run` after another.
    """
    if not hasattr(engine, "run_batch"):
        for run in runs:
            cfg = plan.designs[run.design]
            yield run, execute_run(engine, project, run, cfg, cfg["end_time_s"], cfg["timeout_s"])
        return
    from simbaflow.simulate.engines.simba import BatchJob

    jobs = [BatchJob(run.design, Overrides(parameters=run.overrides), list(plan.designs[run.design]["signals"]),
                     plan.designs[run.design]["end_time_s"], plan.designs[run.design]["timeout_s"]) for run in runs]
    for index, result in engine.run_batch(project, jobs) if jobs else ():
        yield runs[index], result


def run_batch(plan_path: str | Path, batch: str, manifest: str | Path, engine_name: str, results: Path) -> dict:
    """Run (or reuse) every run of ``batch`` of the plan and write its manifest.

    Returns
    -------
    dict
        The manifest: ``{"batch", "engine", "runs": [{"run_id", "design", "status", "message"}]}``.
    """
    from simbaflow.simulate.engines.select import select_engine
    from simbaflow.simulate.runio import result_metadata, write_run_parquet

    plan = Plan.read(plan_path)
    if batch not in plan.batches:
        raise SpecError(f"{plan_path}: no simulation batch {batch!r} in this study")
    engine, message = select_engine(engine_name)
    print(message, flush=True)
    project = Path(plan.project)
    project_sha = file_sha256(project)
    entries = []
    todo = []
    for run in plan.batches[batch]:
        parquet, record = run_paths(results, run)
        if reusable(record, parquet, run, project_sha, engine.name):
            entries.append({"run_id": run.run_id, "design": run.design, "status": "ok", "message": "", "reused": True})
        else:
            todo.append(run)
    for run, result in _execute_runs(engine, project, todo, plan):
        parquet, record = run_paths(results, run)
        meta = {"design": run.design, "project": str(project), "project_sha256": project_sha,
                "overrides": run.overrides, "candidates": list(run.candidates), "run_id": run.run_id}
        write_run_parquet(parquet, result, meta)
        atomic.write_text(record, RunRecord(**result_metadata(result), **meta).to_json())
        print(f"{run.design} {run.run_id}: {result.status} in {result.wall_time_s:.2f} s"
              + (f" ({result.message})" if result.message else ""), flush=True)
        entries.append({"run_id": run.run_id, "design": run.design, "status": result.status,
                        "message": result.message, "reused": False})
    order = [(run.run_id, run.design) for run in plan.batches[batch]]
    entries.sort(key=lambda e: order.index((e["run_id"], e["design"])))
    out = {"batch": batch, "engine": engine.name, "runs": entries}
    atomic.write_text(manifest, json.dumps(out, indent=1))
    return out


def forget_unfinished_batches(results: Path, plan: Plan) -> list[str]:
    """Delete the manifests of batches with a run that failed, is missing or does not read back.

    The next sweep redoes those batches; their finished runs are reused (see
    :func:`run_batch`). A manifest that is not the plan's is left alone.
    """
    forgotten = []
    for batch, runs in plan.batches.items():
        manifest = results / "batches" / f"{batch}.json"
        if not manifest.exists():
            continue
        try:
            entries = json.loads(manifest.read_text())["runs"]
            done = all(e["status"] == "ok" for e in entries) and len(entries) == len(runs)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            done = False
        for run in runs if done else ():
            parquet, record_path = run_paths(results, run)
            rec = RunRecord.read(record_path)
            if rec is None or rec.status != "ok" or rec.overrides != run.overrides or not readable_run(parquet):
                done = False
                break
        if not done:
            manifest.unlink()
            forgotten.append(batch)
    return forgotten


def record_unfinished_batches(results: Path, plan: Plan, reasons: dict[str, str]) -> list[str]:
    """Manifests for failed batch jobs that ended without writing one, so the sweep can finish.

    A batch job killed from outside (the scheduler's time limit, a lost node,
    a cancellation) leaves its unfinished runs without records. For each batch
    of ``reasons`` (``{batch: why its job failed}``, e.g. the scheduler's job
    state) that is the plan's and has no manifest, each such run gets a
    ``failed`` record saying so; runs it finished keep theirs. The next sweep
    forgets these manifests (:func:`forget_unfinished_batches`) and redoes the
    failed runs.

    Returns
    -------
    list of str
        The batches recorded.
    """
    project = Path(plan.project)
    project_sha = file_sha256(project)
    recorded = []
    for batch, runs in plan.batches.items():
        manifest = results / "batches" / f"{batch}.json"
        if batch not in reasons or manifest.exists():
            continue
        why = reasons[batch] or "no reason reported"
        log = results / "logs" / "simulate" / f"{batch}.log"
        message = f"the job of batch {batch} ended before this run finished ({why}; see {log})"
        entries = []
        for run in runs:
            parquet, record_path = run_paths(results, run)
            rec = RunRecord.read(record_path)
            finished = (rec is not None and rec.status == "ok" and rec.overrides == run.overrides
                        and readable_run(parquet))
            if not finished:
                atomic.write_text(record_path, RunRecord(
                    run_id=run.run_id, design=run.design, status="failed", message=message, engine="",
                    engine_version="", wall_time_s=None, project=str(project), project_sha256=project_sha,
                    overrides=run.overrides, candidates=list(run.candidates)).to_json())
            entries.append({"run_id": run.run_id, "design": run.design, "status": "ok" if finished else "failed",
                            "message": "" if finished else message, "reused": False})
        atomic.write_text(manifest, json.dumps({"batch": batch, "engine": "", "runs": entries}, indent=1))
        recorded.append(batch)
    return recorded


def main(argv: list[str] | None = None) -> int:
    """``python -m simbaflow.simulate.batch PLAN BATCH MANIFEST ENGINE``: one batch job of the workflow."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m simbaflow.simulate.batch", description=main.__doc__)
    parser.add_argument("plan")
    parser.add_argument("batch")
    parser.add_argument("manifest")
    parser.add_argument("engine", choices=["simba", "embedded", "auto"])
    args = parser.parse_args(argv)
    try:
        run_batch(args.plan, args.batch, args.manifest, args.engine, Path(args.plan).parent)
    except SimbaflowError as exc:
        print(f"simbaflow: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Simulate stage: every candidate through transient jobs of the study's designs.

Candidates that give a design the same parameter values share one run (the
continuous design depends on Kp and Ki only, not on the discretisation). A run
is stored as ``runs/<run_id>/<design>.parquet`` plus ``<design>.json`` (status,
engine, overrides, wall time), where ``run_id`` is the first candidate using it.
Runs execute in batches (one process per batch, so compiled designs are reused);
a batch writes a manifest when it is done. A failed run is recorded with its
reason and the batch goes on; a rerun reuses every run whose record says ``ok``
for the same overrides and project, and redoes the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simbaflow import atomic
from simbaflow.candidates import candidate_gains
from simbaflow.engines.base import Overrides, RunResult
from simbaflow.errors import SimbaflowError, SpecError
from simbaflow.sweepspace import expand_candidates, expand_sweep, study_kind

#: Candidate fields a design's ``set`` mapping may name (DC and AC studies).
CANDIDATE_FIELDS = ("kp", "ki", "a0", "a1", "xi", "wn_rad_s", "fs_hz", "ts_s", "delay_samples",
                    "server_kp", "server_kr", "server_phi_prime_rad", "client_kp", "client_kr",
                    "client_phi_prime_rad", "k_gain")
#: Candidate fields a design's ``where`` filter may name besides those.
FILTER_FIELDS = ("method", "realisation", "discretisation")
#: Design kinds and the signal keys their metrics need.
KIND_SIGNALS = {"current": ("response", "reference"), "power": ("response", "reference"),
                "ac_client_server": ("v_load", "v_ref", "i_server", "i_client")}


@dataclass(frozen=True)
class PlannedRun:
    """One transient job: a design with the overrides one or more candidates give it."""

    run_id: str
    design: str
    overrides: dict[str, dict[str, float]]
    candidates: tuple[str, ...]


class RunTimeout(Exception):
    """A run went past its time limit."""


def simulate_settings(spec: dict) -> dict:
    """The spec's ``simulate`` section with defaults, validated against the sweep's fields."""
    sim = spec.get("simulate")
    if not sim:
        return {}
    source = spec.get("_path", "<spec>")
    if not Path(sim["project"]).is_file():
        raise SpecError(f"{source}: simulate.project: {sim['project']} is not a file (paths are relative to the working directory)")
    for design, cfg in sim["designs"].items():
        for field in cfg.get("where", {}):
            if field not in CANDIDATE_FIELDS + FILTER_FIELDS:
                raise SpecError(
                    f"{source}: simulate.designs.{design}.where.{field}: unknown candidate field; "
                    f"expected one of {', '.join(CANDIDATE_FIELDS + FILTER_FIELDS)}"
                )
        delays = set(spec.get("sweep", {}).get("delay_samples", [0]))
        if "delay_samples" in cfg.get("set", {}).values() and delays - {0, 1}:
            allowed = set(cfg.get("where", {}).get("delay_samples", delays))
            if allowed - {0, 1}:
                raise SpecError(
                    f"{source}: simulate.designs.{design}: the C Code block models a delay of 0 or 1 sample; "
                    f"sweep.delay_samples has {sorted(delays - {0, 1})} (add where: {{delay_samples: [0, 1]}})"
                )
        kind = cfg.get("kind", "current")
        for key in KIND_SIGNALS[kind]:
            if key not in cfg:
                raise SpecError(f"{source}: simulate.designs.{design}.{key}: is required for kind {kind}")
        for key in KIND_SIGNALS[kind] + ("duty",):
            if key in cfg and cfg[key] not in cfg["signals"]:
                raise SpecError(f"{source}: simulate.designs.{design}.{key}: {cfg[key]!r} must be one of its signals")
        for target, field in cfg.get("set", {}).items():
            if target.count(".") < 1 or not all(target.split(".", 1)):
                raise SpecError(f"{source}: simulate.designs.{design}.set.{target}: expected DEVICE.PARAMETER")
            if field not in CANDIDATE_FIELDS:
                raise SpecError(
                    f"{source}: simulate.designs.{design}.set.{target}: unknown candidate field {field!r}; "
                    f"expected one of {', '.join(CANDIDATE_FIELDS)}"
                )
    return sim


def candidate_values(spec: dict) -> list[dict[str, Any]]:
    """Each candidate's fields a ``set`` mapping may name (swept values and derived coefficients)."""
    if study_kind(spec) == "ac":
        return expand_candidates(spec)
    return [{**cand, **candidate_gains(spec, cand)} for cand in expand_sweep(spec)]


def analytic_feasible(spec: dict) -> set[str] | None:
    """Ids of the candidates meeting the analytic constraints, when ``simulate.candidates`` is ``feasible``.

    Constraints naming simulated metrics (``<design>.<metric>``) are left to the
    selection. The result is cached per spec hash and simbaflow version under
    ``results/<study>/``, because every job that plans the runs asks again.
    """
    sim = spec.get("simulate") or {}
    if sim.get("candidates", "all") != "feasible":
        return None
    from simbaflow import __version__

    cache = Path("results") / spec["study"] / f".feasible-{spec['_sha256'][:16]}-{__version__}.json"
    if cache.exists():
        return set(json.loads(cache.read_text()))
    from simbaflow.selection import broken_constraints

    if study_kind(spec) == "ac":
        from simbaflow.ac_design import evaluate_ac_study

        rows = evaluate_ac_study(spec)
    else:
        from simbaflow.candidates import evaluate_candidate

        rows = [evaluate_candidate(spec, c) for c in expand_sweep(spec)]
    analytic = {k: v for k, v in spec["selection"]["constraints"].items() if "." not in k}
    ids = sorted(r["candidate_id"] for r in rows if not broken_constraints(r, analytic))
    atomic.write_text(cache, json.dumps(ids))
    return set(ids)


def plan_runs(spec: dict) -> list[PlannedRun]:
    """Every distinct (design, overrides) of the sweep, in sweep order."""
    sim = simulate_settings(spec)
    if not sim:
        return []
    values = candidate_values(spec)
    feasible = analytic_feasible(spec)
    runs: list[PlannedRun] = []
    for design, cfg in sim["designs"].items():
        groups: dict[str, tuple[str, dict, list[str]]] = {}
        for v in values:
            if not runs_design(cfg, v) or (feasible is not None and v["candidate_id"] not in feasible):
                continue
            overrides: dict[str, dict[str, float]] = {}
            for target, value in cfg.get("fixed", {}).items():
                device, parameter = target.split(".", 1)
                overrides.setdefault(device, {})[parameter] = value
            for target, field in cfg.get("set", {}).items():
                device, parameter = target.split(".", 1)
                overrides.setdefault(device, {})[parameter] = float(v[field])
            key = json.dumps(overrides, sort_keys=True)
            groups.setdefault(key, (v["candidate_id"], overrides, []))[2].append(v["candidate_id"])
        runs += [PlannedRun(rid, design, ov, tuple(ids)) for rid, ov, ids in groups.values()]
    return runs


def runs_design(cfg: dict, candidate: dict) -> bool:
    """Whether a design's ``where`` filter lets ``candidate`` run it."""
    return all(candidate.get(field) in allowed for field, allowed in cfg.get("where", {}).items())


def batch_runs(runs: list[PlannedRun], batch_size: int) -> dict[str, list[PlannedRun]]:
    """Runs of the same design, in batches of at most ``batch_size`` named ``<design>-bNNN``."""
    batches: dict[str, list[PlannedRun]] = {}
    by_design: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_design.setdefault(run.design, []).append(run)
    for design, items in by_design.items():
        for i in range(0, len(items), batch_size):
            batches[f"{design}-b{i // batch_size:03d}"] = items[i : i + batch_size]
    return batches


def run_paths(results: Path, run: PlannedRun) -> tuple[Path, Path]:
    """``runs/<run_id>/<design>.parquet`` and its ``.json`` record."""
    base = results / "runs" / run.run_id / run.design
    return base.with_suffix(".parquet"), base.with_suffix(".json")


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


def _reusable(record_path: Path, parquet: Path, run: PlannedRun, project_sha: str, engine: str) -> bool:
    """A finished run with the same inputs: nothing to redo."""
    if not (record_path.exists() and parquet.exists()):
        return False
    try:
        rec = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (rec.get("status") == "ok" and rec.get("overrides") == run.overrides
            and rec.get("project_sha256") == project_sha and rec.get("engine") == engine)


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


def run_batch(spec: dict, batch: str, manifest: str | Path, engine_name: str, results: Path) -> dict:
    """Run (or reuse) every run of ``batch`` and write its manifest.

    Returns
    -------
    dict
        The manifest: ``{"batch", "engine", "runs": [{"run_id", "design", "status", "message"}]}``.
    """
    from simbaflow.engines.select import select_engine
    from simbaflow.runio import result_metadata, write_run_parquet

    sim = simulate_settings(spec)
    batches = batch_runs(plan_runs(spec), int(sim.get("batch_size", 8)))
    if batch not in batches:
        raise SpecError(f"{spec['_path']}: no simulation batch {batch!r} in this study")
    engine, message = select_engine(engine_name)
    print(message, flush=True)
    project = Path(sim["project"])
    project_sha = file_sha256(project)
    entries = []
    for run in batches[batch]:
        cfg = sim["designs"][run.design]
        parquet, record = run_paths(results, run)
        if _reusable(record, parquet, run, project_sha, engine.name):
            entries.append({"run_id": run.run_id, "design": run.design, "status": "ok", "message": "", "reused": True})
            continue
        result = execute_run(engine, project, run, cfg, cfg.get("end_time_s", sim.get("end_time_s")),
                             cfg.get("timeout_s", sim.get("timeout_s")))
        meta = {"design": run.design, "project": str(project), "project_sha256": project_sha,
                "overrides": run.overrides, "candidates": list(run.candidates), "run_id": run.run_id}
        write_run_parquet(parquet, result, meta)
        rec = {**result_metadata(result), **meta}
        atomic.write_text(record, json.dumps(rec, indent=1, default=_json_default))
        print(f"{run.design} {run.run_id}: {result.status} in {result.wall_time_s:.2f} s"
              + (f" ({result.message})" if result.message else ""), flush=True)
        entries.append({"run_id": run.run_id, "design": run.design, "status": result.status,
                        "message": result.message, "reused": False})
    out = {"batch": batch, "engine": engine.name, "runs": entries}
    atomic.write_text(manifest, json.dumps(out, indent=1))
    return out


def _json_default(value: Any):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def forget_failed_batches(results: Path) -> list[str]:
    """Delete the manifests of batches with a failed run, so the next run redoes them.

    Finished runs inside those batches are reused (see :func:`run_batch`).
    """
    forgotten = []
    for manifest in sorted((results / "batches").glob("*.json")):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            data = {"runs": [{"status": "failed"}]}
        if any(r.get("status") != "ok" for r in data.get("runs", [])):
            manifest.unlink()
            forgotten.append(manifest.stem)
    return forgotten


def main(argv: list[str] | None = None) -> int:
    """``python -m simbaflow.simulate SPEC BATCH MANIFEST ENGINE``: one batch job of the workflow."""
    import argparse
    import sys

    from simbaflow.spec import load_spec

    parser = argparse.ArgumentParser(prog="python -m simbaflow.simulate", description=main.__doc__)
    parser.add_argument("spec")
    parser.add_argument("batch")
    parser.add_argument("manifest")
    parser.add_argument("engine", choices=["simba", "embedded", "auto"])
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        run_batch(spec, args.batch, args.manifest, args.engine, Path("results") / spec["study"])
    except SimbaflowError as exc:
        print(f"simbaflow: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

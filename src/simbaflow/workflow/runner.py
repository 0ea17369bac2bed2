"""Running the Snakemake workflow from the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from simbaflow.core.errors import SimbaflowError
from simbaflow.core.paths import results_dir
from simbaflow.core.spec import load_spec
from simbaflow.kinds import kind_of


def snakefile() -> Path:
    """The workflow's Snakefile: ``$SIMBAFLOW_SNAKEFILE`` or the one beside ``src/``."""
    env = os.environ.get("SIMBAFLOW_SNAKEFILE")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "Snakefile"
    if not path.is_file():
        raise SimbaflowError(f"{path}: workflow Snakefile not found; set SIMBAFLOW_SNAKEFILE to the repository's Snakefile")
    return path


def default_profile() -> Path:
    """``workflows/profiles/local`` beside the Snakefile."""
    return snakefile().parent / "workflows" / "profiles" / "local"


def snakemake_command(spec_path: Path, cores: int, extra: list[str] | None = None,
                      profile: Path | None = None, config: list[str] | None = None) -> list[str]:
    """The Snakemake invocation for a study: its spec (and ``config`` items) as config, the local profile by default."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(snakefile()),
        "--workflow-profile", str(profile or default_profile()),
        "--directory", os.getcwd(),
        "--cores", str(cores),
        "--config", f"spec={spec_path}", *(config or []),
        *(extra or []),
    ]


def _engine_arguments(spec: dict, engine: str | None) -> list[str]:
    """Config and resources for the simulate stage; stops here, before any work, without a licence."""
    sim = spec.get("simulate")
    if not sim:
        return []
    from simbaflow.simulate.engines.select import select_engine
    from simbaflow.simulate.engines.simba import simba_slots

    name = engine or sim.get("engine", "auto")
    chosen, message = select_engine(name)  # LicenseError (exit 3) for simba without a licence
    print(f"simbaflow: {message}", flush=True)
    args = ["engine=" + name]
    slots = simba_slots() if chosen.name == "simba" else 0
    return args + (["--resources", f"simba_slots={max(1, slots)}"] if chosen.name == "simba" else [])


_STEPS = re.compile(r"(\d+) of (\d+) steps \((\d+)%\) done")


def _stream_with_progress(cmd: list[str]) -> int:
    """Run Snakemake, echoing its output and adding an estimate of the time left after each step."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        match = _STEPS.search(line)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            elapsed = time.monotonic() - started
            left = elapsed / done * (total - done) if done else float("nan")
            sys.stdout.write(f"simbaflow: {done}/{total} jobs done in {elapsed:.0f} s, about {left:.0f} s left\n")
        sys.stdout.flush()
    return proc.wait()


@contextlib.contextmanager
def sweep_lock(results: Path):
    """Hold an exclusive lock for one study's sweep; clear Snakemake locks a killed sweep left.

    The kernel releases ``flock`` when its holder dies (even by SIGKILL), so
    holding it proves no other simbaflow sweep of this study is running, and a
    leftover Snakemake lock can only be stale.
    """
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".sweep.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SimbaflowError(f"another sweep of {results} is running; wait for it to finish") from None
        yield


def _clear_stale_snakemake_locks(spec_path: Path) -> None:
    locks = Path(".snakemake") / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        print("simbaflow: clearing the Snakemake lock an interrupted sweep left", flush=True)
        subprocess.run(snakemake_command(spec_path, 1, ["--unlock"]), capture_output=True, check=False)


def run_sweep(spec_path: Path, cores: int, report: bool = True, profile: Path | None = None,
              engine: str | None = None) -> int:
    """Validate the spec, run the workflow, then build its HTML report.

    Failed simulation runs of an earlier sweep are forgotten first, so they are
    redone while finished runs are reused. Returns the exit code; a failed run
    that leaves the candidate table but no selection is re-explained in one
    sentence (e.g. no feasible candidate).
    """
    spec = load_spec(spec_path)
    if not kind_of(spec).sweeps:
        raise SimbaflowError(
            f"{spec_path} has no sweep (or ac) section to run; for a state-space study use "
            f"`simbaflow statespace {spec_path}` and `simbaflow promote {spec_path}`"
        )
    results = results_dir(spec)
    engine_args = _engine_arguments(spec, engine)
    with sweep_lock(results):
        _clear_stale_snakemake_locks(spec_path)
        return _run_locked(spec_path, spec, results, cores, report, profile, engine_args)


def _run_locked(spec_path: Path, spec: dict, results: Path, cores: int, report: bool, profile: Path | None,
                engine_args: list[str]) -> int:
    if spec.get("simulate"):
        from simbaflow.simulate.batch import forget_unfinished_batches
        from simbaflow.simulate.plan import Plan

        kind_of(spec).simulate_settings(spec)  # project and design settings checked before any work
        plan_path = results / "plan.json"
        redo = forget_unfinished_batches(results, Plan.read(plan_path)) if plan_path.exists() else []
        if redo:
            # metrics.csv (and what follows from it) must be gathered again from the redone runs.
            (results / "metrics.csv").unlink(missing_ok=True)
            print(f"simbaflow: redoing failed or unfinished runs of {len(redo)} batch(es): {', '.join(redo)}")
    code = _stream_with_progress(
        snakemake_command(spec_path, cores, engine_args[1:], profile=profile, config=engine_args[:1]))
    if code != 0:
        table, selection = results / "candidates.csv", results / "selection.json"
        if table.exists() and not selection.exists():
            from simbaflow.workflow.steps import select_to_json

            metrics = results / "metrics.csv"
            # Raises the selection's own clear error (e.g. no feasible candidate).
            select_to_json(spec_path, table, selection, metrics if metrics.exists() else None)
        raise SimbaflowError(f"the workflow for {spec_path} failed (snakemake exit {code}); see its log above", exit_code=code)
    if report:
        build_report(spec_path, cores)
    # Last line: the page to decide from.
    print(f"review: {results / 'review.html'}", flush=True)
    return 0


def build_report(spec_path: Path, cores: int = 1) -> int:
    """``snakemake --report results/<study>/report.html``."""
    spec = load_spec(spec_path)
    out = results_dir(spec) / "report.html"
    code = subprocess.call(snakemake_command(spec_path, cores, ["--report", str(out)]))
    if code != 0:
        raise SimbaflowError(f"building the report {out} failed (snakemake exit {code})", exit_code=code)
    print(f"report: {out}")
    return 0

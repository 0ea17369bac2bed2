"""Running the Snakemake workflow from the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
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
_RULE_ERROR = re.compile(r"^Error in rule (\w+):")
_LOG_LINE = re.compile(r"^\s+log: (\S+)")
_EXCEPTION = re.compile(r"^(\w+(?:Error|Exception)) in file .*, line \d+:$")
_MESSAGE_LINE = re.compile(r"^\s+message: (.+)$")
_MANIFEST = re.compile(r"(?:^|[\s/])batches/([^/\s,]+)\.json\b")
#: How long Snakemake gets to stop its jobs after SIGTERM before it is killed.
STOP_GRACE_S = 20.0


class SweepFailure(SimbaflowError):
    """The workflow failed; the message names the first failed rule, its cause and log."""


def first_failure(lines: list[str]) -> tuple[str, str, str | None] | None:
    """``(rule, cause, log)`` of the first job that failed in Snakemake's output, if any.

    The cause is the last line of the job's log when it has one (a batch job's
    own one-line error), else the exception message Snakemake printed for it.
    """
    for k, line in enumerate(lines):
        match = _RULE_ERROR.match(line)
        if not match:
            continue
        rule, log, cause = match.group(1), None, None
        for follow in lines[k + 1 : k + 40]:
            log_match = _LOG_LINE.match(follow)
            if log_match:
                log = log_match.group(1).split(",")[0].split(" ")[0]
                break
            if follow.strip() == "" or _RULE_ERROR.match(follow):
                break
        if log and Path(log).is_file():
            tail = [x.strip() for x in Path(log).read_text(errors="replace").splitlines() if x.strip()]
            cause = tail[-1] if tail else None
        if cause is None:
            for back in range(k - 1, max(k - 60, -1), -1):
                if _EXCEPTION.match(lines[back]) and back + 1 < len(lines):
                    cause = f"{_EXCEPTION.match(lines[back]).group(1)}: {lines[back + 1].strip()}"
                    break
        return rule, cause or "see the log above", log
    return None


def failed_batch_jobs(lines: list[str]) -> dict[str, str]:
    """``{batch: why}`` of the ``simulate_batch`` jobs Snakemake's output reports as failed.

    Each job's error block names its manifest on its ``output:`` line
    (``results/<study>/batches/<batch>.json``); ``why`` is the first sentence of
    its ``message:`` line, the executor's account of the job (the SLURM
    executor's: ``SLURM-job '37' failed, SLURM status is: 'TIMEOUT'``), or ""
    when there is none (the local executor prints ``message: None``).
    """
    failed: dict[str, str] = {}
    for k, line in enumerate(lines):
        match = _RULE_ERROR.match(line)
        if not match or match.group(1) != "simulate_batch":
            continue
        batch, why = None, ""
        for follow in lines[k + 1 : k + 40]:
            if not follow.startswith(" "):  # the block's lines are indented; anything else ends it
                break
            message = _MESSAGE_LINE.match(follow)
            if message and message.group(1).strip() != "None" and not why:
                why = message.group(1).strip().split(". ")[0].rstrip(".")
            output = _MANIFEST.search(follow) if follow.lstrip().startswith("output:") else None
            if output:
                batch = output.group(1)
        if batch:
            failed[batch] = why
    return failed


def _ended_by_its_own_error(log: Path) -> bool:
    """Whether a batch job's log ends with the batch's own one-line error (``simbaflow: ...``): its exit, not a kill."""
    try:
        tail = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return False
    return bool(tail) and tail[-1].startswith("simbaflow: ")


def _stop_with_parent() -> None:
    """In the Snakemake child: get SIGTERM when the sweep process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere Snakemake outlives a killed sweep, holding the lock until it ends


def _stream_with_progress(cmd: list[str], lock_fd: int | None = None) -> tuple[int, list[str]]:
    """Run Snakemake in its own process group, echoing its output with an estimate of the time left.

    The sweep lock's file descriptor is passed to Snakemake, so the lock stays
    held while any process of the sweep lives. SIGINT and SIGTERM stop the whole
    group (Snakemake and its jobs) before this returns.

    Returns
    -------
    (exit code, output lines)
    """
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            start_new_session=True, pass_fds=(lock_fd,) if lock_fd is not None else (),
                            preexec_fn=_stop_with_parent)
    assert proc.stdout is not None
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            sys.stdout.write(line)
            match = _STEPS.search(line)
            if match:
                done, total = int(match.group(1)), int(match.group(2))
                elapsed = time.monotonic() - started
                left = elapsed / done * (total - done) if done else float("nan")
                sys.stdout.write(f"simbaflow: {done}/{total} jobs done in {elapsed:.0f} s, about {left:.0f} s left\n")
            sys.stdout.flush()
        try:
            code = proc.wait(timeout=STOP_GRACE_S if received else None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        name = signal.Signals(received[0]).name
        raise SimbaflowError(f"sweep stopped by {name}: Snakemake and its jobs were stopped; finished runs are "
                             "kept and the next sweep resumes", exit_code=128 + received[0])
    return code, lines


@contextlib.contextmanager
def sweep_lock(results: Path):
    """Hold an exclusive lock for one study's sweep (yields its file descriptor).

    The kernel releases ``flock`` when the last process holding the descriptor
    dies (even by SIGKILL); Snakemake inherits it, so holding the lock proves no
    process of another sweep of this study is alive, and a leftover Snakemake
    lock can only be stale.
    """
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".sweep.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SimbaflowError(f"another sweep of {results} is running; wait for it to finish") from None
        yield handle.fileno()


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
    from simbaflow.workflow.preflight import check_study

    spec = load_spec(spec_path)
    if not kind_of(spec).sweeps:
        raise SimbaflowError(
            f"{spec_path} has no sweep (or ac) section to run; for a state-space study use "
            f"`simbaflow statespace {spec_path}` and `simbaflow promote {spec_path}`"
        )
    check_study(spec)  # sizes, metric names, the project's designs and devices: before any job
    results = results_dir(spec)
    engine_args = _engine_arguments(spec, engine)
    with sweep_lock(results) as lock_fd:
        _clear_stale_snakemake_locks(spec_path)
        return _run_locked(spec_path, spec, results, cores, report, profile, engine_args, lock_fd)


def _run_locked(spec_path: Path, spec: dict, results: Path, cores: int, report: bool, profile: Path | None,
                engine_args: list[str], lock_fd: int) -> int:
    if spec.get("simulate"):
        from simbaflow.simulate.batch import forget_unfinished_batches
        from simbaflow.simulate.plan import Plan

        plan_path = results / "plan.json"
        redo = forget_unfinished_batches(results, Plan.read(plan_path)) if plan_path.exists() else []
        if redo:
            # metrics.csv (and what follows from it) must be gathered again from the redone runs.
            (results / "metrics.csv").unlink(missing_ok=True)
            print(f"simbaflow: redoing failed or unfinished runs of {len(redo)} batch(es): {', '.join(redo)}")
    command = snakemake_command(spec_path, cores, engine_args[1:], profile=profile, config=engine_args[:1])
    code, lines = _stream_with_progress(command, lock_fd)
    if code != 0 and spec.get("simulate"):
        code, lines = _finish_after_lost_batches(results, command, lock_fd, code, lines)
    if code != 0:
        failure = first_failure(lines)
        table, selection = results / "candidates.csv", results / "selection.json"
        if failure and failure[0] == "select" and table.exists() and not selection.exists():
            from simbaflow.workflow.steps import select_to_json

            metrics = results / "metrics.csv"
            # Raises the selection's own clear error and exit code (e.g. 4: no feasible candidate).
            select_to_json(spec_path, table, selection, metrics if metrics.exists() else None)
        if failure:
            rule, cause, log = failure
            raise SweepFailure(f"the workflow for {spec_path} failed first in rule {rule}: {cause}"
                               + (f" (log: {log})" if log else ""), exit_code=code)
        raise SweepFailure(f"the workflow for {spec_path} failed (snakemake exit {code}); see its output above",
                           exit_code=code)
    if report:
        build_report(spec_path, cores)
    # Last line: the page to decide from.
    print(f"review: {results / 'review.html'}", flush=True)
    return 0


def _finish_after_lost_batches(results: Path, command: list[str], lock_fd: int, code: int,
                              lines: list[str]) -> tuple[int, list[str]]:
    """Record the runs of batch jobs killed from outside as failed, then let the workflow finish.

    Snakemake runs nothing downstream of a failed job, so a batch the scheduler
    killed (time limit, lost node, cancellation) would leave no ``metrics.csv``.
    A failed ``simulate_batch`` job whose executor reports its fate and whose
    log does not end with the batch's own error (a bad project, a refused
    licence: those stop the sweep) is lost: its unfinished runs are recorded as
    failed with that fate, and the workflow is run once more to gather, select
    and report. Returns that run's exit code and output, else ``code`` and ``lines``.
    """
    from simbaflow.simulate.batch import record_unfinished_batches
    from simbaflow.simulate.plan import Plan

    plan_path = results / "plan.json"
    if not plan_path.exists():
        return code, lines
    lost = {batch: why for batch, why in failed_batch_jobs(lines).items()
            if why and not _ended_by_its_own_error(results / "logs" / "simulate" / f"{batch}.log")}
    recorded = record_unfinished_batches(results, Plan.read(plan_path), lost) if lost else []
    if not recorded:
        return code, lines
    print(f"simbaflow: {len(recorded)} batch job(s) ended before finishing: {', '.join(recorded)}; their unfinished "
          "runs are recorded as failed (the next sweep redoes them)", flush=True)
    return _stream_with_progress(command, lock_fd)


def build_report(spec_path: Path, cores: int = 1) -> int:
    """``snakemake --report results/<study>/report.html``."""
    spec = load_spec(spec_path)
    out = results_dir(spec) / "report.html"
    code = subprocess.call(snakemake_command(spec_path, cores, ["--report", str(out)]))
    if code != 0:
        raise SimbaflowError(f"building the report {out} failed (snakemake exit {code})", exit_code=code)
    print(f"report: {out}")
    return 0

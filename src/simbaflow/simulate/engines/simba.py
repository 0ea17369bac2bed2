"""The SIMBA engine: transient jobs of a ``.jsimba`` project through aesim.simba, one process per batch.

A batch's jobs run in one Python process (``python -m simbaflow.simulate.engines.simba``)
started with ``subprocess``: it imports aesim.simba and loads .NET once, opens
the project once, then runs each job in turn and reports each one's status
separately. The .NET runtime never lives in the calling process, so the
workflow may still fork. Names, overrides and signals are checked license-free
(:mod:`simbaflow.simulate.jsimba`) before the job process starts.

Licence: ``SIMBA_DEPLOYMENT_KEY``, or a compute licence
``SIMBA_COMPUTE_KEY_ID`` + ``SIMBA_COMPUTE_SECRET`` (+ ``SIMBA_COMPUTE_SLOTS``,
the number of simultaneous jobs). aesim.simba activates either when imported.
Each job process leases one compute slot; :func:`simba_slots` tells the
workflow how many job processes may run at once.

The licensed path (opening the project, running, reading signals) is written
to aesim.simba's documented API (its type stub ``aesim/simba/__init__.pyi``:
``ProjectRepository``, ``GetDesignByName``, ``TransientAnalysis.NewJob()``,
``Run``, ``TimePoints``, ``GetSignalByName``) and has not run here: no licence
exists on this project's machines.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from simbaflow.simulate import jsimba
from simbaflow.simulate.engines.base import TRANSIENT_KEYS, Overrides, RunResult
from simbaflow.core.errors import LicenseError, SpecError

NAME = "simba"
DEPLOYMENT_KEY = "SIMBA_DEPLOYMENT_KEY"
COMPUTE_KEY_ID = "SIMBA_COMPUTE_KEY_ID"
COMPUTE_SECRET = "SIMBA_COMPUTE_SECRET"
COMPUTE_SLOTS = "SIMBA_COMPUTE_SLOTS"
# The job process reports a refused licence with this exit status.
_EXIT_LICENCE = 3
# The job process's progress lines on stdout (anything else there is aesim.simba's).
_PROGRESS = re.compile(r"simbaflow-job (start|done) (\d+)")


def licence_source(env: Mapping[str, str] | None = None) -> str | None:
    """Which SIMBA licence the environment configures: ``"deployment"``, ``"compute"`` or None."""
    env = os.environ if env is None else env
    if env.get(COMPUTE_KEY_ID) and env.get(COMPUTE_SECRET):
        return "compute"
    if env.get(DEPLOYMENT_KEY):
        return "deployment"
    return None


def require_licence(env: Mapping[str, str] | None = None) -> str:
    """The licence source, or :class:`LicenseError` (exit 3) when none is configured."""
    source = licence_source(env)
    if source is None:
        raise LicenseError(
            f"SIMBA needs a licence and none is configured (set {DEPLOYMENT_KEY}, or {COMPUTE_KEY_ID} and "
            f"{COMPUTE_SECRET}); use --engine embedded to simulate without one."
        )
    return source


def simba_slots(env: Mapping[str, str] | None = None) -> int:
    """How many SIMBA jobs may run at once: 0 without a licence.

    A compute licence gives ``SIMBA_COMPUTE_SLOTS`` (default 1). A deployment
    key is asked for its parallel-simulation count in a separate process, so
    the caller never loads .NET.

    Raises
    ------
    SpecError
        When ``SIMBA_COMPUTE_SLOTS`` is not a positive integer.
    """
    env = os.environ if env is None else env
    source = licence_source(env)
    if source is None:
        return 0
    if source == "compute":
        text = env.get(COMPUTE_SLOTS, "1")
        try:
            slots = int(text)
        except ValueError:
            slots = 0
        if slots < 1:
            raise SpecError(f"environment variable {COMPUTE_SLOTS}={text!r}: expected a positive integer")
        return slots
    probe = subprocess.run(
        [sys.executable, "-c", "import aesim.simba as s; print(s.License.NumberOfAvailableParallelSimulationLicense())"],
        capture_output=True,
        text=True,
        env=dict(env),
    )
    try:
        return max(1, int(probe.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        # The key could not be checked here; the job itself will report why.
        return 1


def engine_version() -> str:
    """Version of the installed aesim.simba package (read without loading .NET)."""
    try:
        return metadata.version("aesim.simba")
    except metadata.PackageNotFoundError:
        return "not installed"


def resample_signal(time_s: np.ndarray, signal_time_s: np.ndarray, values: np.ndarray, sampled: bool) -> np.ndarray:
    """Values of one signal on the job's common time vector.

    Parameters
    ----------
    time_s : numpy.ndarray
        The job's time points.
    signal_time_s, values : numpy.ndarray
        The signal's own time points and data (cropped to the shorter of the two,
        as SIMBA's ``GetSignalWaveform`` does).
    sampled : bool
        A sampled (discrete) signal holds each value until its next sample;
        a continuous one is interpolated linearly.
    """
    time_s = np.asarray(time_s, dtype=float)
    n = min(len(signal_time_s), len(values))
    t, y = np.asarray(signal_time_s, dtype=float)[:n], np.asarray(values, dtype=float)[:n]
    if n == 0:
        return np.full(time_s.shape, np.nan)
    if t.shape == time_s.shape and np.array_equal(t, time_s):
        return y
    if sampled:
        index = np.clip(np.searchsorted(t, time_s, side="right") - 1, 0, n - 1)
        return y[index]
    return np.interp(time_s, t, y)


@dataclass
class BatchJob:
    """One transient job of a batch: a design, its overrides, the signals to return, an optional end time."""

    design: str
    overrides: Overrides
    signals: list[str]
    end_time_s: float | None = None
    timeout_s: float | None = None


def job_request(project: Path, job: BatchJob) -> dict:
    """The job process's request for one job, checked license-free against the project file.

    Raises
    ------
    SpecError
        For an unknown design, device, parameter, transient key or signal.
    """
    design_json = jsimba.get_design(jsimba.load_project(project), job.design, project)
    transient = dict(job.overrides.transient)
    if job.end_time_s is not None:
        transient["EndTime"] = job.end_time_s
    changed = jsimba.apply_overrides(design_json, Overrides(parameters=job.overrides.parameters, transient=transient))
    return {
        "design": job.design,
        "parameters": {
            device: {key: jsimba.format_value(value) for key, value in params.items()}
            for device, params in job.overrides.parameters.items()
        },
        "transient": {key: changed["TransientAnalysis"][key] for key in transient},
        "signals": jsimba.resolve_signals(changed, job.signals),
    }


def job_environment(env: Mapping[str, str]) -> dict[str, str]:
    """Environment of a job process: with a compute licence, it leases exactly one slot."""
    out = dict(env)
    if licence_source(out) == "compute":
        out[COMPUTE_SLOTS] = "1"
    return out


class SimbaEngine:
    """Runs transient analyses in SIMBA: one job process per batch of runs."""

    name = NAME

    def run(
        self,
        project: Path,
        design: str,
        overrides: Overrides,
        signals: list[str],
        end_time_s: float | None = None,
    ) -> RunResult:
        """Run one transient job of ``design`` in ``project`` with ``overrides`` (a batch of one).

        Raises
        ------
        LicenseError
            Before any work when no licence is configured, or when SIMBA refuses it.
        SpecError
            For an unknown design, device, parameter, transient key or signal.
        """
        [(_, result)] = list(self.run_batch(project, [BatchJob(design, overrides, signals, end_time_s)]))
        return result

    def run_batch(self, project: Path, jobs: list[BatchJob]) -> Iterator[tuple[int, RunResult]]:
        """Run ``jobs`` through one job process, yielding ``(index, result)`` as each run ends.

        The process imports aesim.simba, opens the project once and runs the
        jobs in turn; a failing job is reported as a failed result and the next
        one goes on. A job past its ``timeout_s`` (SIMBA's solver cannot be
        interrupted from Python) is recorded as failed, its process killed, and a
        new process takes the remaining jobs. Every job is checked license-free
        before any process starts.

        Raises
        ------
        LicenseError
            Before any work when no licence is configured, or when SIMBA refuses it.
        SpecError
            For an unknown design, device, parameter, transient key or signal.
        """
        require_licence()
        project = Path(project).resolve()
        requests = [job_request(project, job) for job in jobs]
        pending = list(range(len(jobs)))
        with tempfile.TemporaryDirectory(prefix="simbaflow-simba-") as tmp:
            while pending:
                batch_path = Path(tmp) / f"batch-{pending[0]}.json"
                batch_path.write_text(json.dumps({"project": str(project),
                                                  "jobs": [dict(requests[i], index=i) for i in pending]}))
                yield from self._run_process(batch_path, Path(tmp), jobs, pending)

    def _run_process(self, batch_path: Path, outdir: Path, jobs: list[BatchJob],
                     pending: list[int]) -> Iterator[tuple[int, RunResult]]:
        """One job process over ``pending`` (which it empties, or leaves with the jobs still to run)."""
        stderr_path = batch_path.with_suffix(".stderr")
        with open(stderr_path, "w") as stderr_file:  # a file, not a pipe: SIMBA's chatter never blocks it
            proc = subprocess.Popen(
                [sys.executable, "-m", "simbaflow.simulate.engines.simba", str(batch_path), str(outdir)],
                stdout=subprocess.PIPE, stderr=stderr_file, text=True, env=job_environment(os.environ),
                start_new_session=True,
            )
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
        reader.start()
        started: dict[int, float] = {}  # from each job's "start" line: start-up is not the run's time
        while pending:
            current = pending[0]
            limit = jobs[current].timeout_s
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if limit is not None and current in started and time.perf_counter() - started[current] > limit:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    pending.pop(0)
                    yield current, _failed(f"the run exceeded its time limit of {limit:g} s",
                                           time.perf_counter() - started[current])
                    return
                if not reader.is_alive() and lines.empty():  # the process closed its output: no more lines
                    break
                continue
            match = _PROGRESS.fullmatch(line.strip())
            if match is None:
                continue  # aesim.simba's own output
            kind, index = match.group(1), int(match.group(2))
            if kind == "start":
                started[index] = time.perf_counter()
            elif kind == "done" and index == current:
                pending.pop(0)
                yield current, read_result(outdir / f"result-{current}.npz", time.perf_counter() - started[current])
        code = proc.wait()
        stderr = stderr_path.read_text(errors="replace")
        if code == _EXIT_LICENCE:
            raise LicenseError(f"SIMBA refused the licence: {_last_line(stderr)}")
        # The process ended before these runs: each is reported, none is silently lost.
        while pending:
            index = pending.pop(0)
            yield index, _failed(f"SIMBA job process ended (exit {code}) before this run: {_last_line(stderr)}", 0.0)


def read_result(path: Path, wall_time_s: float) -> RunResult:
    """A job's result file (written by the job process) as a :class:`RunResult`."""
    with np.load(path, allow_pickle=False) as data:
        info = json.loads(str(data["info"]))
        if info["status"] != "ok":
            return _failed(info["message"], wall_time_s, info.get("summary", {}))
        signals = {name: data[f"signal_{i}"] for i, name in enumerate(info["signals"])}
        return RunResult(time_s=data["time_s"], signals=signals, status="ok", engine=NAME,
                         engine_version=engine_version(), wall_time_s=wall_time_s, summary=info.get("summary", {}))


def write_result(path: Path, info: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write one job's result whole (temporary file, then rename): a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, info=np.array(json.dumps(info)), **arrays)
    os.replace(tmp, path)


def _failed(message: str, wall_time_s: float, summary: dict | None = None) -> RunResult:
    return RunResult(time_s=np.zeros(0), signals={}, status="failed", engine=NAME, engine_version=engine_version(),
                     wall_time_s=wall_time_s, message=message, summary=summary or {})


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _find_device(circuit, name: str):
    # Connector labels may share a device's name; overrides address the device.
    for device in circuit.Devices:
        if str(device.Name) == name and device.LibraryItemName not in jsimba.CONNECTOR_LABELS:
            return device
    raise SpecError(f"SIMBA found no device named '{name}' in the design")


def error_text(exc: BaseException) -> tuple[str, bool]:
    """One line for an exception raised inside the job process, and whether it is a licence refusal.

    .NET exceptions arrive as plain Python exceptions whose text may span
    lines (stack traces); the first line is SIMBA's message.
    """
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else type(exc).__name__
    return first, "Invalid License" in text or "LicenseNotValid" in text


class _Design:
    """A design of the open project, put back to its saved values before each job.

    A batch runs several jobs on one design object; an override of one job
    must not leak into the next, so each value is kept before its first change.
    """

    def __init__(self, design) -> None:
        self.design = design
        self.saved: dict[tuple[str, str], Any] = {}

    def apply(self, request: dict) -> None:
        for (device_name, parameter), value in self.saved.items():
            target = self.design.TransientAnalysis if device_name == "" else _find_device(self.design.Circuit, device_name)
            setattr(target, parameter, value)
        for device_name, parameters in request["parameters"].items():
            device = _find_device(self.design.Circuit, device_name)
            for parameter, value in parameters.items():
                self.saved.setdefault((device_name, parameter), getattr(device, parameter))
                setattr(device, parameter, value)
        solver = self.design.TransientAnalysis
        for key in TRANSIENT_KEYS:
            if key in request["transient"]:
                self.saved.setdefault(("", key), getattr(solver, key))
                setattr(solver, key, request["transient"][key])


def _job(design: _Design, request: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Inside the job process: override, run, read signals (aesim.simba's documented API, needs the licence)."""
    design.apply(request)
    job = design.design.TransientAnalysis.NewJob()
    status = job.Run()
    summary = {"status": str(status), "summary": str(job.Summary()), "run_time_s": float(job.RunTime)}
    info = {"status": "failed", "summary": summary, "signals": request["signals"]}
    if str(status) != "OK":
        return {**info, "message": f"SIMBA job ended with status {status}"}, {}
    time_s = np.asarray(list(job.TimePoints), dtype=float)
    arrays = {"time_s": time_s}
    for index, name in enumerate(request["signals"]):
        device, _, scope = name.partition(" - ")
        signal_ = job.GetSignalByName(name) or job.GetSignalByName(f"{device} - {jsimba.LEGACY_SCOPE_PREFIX}{scope}")
        if signal_ is None:
            return {**info, "message": f"SIMBA returned no signal '{name}'"}, {}
        arrays[f"signal_{index}"] = resample_signal(
            time_s,
            np.asarray(list(signal_.TimePoints), dtype=float),
            np.asarray(list(signal_.DataPoints), dtype=float),
            sampled=bool(signal_.SamplingTime),
        )
    return {**info, "status": "ok", "message": ""}, arrays


def _main(argv: list[str]) -> int:
    """``python -m simbaflow.simulate.engines.simba BATCH.json OUTDIR``: the batch's job process.

    Prints ``simbaflow-job start I`` and ``simbaflow-job done I`` for each job I (its result is then
    ``OUTDIR/result-I.npz``); exits 3 when SIMBA refuses the licence, before any job.
    """
    batch = json.loads(Path(argv[1]).read_text())
    outdir = Path(argv[2])
    try:
        from aesim.simba import ProjectRepository

        project = ProjectRepository(batch["project"])  # opened once for every job of the batch
    except Exception as exc:  # .NET exceptions arrive as plain Exceptions
        text, licence = error_text(exc)
        print(text, file=sys.stderr)
        return _EXIT_LICENCE if licence else 1
    designs: dict[str, _Design] = {}
    for request in batch["jobs"]:
        index = request["index"]
        print(f"simbaflow-job start {index}", flush=True)
        try:
            if request["design"] not in designs:
                found = project.GetDesignByName(request["design"])
                if found is None:
                    raise SpecError(f"{batch['project']}: SIMBA found no design named '{request['design']}'")
                designs[request["design"]] = _Design(found)
            info, arrays = _job(designs[request["design"]], request)
        except Exception as exc:  # one failing job does not fail its batch
            text, licence = error_text(exc)
            if licence:
                print(text, file=sys.stderr)
                return _EXIT_LICENCE
            info, arrays = {"status": "failed", "message": text, "summary": {}, "signals": request["signals"]}, {}
        write_result(outdir / f"result-{index}.npz", info, arrays)
        print(f"simbaflow-job done {index}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))

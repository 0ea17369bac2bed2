"""The SIMBA engine: one transient job of a ``.jsimba`` design through aesim.simba.

Every job runs in its own Python process (``python -m simbaflow.simulate.engines.simba``)
started with ``subprocess``: the .NET runtime aesim.simba loads never lives in
the calling process, so the workflow may still fork, and every job gets fresh
C Code block globals. Names, overrides and signals are checked license-free
(:mod:`simbaflow.simulate.jsimba`) before the job process starts.

Licence: ``SIMBA_DEPLOYMENT_KEY``, or a compute licence
``SIMBA_COMPUTE_KEY_ID`` + ``SIMBA_COMPUTE_SECRET`` (+ ``SIMBA_COMPUTE_SLOTS``,
the number of simultaneous jobs). aesim.simba activates either when imported.
Each job process leases one compute slot; :func:`simba_slots` tells the
workflow how many job processes may run at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Mapping

import numpy as np

from simbaflow.simulate import jsimba
from simbaflow.simulate.engines.base import TRANSIENT_KEYS, Overrides, RunResult
from simbaflow.core.errors import LicenseError, SimbaflowError, SpecError

NAME = "simba"
DEPLOYMENT_KEY = "SIMBA_DEPLOYMENT_KEY"
COMPUTE_KEY_ID = "SIMBA_COMPUTE_KEY_ID"
COMPUTE_SECRET = "SIMBA_COMPUTE_SECRET"
COMPUTE_SLOTS = "SIMBA_COMPUTE_SLOTS"
# The job process reports a refused licence with this exit status.
_EXIT_LICENCE = 3


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


class SimbaEngine:
    """Runs a design's transient analysis in SIMBA, one job process per run."""

    name = NAME

    def run(
        self,
        project: Path,
        design: str,
        overrides: Overrides,
        signals: list[str],
        end_time_s: float | None = None,
    ) -> RunResult:
        """Run one transient job of ``design`` in ``project`` with ``overrides``.

        Raises
        ------
        LicenseError
            Before any work when no licence is configured, or when SIMBA refuses it.
        SpecError
            For an unknown design, device, parameter, transient key or signal.
        """
        require_licence()
        project = Path(project).resolve()
        design_json = jsimba.get_design(jsimba.load_project(project), design, project)
        transient = dict(overrides.transient)
        if end_time_s is not None:
            transient["EndTime"] = end_time_s
        request_overrides = Overrides(parameters=overrides.parameters, transient=transient)
        changed = jsimba.apply_overrides(design_json, request_overrides)
        names = jsimba.resolve_signals(changed, signals)
        request = {
            "project": str(project),
            "design": design,
            "parameters": {
                device: {key: jsimba.format_value(value) for key, value in params.items()}
                for device, params in overrides.parameters.items()
            },
            "transient": {key: changed["TransientAnalysis"][key] for key in transient},
            "signals": names,
        }
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="simbaflow-simba-") as tmp:
            request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.npz"
            request_path.write_text(json.dumps(request))
            env = dict(os.environ)
            if licence_source(env) == "compute":
                # One job per process: each process leases one of the licence's slots.
                env[COMPUTE_SLOTS] = "1"
            job = subprocess.run(
                [sys.executable, "-m", "simbaflow.simulate.engines.simba", str(request_path), str(result_path)],
                capture_output=True,
                text=True,
                env=env,
            )
            wall_time_s = time.perf_counter() - started
            if job.returncode == _EXIT_LICENCE:
                raise LicenseError(f"SIMBA refused the licence: {_last_line(job.stderr)}")
            if job.returncode != 0 or not result_path.exists():
                return self._failed(f"SIMBA job process failed: {_last_line(job.stderr)}", wall_time_s)
            with np.load(result_path, allow_pickle=False) as data:
                info = json.loads(str(data["info"]))
                if info["status"] != "ok":
                    return self._failed(info["message"], wall_time_s, info.get("summary", {}))
                time_s = data["time_s"]
                values = {name: data[f"signal_{i}"] for i, name in enumerate(names)}
        return RunResult(
            time_s=time_s,
            signals=values,
            status="ok",
            engine=NAME,
            engine_version=engine_version(),
            wall_time_s=wall_time_s,
            summary=info.get("summary", {}),
        )

    def _failed(self, message: str, wall_time_s: float, summary: dict | None = None) -> RunResult:
        return RunResult(
            time_s=np.zeros(0),
            signals={},
            status="failed",
            engine=NAME,
            engine_version=engine_version(),
            wall_time_s=wall_time_s,
            message=message,
            summary=summary or {},
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _find_device(circuit, name: str):
    # Connector labels may share a device's name; overrides address the device.
    for device in circuit.Devices:
        if str(device.Name) == name and device.LibraryItemName not in jsimba.CONNECTOR_LABELS:
            return device
    raise SpecError(f"SIMBA found no device named '{name}' in the design")


def _job(request: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Inside the job process: open, override, run, read signals (needs the licence)."""
    from aesim.simba import ProjectRepository

    project = ProjectRepository(request["project"])
    design = project.GetDesignByName(request["design"])
    if design is None:
        raise SpecError(f"{request['project']}: SIMBA found no design named '{request['design']}'")
    for device_name, parameters in request["parameters"].items():
        device = _find_device(design.Circuit, device_name)
        for parameter, value in parameters.items():
            setattr(device, parameter, value)
    solver = design.TransientAnalysis
    for key in TRANSIENT_KEYS:
        if key in request["transient"]:
            setattr(solver, key, request["transient"][key])
    job = solver.NewJob()
    status = job.Run()
    summary = {"status": str(status), "summary": str(job.Summary()), "run_time_s": float(job.RunTime)}
    if str(status) != "OK":
        return {"status": "failed", "message": f"SIMBA job ended with status {status}", "summary": summary}, {}
    time_s = np.asarray(list(job.TimePoints), dtype=float)
    arrays = {"time_s": time_s}
    for index, name in enumerate(request["signals"]):
        device, _, scope = name.partition(" - ")
        signal = job.GetSignalByName(name) or job.GetSignalByName(f"{device} - {jsimba.LEGACY_SCOPE_PREFIX}{scope}")
        if signal is None:
            return {"status": "failed", "message": f"SIMBA returned no signal '{name}'", "summary": summary}, {}
        arrays[f"signal_{index}"] = resample_signal(
            time_s,
            np.asarray(list(signal.TimePoints), dtype=float),
            np.asarray(list(signal.DataPoints), dtype=float),
            sampled=bool(signal.SamplingTime),
        )
    return {"status": "ok", "message": "", "summary": summary}, arrays


def _main(argv: list[str]) -> int:
    request_path, result_path = argv[1], argv[2]
    request = json.loads(Path(request_path).read_text())
    try:
        info, arrays = _job(request)
    except SimbaflowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:  # .NET exceptions arrive as plain Exceptions
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(text, file=sys.stderr)
        return _EXIT_LICENCE if "Invalid License" in str(exc) else 1
    np.savez(result_path, info=np.array(json.dumps(info)), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))

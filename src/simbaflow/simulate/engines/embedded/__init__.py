"""The embedded engine: license-free simulation of ``.jsimba`` designs.

It reads the same project files as SIMBA, builds the netlist from the wire
geometry (:mod:`simbaflow.simulate.netlist`), models the circuit as a switched linear
system and its control as blocks (:mod:`.blocks`), and integrates exactly
between located events (:mod:`.solver`). Signal names are SIMBA's
``"<device> - <scope>"``.

For sweeps, :func:`compile_design` parses a design once; ``CompiledDesign.run``
re-runs it with new parameter values.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from simbaflow import __version__

from simbaflow.simulate import jsimba
from simbaflow.simulate.engines.base import Overrides, RunResult
from simbaflow.core.errors import SimbaflowError, SpecError
from simbaflow.simulate.simba_values import parse_value

from .model import SUPPORTED, Model, compile_model, configure
from .solver import recorder, simulate

NAME = "embedded"
#: Parameter sets whose discrete-state evaluations a compiled design keeps (a sweep never repeats
#: one, so only the last: an identical re-run reuses them, memory stays bounded).
_EVALUATION_SETS = 1

__all__ = ["CompiledDesign", "EmbeddedEngine", "SUPPORTED", "compile_design"]


class CompiledDesign:
    """A design parsed once, runnable many times with new parameter values.

    Parameters
    ----------
    design : dict
        A design of a loaded project (see :func:`simbaflow.simulate.jsimba.get_design`).
    """

    def __init__(self, design: dict):
        self.name = design["Name"]
        self.model: Model = compile_model(design)
        transient = self.model.transient
        self.end_time_s = parse_value(transient.get("EndTime", "0.02"), device="TransientAnalysis", parameter="EndTime")
        self.scoped_signals = jsimba.scoped_signals(design)
        self._evaluations: OrderedDict[tuple, dict] = OrderedDict()

    def run(
        self,
        parameter_values: dict[str, dict[str, Any]] | None = None,
        end_time_s: float | None = None,
        signals: list[str] | None = None,
        output_step_s: float | None = None,
        max_step_s: float | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
        """Simulate with ``parameter_values`` (``{device: {parameter: value}}``) applied.

        Parameters
        ----------
        parameter_values : dict, optional
            Numbers or SIMBA strings; unchanged parameters keep the file's values.
        end_time_s : float, optional
            Defaults to the design's ``EndTime``.
        signals : list of str, optional
            ``"<device> - <scope>"`` names; defaults to the design's enabled scopes.
        output_step_s : float, optional
            Uniform output step; default: every event instant (values before and
            after a discontinuity both appear, at the same time).
        max_step_s : float, optional
            Longest interval between events (default ``end_time_s / 500``).

        Returns
        -------
        time_s : numpy.ndarray
        values : dict
            ``{signal: numpy.ndarray}``.
        stats : dict
            Event counts.
        """
        parameters = {
            device: {key: jsimba.format_value(value) for key, value in values.items()}
            for device, values in (parameter_values or {}).items()
        }
        configure(self.model, parameters)
        names = list(signals) if signals else list(self.scoped_signals)
        recorders = [recorder(self.model, name) for name in names]
        end = self.end_time_s if end_time_s is None else float(end_time_s)
        # A discrete state's matrices depend only on the parameter values and the signals.
        key = (repr(sorted((device, sorted(values.items())) for device, values in parameters.items())), tuple(names))
        evaluations = self._evaluations.pop(key, None)
        if evaluations is None:
            evaluations = {}
        self._evaluations[key] = evaluations
        while len(self._evaluations) > _EVALUATION_SETS:
            self._evaluations.popitem(last=False)
        time_s, rows, stats = simulate(self.model, end, recorders, output_step_s, max_step_s, evaluations)
        for name, row in zip(names, rows):
            # An open pin or a singular circuit shows as NaN or inf: a failed run, never a result.
            bad = np.flatnonzero(~np.isfinite(row))
            if bad.size:
                raise SimbaflowError(f"design '{self.model.design_name}': signal '{name}' is not finite from "
                                     f"t = {time_s[bad[0]]:.6g} s (an unconnected pin, or a parameter out of range?)")
        return time_s, dict(zip(names, rows)), stats


def compile_design(design: dict) -> CompiledDesign:
    """Parse ``design`` once for repeated runs (see :class:`CompiledDesign`)."""
    return CompiledDesign(design)


_COMPILED: OrderedDict[tuple, CompiledDesign] = OrderedDict()
_COMPILED_MAX = 8


def _compiled(project: Path, design: str) -> tuple[CompiledDesign, dict]:
    stat = project.stat()
    key = (str(project), stat.st_mtime_ns, stat.st_size, design)
    design_json = jsimba.get_design(jsimba.load_project(project), design, project)
    if key not in _COMPILED:
        _COMPILED[key] = CompiledDesign(design_json)
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return _COMPILED[key], design_json


class EmbeddedEngine:
    """The license-free engine behind ``--engine embedded``."""

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
        SpecError
            For an unknown design, device, parameter, transient key or signal, and
            for devices or parameters the engine does not support.
        """
        started = time.perf_counter()
        project = Path(project).resolve()
        compiled, design_json = _compiled(project, design)
        transient = dict(overrides.transient)
        if end_time_s is not None:
            transient["EndTime"] = end_time_s
        changed = jsimba.apply_overrides(design_json, Overrides(parameters=overrides.parameters, transient=transient))
        names = jsimba.resolve_signals(changed, signals)
        settings = changed.get("TransientAnalysis") or {}
        end = parse_value(settings.get("EndTime", "0.02"), device="TransientAnalysis", parameter="EndTime")
        output_step_s = None
        if _is_true(settings.get("FixedTimeStep", False)):
            # A fixed-step SIMBA job reports every TimeStep; report on that grid.
            output_step_s = parse_value(settings.get("TimeStep", "1e-6"), device="TransientAnalysis", parameter="TimeStep")
            if end / output_step_s > 5e6:
                raise SpecError(
                    f"design '{design}': FixedTimeStep with TimeStep {output_step_s:g} s over {end:g} s would record "
                    f"{end / output_step_s:.0f} points; raise TimeStep or turn FixedTimeStep off"
                )
        try:
            time_s, values, stats = compiled.run(overrides.parameters, end, names, output_step_s)
        except SpecError:
            raise
        except SimbaflowError as exc:
            return RunResult(
                time_s=np.zeros(0), signals={}, status="failed", engine=NAME, engine_version=__version__,
                wall_time_s=time.perf_counter() - started, message=str(exc),
            )
        return RunResult(
            time_s=time_s,
            signals=values,
            status="ok",
            engine=NAME,
            engine_version=__version__,
            wall_time_s=time.perf_counter() - started,
            summary=stats,
        )


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")

"""The interface every simulation engine implements.

An engine opens a design of a ``.jsimba`` project, applies a candidate's
overrides, runs one transient job and returns a :class:`RunResult` whose signal
names are SIMBA's ``"<device name> - <scope name>"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: Transient-analysis settings an override may change, as SIMBA names them.
TRANSIENT_KEYS = ("EndTime", "TimeStep", "FixedTimeStep")


@dataclass
class Overrides:
    """A candidate expressed as changes to a design.

    Attributes
    ----------
    parameters : dict
        ``{device name: {parameter name: value}}``; values are numbers or SIMBA
        strings ("6m", "16k", "1 / 600").
    transient : dict
        Subset of :data:`TRANSIENT_KEYS` to change in the design's transient analysis.
    """

    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    transient: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """One transient job's outcome.

    Attributes
    ----------
    time_s : numpy.ndarray
        Common time vector of every signal, seconds.
    signals : dict
        ``{"<device> - <scope>": numpy.ndarray}``, each the length of ``time_s``.
    status : str
        ``"ok"`` or ``"failed"``.
    message : str
        Why a failed run failed (empty when ok).
    engine, engine_version : str
        Which engine produced it.
    wall_time_s : float
        Wall-clock duration of the job.
    summary : dict
        Engine-specific job summary (solver statistics, licence slot, ...).
    """

    time_s: np.ndarray
    signals: dict[str, np.ndarray]
    status: str
    engine: str
    engine_version: str
    wall_time_s: float
    message: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Engine(Protocol):
    """What the simulate stage and the CLI call."""

    name: str

    def run(
        self,
        project: Path,
        design: str,
        overrides: Overrides,
        signals: list[str],
        end_time_s: float | None = None,
    ) -> RunResult:
        """Run one transient job of ``design`` in ``project`` with ``overrides``."""
        ...

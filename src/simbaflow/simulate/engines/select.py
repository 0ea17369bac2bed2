"""Pick the simulation engine: SIMBA (licensed), the embedded one, or ``auto``."""

from __future__ import annotations

import importlib

from simbaflow.simulate.engines.base import Engine
from simbaflow.simulate.engines.simba import SimbaEngine, licence_source, require_licence
from simbaflow.core.errors import SimbaflowError

ENGINE_NAMES = ("simba", "embedded", "auto")


def _embedded() -> Engine:
    # Imported on demand: the embedded engine is a separate module that may be absent.
    try:
        module = importlib.import_module("simbaflow.simulate.engines.embedded")
    except ModuleNotFoundError as exc:
        if exc.name != "simbaflow.simulate.engines.embedded":
            raise
        module = None
    engine_class = getattr(module, "EmbeddedEngine", None)
    if engine_class is None:
        raise SimbaflowError(
            "the embedded engine (simbaflow.simulate.engines.embedded) is not installed; use --engine simba with a SIMBA licence"
        )
    return engine_class()


def select_engine(name: str) -> tuple[Engine, str]:
    """The engine called ``name`` and one sentence saying which engine runs and why.

    Parameters
    ----------
    name : {"simba", "embedded", "auto"}
        ``auto`` takes SIMBA when a licence is configured, otherwise the embedded engine.

    Raises
    ------
    LicenseError
        For ``simba`` without a licence (exit 3).
    SimbaflowError
        For an unknown name, or an embedded engine that is not installed.
    """
    if name == "simba":
        source = require_licence()
        return SimbaEngine(), f"engine: SIMBA ({source} licence)"
    if name == "embedded":
        return _embedded(), "engine: embedded (license-free)"
    if name == "auto":
        source = licence_source()
        if source is not None:
            return SimbaEngine(), f"engine auto: picked SIMBA ({source} licence configured)"
        return _embedded(), "engine auto: picked the embedded engine (no SIMBA licence configured)"
    raise SimbaflowError(f"unknown engine '{name}'; valid engines: {', '.join(ENGINE_NAMES)}")


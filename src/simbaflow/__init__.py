"""simbaflow: tune power-converter controllers by simulation and ship the gains into firmware.

The public Python API (every other import path is internal and may change):

- :func:`compile_design` — compile a ``.jsimba`` design for the embedded engine, then ``.run(overrides)``;
- :func:`load_project`, :func:`get_design` — read a ``.jsimba`` project and one of its designs;
- :func:`read_run_parquet` — a run file's signals and metadata.
"""

from importlib import import_module

__version__ = "0.1.0"

#: Public name -> the module defining it (imported on first use, so ``import simbaflow`` stays light).
_PUBLIC = {
    "compile_design": "simbaflow.simulate.engines.embedded",
    "load_project": "simbaflow.simulate.jsimba",
    "get_design": "simbaflow.simulate.jsimba",
    "read_run_parquet": "simbaflow.simulate.runio",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'simbaflow' has no attribute {name!r}")

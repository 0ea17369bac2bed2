"""One run's signals as a Parquet file.

Columns are ``time_s`` and one float column per signal, named as SIMBA names
results (``"L1 - Current"``). The run's metadata (status, engine, version,
overrides, wall time, design, project, ...) is stored in the file's key-value
metadata, one key per field, each value JSON-encoded.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simbaflow.core.atomic import atomic_path
from simbaflow.simulate.engines.base import RunResult
from simbaflow.core.errors import SimbaflowError

TIME_COLUMN = "time_s"
# Key-value entries pyarrow and pandas write themselves; they are not run metadata.
_RESERVED_KEYS = (b"ARROW:schema", b"pandas")


@dataclass(frozen=True)
class RunRecord:
    """What ``runs/<run_id>/<design>.json`` says of one run (the Parquet file's metadata holds the same)."""

    run_id: str
    design: str
    status: str
    message: str
    engine: str
    engine_version: str
    wall_time_s: float
    project: str
    project_sha256: str
    overrides: dict[str, dict[str, Any]]
    candidates: list[str]
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "RunRecord | None":
        """The record at ``path``, or None when it is missing or not a whole record."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data or f.default is MISSING})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=_json_default)


def _json_default(value: Any):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def readable_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a whole run file (its footer, schema and ``time_s`` column read back)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid):
        return False
    return TIME_COLUMN in schema.names


def result_metadata(result: RunResult) -> dict[str, Any]:
    """The fields of ``result`` every run file records."""
    return {
        "status": result.status,
        "message": result.message,
        "engine": result.engine,
        "engine_version": result.engine_version,
        "wall_time_s": result.wall_time_s,
        "summary": result.summary,
    }


def write_run_parquet(path: str | os.PathLike, result: RunResult, metadata: dict[str, Any]) -> None:
    """Write ``result`` to ``path`` atomically.

    Parameters
    ----------
    path : path-like
        Output ``.parquet`` file.
    result : RunResult
        Time vector and signals; every signal has the length of ``time_s``.
    metadata : dict
        Extra run fields (design, project, overrides, ...), JSON-serialisable;
        merged over :func:`result_metadata`.

    Raises
    ------
    SimbaflowError
        When a signal's length differs from the time vector's, or a signal is named ``time_s``.
    """
    time_s = np.asarray(result.time_s, dtype=float)
    columns = {TIME_COLUMN: time_s}
    for name, values in result.signals.items():
        values = np.asarray(values, dtype=float)
        if name == TIME_COLUMN:
            raise SimbaflowError(f"{path}: a signal may not be named '{TIME_COLUMN}'")
        if values.shape != time_s.shape:
            raise SimbaflowError(
                f"{path}: signal '{name}' has {values.size} points but the time vector has {time_s.size}"
            )
        columns[name] = values
    fields = {**result_metadata(result), **metadata}
    try:
        encoded = {key.encode(): json.dumps(value, sort_keys=True).encode() for key, value in fields.items()}
    except TypeError as exc:
        raise SimbaflowError(f"{path}: run metadata is not JSON-serialisable ({exc})") from None
    table = pa.table(columns).replace_schema_metadata(encoded)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_run_parquet(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a run file written by :func:`write_run_parquet`.

    Returns
    -------
    frame : pandas.DataFrame
        ``time_s`` and one column per signal.
    metadata : dict
        The run metadata, decoded.

    Raises
    ------
    SimbaflowError
        When the file is missing or not a run file.
    """
    path = Path(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise SimbaflowError(f"{path}: no such run file") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise SimbaflowError(f"{path}: not a Parquet run file ({exc})") from None
    if TIME_COLUMN not in table.column_names:
        raise SimbaflowError(f"{path}: column '{TIME_COLUMN}' is missing; not a simbaflow run file")
    raw = table.schema.metadata or {}
    try:
        metadata = {key.decode(): json.loads(value) for key, value in raw.items() if key not in _RESERVED_KEYS}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SimbaflowError(f"{path}: run metadata is not JSON; not a simbaflow run file") from None
    return table.to_pandas(), metadata

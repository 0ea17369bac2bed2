"""Study tables on disk: candidate rows as JSON and CSV, with NaN and infinities kept."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Text columns of ``candidates.csv`` (read as strings, never as numbers).
TEXT_COLUMNS = ("poles", "ct_poles", "ct_zeros", "reason", "a0_hex", "a1_hex")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as plain JSON values (NaN as null, ±inf as text)."""
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else (str(v) if math.isinf(v) else v)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """Undo :func:`jsonable` for scalars: None -> NaN, 'inf' -> inf."""
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return value


def row_from_json(data: dict) -> dict:
    """A candidate row read back from JSON (``responses`` kept as they are)."""
    return {k: (from_json(v) if k != "responses" else v) for k, v in data.items()}


def read_candidates(csv_path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``candidates.csv`` as dicts with NaN for empty cells."""
    df = pd.read_csv(csv_path, dtype=dict.fromkeys(TEXT_COLUMNS, str), keep_default_na=True)
    return df.to_dict(orient="records")

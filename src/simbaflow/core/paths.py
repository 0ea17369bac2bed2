"""Where a study's files live."""

from __future__ import annotations

from pathlib import Path

RESULTS_ROOT = Path("results")


def results_dir(study: str | dict, root: str | Path = RESULTS_ROOT) -> Path:
    """``results/<study>`` for a study name or a loaded spec."""
    name = study["study"] if isinstance(study, dict) else study
    return Path(root) / name

"""Where a result came from: spec hash, simbaflow version, git commit, time."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

from simbaflow import __version__


def git_commit(path: str | Path = ".") -> str:
    """HEAD of the repository holding ``path``, or ``unknown``."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(spec: dict) -> dict[str, str]:
    """Provenance of a result derived from ``spec`` (loaded by :func:`simbaflow.core.spec.load_spec`)."""
    return {
        "simbaflow_version": __version__,
        "git_commit": git_commit(Path(spec["_path"]).resolve().parent),
        "spec_sha256": spec["_sha256"],
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

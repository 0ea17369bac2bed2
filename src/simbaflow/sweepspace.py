"""The sweep's parameter space: candidates and their ids, without numerical imports.

Kept light on purpose: the workflow imports it when it parses the Snakefile,
which every job does again.
"""

from __future__ import annotations

import itertools
from typing import Any


def number_token(x: float) -> str:
    """Path- and id-safe text of a number that round-trips (``0.7`` -> ``0p7``, ``-1e-05`` -> ``m1em05``)."""
    s = repr(float(x))
    if s.endswith(".0"):
        s = s[:-2]
    return s.replace("-", "m").replace("+", "").replace(".", "p")


def expand_sweep(spec: dict) -> list[dict[str, Any]]:
    """Every combination of the sweep's axes, each with a unique ``candidate_id``."""
    sweep = spec["sweep"]
    if "xi" in sweep:
        gains = [("xi", xi, "wn_rad_s", wn) for xi in sweep["xi"] for wn in sweep["wn_rad_s"]]
    else:
        gains = [("kp", kp, "ki", ki) for kp in sweep["kp"] for ki in sweep["ki"]]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for (k1, v1, k2, v2), fs, method, delay, real in itertools.product(
        gains, sweep["fs_hz"], sweep["method"], sweep["delay_samples"], sweep["realisation"]
    ):
        # OwnTech's Pid fixes the discretisation (backward Euler): sweeping methods
        # for it would only repeat the same candidate.
        if real == "control_library_pid" and method != sweep["method"][0]:
            continue
        cid = f"{k1}{number_token(v1)}-{k2.split('_')[0]}{number_token(v2)}-fs{number_token(fs)}-{method}-d{delay}"
        if real != "pi_recurrence":
            cid += "-clpid"
        if cid in seen:
            continue
        seen.add(cid)
        out.append({"candidate_id": cid, k1: float(v1), k2: float(v2), "fs_hz": float(fs),
                    "method": method, "delay_samples": int(delay), "realisation": real})
    return out


def study_kind(spec: dict) -> str:
    """``ac`` for an AC client/server study (an ``ac`` section), else ``dc`` (a ``sweep`` section)."""
    return "ac" if "ac" in spec else "dc"


def expand_candidates(spec: dict) -> list[dict[str, Any]]:
    """The candidates of either kind of study, in sweep order."""
    if study_kind(spec) == "ac":
        from simbaflow.ac_design import expand_ac_sweep  # numerical imports only for AC studies

        return expand_ac_sweep(spec)
    return expand_sweep(spec)


def candidate_ids(spec: dict) -> list[str]:
    """Every candidate id of the study's sweep, in sweep order."""
    return [c["candidate_id"] for c in expand_candidates(spec)]


def batches(ids: list[str], batch_size: int) -> dict[str, list[str]]:
    """Split candidate ids into named batches of at most ``batch_size`` (``b000``, ``b001``, ...)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return {f"b{i // batch_size:03d}": ids[i : i + batch_size] for i in range(0, len(ids), batch_size)}

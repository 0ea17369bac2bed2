"""The sweeps' parameter spaces: candidates and their ids, without numerical imports.

Kept light on purpose: the workflow imports it when it parses the Snakefile,
which every job does again.
"""

from __future__ import annotations

import itertools
from typing import Any

from simbaflow.core.ids import number_token


def sweep_size(section: dict) -> int:
    """Combinations of a sweep section's axes (every list in it, nested ones too), before de-duplication."""
    size = 1
    for value in section.values():
        if isinstance(value, list):
            size *= len(value)
        elif isinstance(value, dict):
            size *= sweep_size(value)
    return size


def expand_pi_sweep(spec: dict) -> list[dict[str, Any]]:
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


def expand_pr_sweep(spec: dict) -> list[dict[str, Any]]:
    """Every combination of the ``ac.sweep`` axes, each with a unique ``candidate_id``.

    ``tustin_prewarp`` has no φ′: its combinations with φ′ ≠ 0 are skipped.
    """
    sw = spec["ac"]["sweep"]
    out, seen = [], set()
    for disc, skp, skr, sphi, ckp, ckr, cphi, kg in itertools.product(
        sw["discretisation"], sw["server"]["kp"], sw["server"]["kr"], sw["server"]["phi_prime_rad"],
        sw["client"]["kp"], sw["client"]["kr"], sw["client"]["phi_prime_rad"], sw["k_gain"],
    ):
        if disc == "tustin_prewarp" and (sphi != 0 or cphi != 0):
            continue
        cid = (f"v{number_token(skp)}-{number_token(skr)}-{number_token(sphi)}"
               f"_i{number_token(ckp)}-{number_token(ckr)}-{number_token(cphi)}"
               f"_k{number_token(kg)}_{'clpr' if disc == 'control_library_pr' else 'tustin'}")
        if cid in seen:
            continue
        seen.add(cid)
        out.append({"candidate_id": cid, "discretisation": disc, "server_kp": float(skp), "server_kr": float(skr),
                    "server_phi_prime_rad": float(sphi), "client_kp": float(ckp), "client_kr": float(ckr),
                    "client_phi_prime_rad": float(cphi), "k_gain": float(kg)})
    return out

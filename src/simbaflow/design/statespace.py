"""State-space plants discretised for a sampled (FPGA or MCU) model, as in seed 003."""

from __future__ import annotations

import numpy as np
from scipy.signal import cont2discrete

from simbaflow.core import fixedpoint

STATESPACE_METHODS = ("euler", "zoh", "tustin")


def lcl_matrices(params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """A and B of the LCL filter with an R–L–C damping branch (seed 003).

    States ``[iL1, iLd, iL2, vCf, vCd]``, inputs ``[V1, V2]``.

    Parameters
    ----------
    params : dict
        ``r1_ohm, l1_h`` (inverter side), ``cf_f`` (filter capacitor),
        ``ld_h, cd_f, rd_ohm`` (damping branch), ``l2_h, r2_ohm`` (grid side).
    """
    r1, l1, cf = params["r1_ohm"], params["l1_h"], params["cf_f"]
    ld, cd, rd = params["ld_h"], params["cd_f"], params["rd_ohm"]
    l2, r2 = params["l2_h"], params["r2_ohm"]
    a = np.array([
        [-r1 / l1, 0, 0, -1 / l1, 0],
        [0, 0, 0, 1 / ld, -1 / ld],
        [0, 0, -r2 / l2, 1 / l2, 0],
        [1 / cf, -1 / cf, -1 / cf, -1 / (cf * rd), 1 / (cf * rd)],
        [0, 1 / cd, 0, 1 / (cd * rd), -1 / (cd * rd)],
    ])
    b = np.array([[1 / l1, 0], [0, 0], [0, -1 / l2], [0, 0], [0, 0]])
    return a, b


#: State-space models a spec can name in ``statespace.model``: name -> ``(A, B)`` from its parameters.
STATESPACE_MODELS = {"lcl_damped": lcl_matrices}


def discretise_statespace(a: np.ndarray, b: np.ndarray, ts_s: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """``(Ad, Bd)`` of ``x' = A x + B u`` sampled at ``ts_s`` (euler = forward Euler)."""
    if method not in STATESPACE_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {STATESPACE_METHODS}")
    n, m = b.shape
    ad, bd, *_ = cont2discrete((a, b, np.eye(n), np.zeros((n, m))), ts_s, method=method)
    return ad, bd


def statespace_study(spec: dict) -> dict:
    """Discretise and quantise a spec's state-space plant.

    Returns
    -------
    dict
        ``a``, ``b``, ``ad``, ``bd`` (floats), ``ad_fixed``, ``bd_fixed`` (integers),
        ``ad_hex``, ``bd_hex`` (two's-complement words), ``q_format``, ``ts_s``, ``method``.
    """
    ss = spec["statespace"]
    a, b = STATESPACE_MODELS[ss["model"]](ss["params"])
    ad, bd = discretise_statespace(a, b, ss["ts_s"], ss["method"])
    fmt = fixedpoint.QFormat(spec["fixed_point"]["word_bits"], spec["fixed_point"]["frac_bits"])
    ad_q = fixedpoint.matrix_to_fixed(ad, fmt, "ad")
    bd_q = fixedpoint.matrix_to_fixed(bd, fmt, "bd")
    return {
        "study": spec["study"], "method": ss["method"], "ts_s": ss["ts_s"], "q_format": fmt.name,
        "word_bits": fmt.word_bits, "frac_bits": fmt.frac_bits,
        "a": a.tolist(), "b": b.tolist(), "ad": ad.tolist(), "bd": bd.tolist(),
        "ad_fixed": ad_q.tolist(), "bd_fixed": bd_q.tolist(),
        "ad_hex": fixedpoint.matrix_to_hex(ad_q, fmt.word_bits),
        "bd_hex": fixedpoint.matrix_to_hex(bd_q, fmt.word_bits),
    }


"""Python model of the firmware PR (``firmware/lib/pr_controller``), bit for bit in float32.

The C module runs control_library's ``Pr`` difference equations::

    r(k) = b0·ε(k) + b1·ε(k−1) − a1·r(k−1) − r(k−2)
    u(k) = clamp(Kp·ε(k) + Kr·r(k), out_min, out_max)

and, when ``u`` saturates, recomputes ``r(k) = (u_sat − Kp·ε(k))·(1/Kr)``.
Every operation below is one IEEE single-precision operation in the C's
order, so the outputs match a C build without fused multiply-adds
(``-ffp-contract=off``) exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

F32 = np.float32


@dataclass(frozen=True)
class PrParams:
    """``pr_controller_params_t``: gains, resonator coefficients and output bounds (float32 values)."""

    kp: float
    kr: float
    b0: float
    b1: float
    a1: float
    out_min: float
    out_max: float


def _cosf(x: np.float32) -> np.float32:
    # The correctly rounded single-precision cosine; libm cosf implementations
    # may differ from it by one unit in the last place for some arguments.
    return F32(math.cos(float(x)))


def pr_coefficients_f32(ts_s: float, w0_rad_s: float, phi_prime_rad: float) -> tuple[float, float, float]:
    """``(b0, b1, a1)`` as ``pr_controller_coefficients`` computes them in single precision."""
    ts, w0, phi = F32(ts_s), F32(w0_rad_s), F32(phi_prime_rad)
    w0_ts = F32(w0 * ts)
    b0 = F32(ts * _cosf(phi))
    b1 = F32(F32(-ts) * _cosf(F32(phi - w0_ts)))
    a1 = F32(F32(-2.0) * _cosf(w0_ts))
    return float(b0), float(b1), float(a1)


def pr_params(kp: float, kr: float, ts_s: float, w0_rad_s: float, phi_prime_rad: float,
              out_min: float, out_max: float) -> PrParams:
    """Parameters as the firmware holds them: every value rounded to float32.

    Raises
    ------
    ValueError
        For ``kr == 0`` or ``out_min > out_max`` (the C init refuses them too).
    """
    if F32(kr) == 0 or out_min > out_max:
        raise ValueError("the PR needs Kr != 0 and out_min <= out_max")
    b0, b1, a1 = pr_coefficients_f32(ts_s, w0_rad_s, phi_prime_rad)
    return PrParams(float(F32(kp)), float(F32(kr)), b0, b1, a1, float(F32(out_min)), float(F32(out_max)))


def pr_float32_response(params: PrParams, errors) -> np.ndarray:
    """Outputs ``u(k)`` of ``pr_controller_calculate`` for an error sequence, from a cleared state."""
    kp, kr, b0, b1, a1 = (F32(v) for v in (params.kp, params.kr, params.b0, params.b1, params.a1))
    lo, hi = F32(params.out_min), F32(params.out_max)
    inverse_kr = F32(F32(1.0) / kr)
    e_prev = r1 = r2 = F32(0.0)
    errs = np.asarray(errors, dtype=np.float32)
    out = np.empty(errs.shape, dtype=np.float32)
    with np.errstate(over="ignore"):
        for k, e in enumerate(errs):
            feed = F32(F32(b0 * e) + F32(b1 * e_prev))
            back = F32(F32(a1 * r1) + r2)
            r = F32(feed - back)
            unclamped = F32(F32(kp * e) + F32(kr * r))
            u = lo if unclamped < lo else (hi if unclamped > hi else unclamped)
            if u != unclamped:
                r = F32(inverse_kr * F32(u - F32(kp * e)))
            r2, r1, e_prev = r1, r, e
            out[k] = u
    return out

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


class PrController:
    """``pr_controller_t``: control_library's ``Pr`` in float32, one method per C function."""

    def __init__(self, params: PrParams):
        if F32(params.kr) == 0 or params.out_min > params.out_max:
            raise ValueError("the PR needs Kr != 0 and out_min <= out_max")
        self.kp, self.kr, self.b0, self.b1, self.a1 = (
            F32(v) for v in (params.kp, params.kr, params.b0, params.b1, params.a1))
        self.out_min, self.out_max = F32(params.out_min), F32(params.out_max)
        self.inverse_kr = F32(F32(1.0) / self.kr)
        self.reset()

    def reset(self) -> None:
        """``pr_controller_reset``: e, both resonator states and the output back to 0."""
        self.error_prev = self.resonant_1 = self.resonant_2 = self.output = F32(0.0)

    def calculate(self, error: float) -> np.float32:
        """``pr_controller_calculate``: u(k), clamped; the resonator is back-computed when it clamps."""
        e = F32(error)
        with np.errstate(over="ignore"):
            feed = F32(F32(self.b0 * e) + F32(self.b1 * self.error_prev))
            back = F32(F32(self.a1 * self.resonant_1) + self.resonant_2)
            r = F32(feed - back)
            unclamped = F32(F32(self.kp * e) + F32(self.kr * r))
            u = self.out_min if unclamped < self.out_min else (self.out_max if unclamped > self.out_max else unclamped)
            if u != unclamped:
                r = F32(self.inverse_kr * F32(u - F32(self.kp * e)))
        self.resonant_2, self.resonant_1, self.error_prev, self.output = self.resonant_1, r, e, u
        return u


def pr_float32_response(params: PrParams, errors) -> np.ndarray:
    """Outputs ``u(k)`` of ``pr_controller_calculate`` for an error sequence, from a cleared state."""
    pr = PrController(params)
    errs = np.asarray(errors, dtype=np.float32)
    out = np.empty(errs.shape, dtype=np.float32)
    for k, e in enumerate(errs):
        out[k] = pr.calculate(e)
    return out

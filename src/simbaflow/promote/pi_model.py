"""Python model of the firmware PI (``firmware/lib/pi_controller``), bit for bit.

The C module runs the seed's recurrence (seed 002)::

    α(k) = clamp(α(k−1) + a1·ε(k) + a0·ε(k−1), out_min, out_max)

storing the clamped α as the next α(k−1) (anti-windup by clamping the state).
:func:`pi_float32_response` repeats the float variant's single-precision
operations in the same order; :func:`pi_fixed_response` repeats the
fixed-point variant's integer arithmetic exactly. ``firmware_check`` compares
the compiled C against both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simbaflow.core.fixedpoint import QFormat, to_fixed

#: Largest magnitude of an int32 error the C accepts; it clamps INT32_MIN up to it.
INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class PiFixedParams:
    """Integer parameters of the fixed-point variant (``pi_controller_fixed_params_t``).

    Attributes
    ----------
    a0, a1 : int
        Recurrence coefficients in ``fmt``.
    out_min, out_max : int
        Output bounds in ``fmt``.
    frac_bits : int
        Fractional bits of the Q format.
    """

    a0: int
    a1: int
    out_min: int
    out_max: int
    frac_bits: int


def pi_fixed_params(a0: float, a1: float, out_min: float, out_max: float, fmt: QFormat) -> PiFixedParams:
    """Quantise the controller's parameters to ``fmt`` (round to nearest, ties away from zero).

    Raises
    ------
    simbaflow.core.fixedpoint.FixedPointOverflow
        When a value does not fit ``fmt``; never a silent wrap.
    """
    if fmt.word_bits != 32:
        raise ValueError(f"the C fixed-point PI uses 32-bit words, not {fmt.word_bits}")
    return PiFixedParams(
        a0=to_fixed(a0, fmt, "a0"),
        a1=to_fixed(a1, fmt, "a1"),
        out_min=to_fixed(out_min, fmt, "output_min"),
        out_max=to_fixed(out_max, fmt, "output_max"),
        frac_bits=fmt.frac_bits,
    )


def round_shift(x: int, frac_bits: int) -> int:
    """``x / 2**frac_bits`` rounded to nearest, ties away from zero (the C ``round_shift``)."""
    half = 1 << (frac_bits - 1) if frac_bits > 0 else 0
    if x >= 0:
        return (x + half) >> frac_bits
    return -((-x + half) >> frac_bits)


class PiFixedController:
    """``pi_controller_fixed_t``: the fixed-point PI, one method per C function.

    Parameters
    ----------
    params : PiFixedParams
        What ``pi_controller_fixed_init`` copies; the state is then reset.
    """

    def __init__(self, params: PiFixedParams):
        self.params = params
        self.reset()

    def reset(self) -> None:
        """``pi_controller_fixed_reset``: α(-1) = 0 clamped to the bounds, e(-1) = 0."""
        self.alpha_prev = min(max(0, self.params.out_min), self.params.out_max)
        self.error_prev = 0

    def set_bounds(self, out_min: int, out_max: int) -> None:
        """``pi_controller_fixed_set_bounds``."""
        self.params = replace(self.params, out_min=int(out_min), out_max=int(out_max))

    def calculate(self, error: int) -> int:
        """``pi_controller_fixed_calculate``: α(k) from the error in the Q format."""
        p = self.params
        e = max(int(error), -INT32_MAX)
        increment = p.a1 * e + p.a0 * self.error_prev
        self.alpha_prev = min(max(self.alpha_prev + round_shift(increment, p.frac_bits), p.out_min), p.out_max)
        self.error_prev = e
        return self.alpha_prev


def pi_fixed_response(errors_q: np.ndarray, params: PiFixedParams,
                      out_min_q: np.ndarray | None = None, out_max_q: np.ndarray | None = None) -> np.ndarray:
    """Outputs of ``pi_controller_fixed_calculate`` for a sequence of int32 errors, from reset.

    Parameters
    ----------
    errors_q : array of int
        Errors already in the Q format of ``params``.
    params : PiFixedParams
    out_min_q, out_max_q : array of int, optional
        Per-sample bounds (``pi_controller_fixed_set_bounds`` before each
        sample); ``params``' bounds otherwise. Reset always clamps with ``params``.

    Returns
    -------
    numpy.ndarray of int64
        α(k) in the same Q format, one per error.
    """
    errors = [int(e) for e in np.asarray(errors_q).ravel()]
    if any(e < -INT32_MAX - 1 or e > INT32_MAX for e in errors):
        raise ValueError("errors_q must hold int32 values")
    n = len(errors)
    lows = [params.out_min] * n if out_min_q is None else [int(v) for v in np.asarray(out_min_q).ravel()]
    highs = [params.out_max] * n if out_max_q is None else [int(v) for v in np.asarray(out_max_q).ravel()]
    pi = PiFixedController(params)
    out = np.empty(n, dtype=np.int64)
    for k, e in enumerate(errors):
        pi.set_bounds(lows[k], highs[k])
        out[k] = pi.calculate(e)
    return out


class PiController:
    """``pi_controller_t``: the float PI, every value and operation in float32.

    ``(α + a1·ε) + a0·ε_prev`` left to right, with no fused multiply-add (the
    firmware builds with ``-ffp-contract=off``).
    """

    def __init__(self, a0: float, a1: float, out_min: float, out_max: float):
        self.a0, self.a1 = np.float32(a0), np.float32(a1)
        self.out_min, self.out_max = np.float32(out_min), np.float32(out_max)
        self.reset()

    def reset(self) -> None:
        """``pi_controller_reset``: α(-1) = 0 clamped to the bounds, e(-1) = 0."""
        self.alpha_prev = min(max(np.float32(0.0), self.out_min), self.out_max)
        self.error_prev = np.float32(0.0)

    def set_bounds(self, out_min: float, out_max: float) -> None:
        """``pi_controller_set_bounds``."""
        self.out_min, self.out_max = np.float32(out_min), np.float32(out_max)

    def calculate(self, error: float) -> np.float32:
        """``pi_controller_calculate``: the new, clamped α."""
        e = np.float32(error)
        value = self.alpha_prev + self.a1 * e
        value = value + self.a0 * self.error_prev
        self.alpha_prev = self.out_min if value < self.out_min else (self.out_max if value > self.out_max else value)
        self.error_prev = e
        return self.alpha_prev


def pi_float32_response(errors: np.ndarray, a0: float, a1: float, out_min: float, out_max: float,
                        out_min_k: np.ndarray | None = None, out_max_k: np.ndarray | None = None) -> np.ndarray:
    """Outputs of ``pi_controller_calculate`` for a sequence of errors, from reset.

    Every value is rounded to float32 first, as the C ``float`` parameters hold it.

    Parameters
    ----------
    errors : array of float
    a0, a1 : float
    out_min, out_max : float
        Bounds given to ``pi_controller_init`` (reset clamps α = 0 with them).
    out_min_k, out_max_k : array of float, optional
        Per-sample bounds (``pi_controller_set_bounds`` before each sample).

    Returns
    -------
    numpy.ndarray of float32
    """
    pi = PiController(a0, a1, out_min, out_max)
    errors_f = np.asarray(errors, dtype=np.float32).ravel()
    lows = np.broadcast_to(np.asarray(pi.out_min if out_min_k is None else out_min_k, dtype=np.float32), errors_f.shape)
    highs = np.broadcast_to(np.asarray(pi.out_max if out_max_k is None else out_max_k, dtype=np.float32), errors_f.shape)
    out = np.empty(errors_f.size, dtype=np.float32)
    for k, e in enumerate(errors_f):
        pi.set_bounds(lows[k], highs[k])
        out[k] = pi.calculate(e)
    return out


def ulp_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Number of float32 values between ``x`` and ``y``, element-wise (0 when equal)."""
    def ordered(v: np.ndarray) -> np.ndarray:
        # Map the float32 bit patterns onto integers that increase with the value.
        bits = np.asarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return np.abs(ordered(x) - ordered(y))

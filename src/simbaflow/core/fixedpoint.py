"""Signed Qm.n fixed point: round to nearest, saturation, overflow as an error.

A format is ``(word_bits, frac_bits)``: a two's-complement integer of
``word_bits`` bits holding ``value * 2**frac_bits``. Q16.16 is ``(32, 16)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simbaflow.core.errors import SimbaflowError


class FixedPointOverflow(SimbaflowError):
    """A value does not fit the requested Q format."""


@dataclass(frozen=True)
class QFormat:
    """A signed fixed-point format.

    Attributes
    ----------
    word_bits : int
        Total bits including the sign bit.
    frac_bits : int
        Fractional bits (the binary point position).
    """

    word_bits: int
    frac_bits: int

    def __post_init__(self) -> None:
        if not (2 <= self.word_bits <= 64):
            raise SimbaflowError(f"fixed point word_bits must be 2..64, got {self.word_bits}")
        if not (0 <= self.frac_bits < self.word_bits):
            raise SimbaflowError(
                f"fixed point frac_bits must be 0..word_bits-1 ({self.word_bits - 1}), got {self.frac_bits}"
            )

    @property
    def int_min(self) -> int:
        return -(1 << (self.word_bits - 1))

    @property
    def int_max(self) -> int:
        return (1 << (self.word_bits - 1)) - 1

    @property
    def scale(self) -> int:
        return 1 << self.frac_bits

    @property
    def resolution(self) -> float:
        return 1.0 / self.scale

    @property
    def name(self) -> str:
        """Q notation with the sign bit counted in the integer part, e.g. ``Q16.16``."""
        return f"Q{self.word_bits - self.frac_bits}.{self.frac_bits}"


def round_half_away(x: float) -> int:
    """Round to nearest, ties away from zero (what C's ``lround`` does)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def to_fixed(value: float, fmt: QFormat, what: str = "value") -> int:
    """Quantise ``value`` to the integer of ``fmt`` (round to nearest).

    Raises
    ------
    FixedPointOverflow
        When the rounded value falls outside the format: never a silent wrap.
    """
    if not math.isfinite(value):
        raise FixedPointOverflow(f"{what} = {value} is not finite and has no {fmt.name} representation")
    q = round_half_away(value * fmt.scale)
    if q < fmt.int_min or q > fmt.int_max:
        lo, hi = fmt.int_min / fmt.scale, fmt.int_max / fmt.scale
        raise FixedPointOverflow(
            f"{what} = {value:.6g} overflows {fmt.name} (range {lo:.6g} .. {hi:.6g})"
        )
    return q


def to_float(q: int, fmt: QFormat) -> float:
    """The real value an integer of ``fmt`` stands for."""
    return q / fmt.scale


def quantise(value: float, fmt: QFormat, what: str = "value") -> float:
    """``value`` after a round trip through ``fmt``."""
    return to_float(to_fixed(value, fmt, what), fmt)


def to_hex(q: int, word_bits: int) -> str:
    """Two's-complement upper-case hex of ``q`` on ``word_bits`` bits (``-298`` -> ``FFFFFED6``)."""
    lo, hi = -(1 << (word_bits - 1)), (1 << (word_bits - 1)) - 1
    if q < lo or q > hi:
        raise FixedPointOverflow(f"integer {q} does not fit {word_bits} signed bits")
    digits = (word_bits + 3) // 4
    return format(q & ((1 << word_bits) - 1), "X").zfill(digits)


def from_hex(text: str, word_bits: int) -> int:
    """Inverse of :func:`to_hex`."""
    u = int(text, 16)
    if u >= 1 << (word_bits - 1):
        u -= 1 << word_bits
    return u


def matrix_to_fixed(m: np.ndarray, fmt: QFormat, what: str = "matrix") -> np.ndarray:
    """Quantise every element of ``m``; the error names the first element out of range."""
    m = np.atleast_2d(np.asarray(m, dtype=float))
    out = np.empty(m.shape, dtype=np.int64)
    for (i, j), v in np.ndenumerate(m):
        out[i, j] = to_fixed(float(v), fmt, f"{what}[{i},{j}]")
    return out


def matrix_to_hex(q: np.ndarray, word_bits: int) -> list[list[str]]:
    """Hex words of an integer matrix, row by row."""
    return [[to_hex(int(v), word_bits) for v in row] for row in np.atleast_2d(q)]

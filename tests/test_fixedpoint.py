"""Signed Q formats: rounding, overflow as an error, two's-complement hex (seed 003)."""

import numpy as np
import pytest

from simbaflow.core.fixedpoint import FixedPointOverflow, QFormat, from_hex, matrix_to_fixed, to_fixed, to_hex

Q16_16 = QFormat(32, 16)


def test_seed_003_conversions():
    assert to_hex(to_fixed(-1500 / 2, Q16_16), 32) == "FD120000"
    assert to_fixed(-0.00454545, Q16_16) == -298
    assert to_hex(-298, 32) == "FFFFFED6"
    assert to_hex(65449, 32) == "0000FFA9"
    assert from_hex("FFFFFED6", 32) == -298


def test_round_to_nearest_and_name():
    assert Q16_16.name == "Q16.16"
    assert to_fixed(0.1478125, Q16_16) == 9687  # 9687.04
    assert to_fixed(-0.1321875, Q16_16) == -8663
    assert to_fixed(1.5 / 65536, Q16_16) == 2  # ties away from zero
    assert to_fixed(-1.5 / 65536, Q16_16) == -2


def test_overflow_is_an_error_never_a_wrap():
    q8 = QFormat(8, 4)  # range −8 .. 7.9375
    assert to_fixed(7.9375, q8) == 127
    with pytest.raises(FixedPointOverflow, match="overflows Q4.4"):
        to_fixed(8.0, q8, "a1")
    with pytest.raises(FixedPointOverflow):
        to_fixed(-8.04, q8)
    assert to_fixed(-8.0, q8) == -128
    with pytest.raises(FixedPointOverflow, match=r"m\[1,0\]"):
        matrix_to_fixed(np.array([[0.0], [100.0]]), q8, "m")


def test_hex_round_trip_random():
    rng = np.random.default_rng(3)
    for q in rng.integers(-(2**31), 2**31 - 1, size=200):
        assert from_hex(to_hex(int(q), 32), 32) == q

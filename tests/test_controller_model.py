"""The Python model of the firmware PI, against numbers worked out by hand (seed 002)."""

from fractions import Fraction

import numpy as np
import pytest

from simbaflow.promote.pi_model import (
    PiFixedParams, pi_fixed_params, pi_fixed_response, pi_float32_response, round_shift, ulp_distance,
)
from simbaflow.core.fixedpoint import FixedPointOverflow, QFormat

Q16_16 = QFormat(32, 16)
# Seed 002: Kp = 0.14, Ki = 250, Ts = 1/16 kHz, Tustin.
A0, A1 = -0.14 + 250 / 16000 / 2, 0.14 + 250 / 16000 / 2


def test_seed_coefficients_quantise_to_the_seed_integers():
    p = pi_fixed_params(A0, A1, 0.0, 1.0, Q16_16)
    assert (p.a0, p.a1, p.out_min, p.out_max, p.frac_bits) == (-8663, 9687, 0, 65536, 16)


def test_float_model_saturates_then_follows_the_recurrence():
    # 14 A of error: 0.1478125 * 14 = 2.069 is clamped to 1 and stored clamped
    # (anti-windup); the next step starts from 1, not from 2.069.
    out = pi_float32_response([14.0, 10.0, 5.0], A0, A1, 0.0, 1.0)
    alpha1 = 1.0
    alpha2 = alpha1 + A1 * 10 + A0 * 14          # 0.6275
    alpha3 = alpha2 + A1 * 5 + A0 * 10           # 0.04468750
    assert out.dtype == np.float32
    assert out[0] == 1.0
    assert out[1] == pytest.approx(alpha2, abs=1e-6)
    assert out[2] == pytest.approx(alpha3, abs=1e-6)


def test_float_model_clamps_at_the_lower_bound_and_stores_it():
    out = pi_float32_response([-1.0, 0.0, 1.0], A0, A1, 0.0, 1.0)
    # α1 = −0.1478 → 0; α2 = 0 + 0 + a0·(−1) = 0.1321875; α3 = α2 + a1·1 + a0·0.
    assert out[0] == 0.0
    assert out[1] == pytest.approx(0.1321875, abs=1e-7)
    assert out[2] == pytest.approx(0.1321875 + 0.1478125, abs=1e-7)


def _exact_fixed(errors, a0, a1, lo, hi, frac):
    """Independent exact-rational version: round half away from zero, clamp."""
    alpha, e_prev, out = max(lo, min(0, hi)), 0, []
    for e in errors:
        inc = Fraction(a1 * e + a0 * e_prev, 1 << frac)
        mag = int(abs(inc) + Fraction(1, 2))
        alpha = min(max(alpha + (mag if inc >= 0 else -mag), lo), hi)
        e_prev = e
        out.append(alpha)
    return out


def test_fixed_model_matches_exact_rational_arithmetic():
    rng = np.random.default_rng(6)
    errors = rng.integers(-20 << 16, 20 << 16, size=400)
    p = pi_fixed_params(A0, A1, 0.0, 1.0, Q16_16)
    got = pi_fixed_response(errors, p)
    assert got.tolist() == _exact_fixed(errors.tolist(), -8663, 9687, 0, 65536, 16)


def test_fixed_model_seed_steps_by_hand():
    p = pi_fixed_params(A0, A1, 0.0, 1.0, Q16_16)
    out = pi_fixed_response([14 << 16, 10 << 16], p)
    # 9687·14 saturates at 65536; then 65536 + 9687·10 − 8663·14 = 41124.
    assert out.tolist() == [65536, 41124]


def test_round_shift_ties_go_away_from_zero():
    assert [round_shift(x, 1) for x in (3, -3, 1, -1, 2)] == [2, -2, 1, -1, 1]
    assert [round_shift(x, 2) for x in (5, -5, 6, -6, 7)] == [1, -1, 2, -2, 2]
    assert round_shift(-7, 0) == -7


def test_int32_min_error_is_clamped_like_the_c():
    p = PiFixedParams(a0=0, a1=1 << 16, out_min=-(1 << 31), out_max=(1 << 31) - 1, frac_bits=16)
    out = pi_fixed_response([-(1 << 31)], p)
    assert out[0] == -((1 << 31) - 1)


def test_overflowing_coefficient_raises():
    with pytest.raises(FixedPointOverflow, match="a1 = 40000 overflows Q16.16"):
        pi_fixed_params(-1.0, 40000.0, 0.0, 1.0, Q16_16)


def test_ulp_distance_counts_float32_steps():
    x = np.float32(0.1478125)
    assert ulp_distance(np.array([x]), np.array([np.nextafter(x, np.float32(1))]))[0] == 1
    assert ulp_distance(np.array([np.float32(-0.0)]), np.array([np.float32(0.0)]))[0] == 0
    assert ulp_distance(np.array([np.float32(1.0)]), np.array([np.float32(1.0) + np.float32(2 ** -23) * 3]))[0] == 3

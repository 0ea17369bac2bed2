"""Pole placement and the continuous closed loop against seed 002's numbers."""

import numpy as np
import pytest

from simbaflow.design import loops
from simbaflow.design.plants import Plant, plant_tf
from simbaflow.design.tuning import damping_from_gains, pi_gains_pole_placement

SEED = Plant("voltage_compensated_inductor", l_h=6e-3, r_ohm=30, e_v=600)
WN = 30 / 6e-3  # seed: ωn = R/L


def test_seed_gains_xi_0707():
    kp, ki = pi_gains_pole_placement(SEED, 0.707, WN)
    assert kp == pytest.approx(0.0707, abs=1e-12)
    assert ki == pytest.approx(250.0, abs=1e-9)


def _closed_loop(xi):
    kp, ki = pi_gains_pole_placement(SEED, xi, WN)
    return loops.closed_loop(loops.pi_tf(kp, ki) * plant_tf(SEED))


def test_seed_poles_and_zero_xi_0707():
    cl = _closed_loop(0.707)
    poles = np.sort_complex(cl.poles())
    assert poles[0] == pytest.approx(-3535 - 3536.06773125j, abs=1e-3)
    assert poles[1] == pytest.approx(-3535 + 3536.06773125j, abs=1e-3)
    assert cl.zeros()[0].real == pytest.approx(-3536.0678925, abs=1e-3)
    # The seed's diagnosis: the zero sits on the poles' real part.
    assert loops.zero_pole_proximity(cl) == pytest.approx(1.0003, abs=1e-3)


def test_seed_poles_and_zero_xi_14():
    cl = _closed_loop(1.4)
    poles = np.sort(cl.poles().real)
    assert poles == pytest.approx([-11898.97948557, -2101.02051443], abs=1e-4)
    assert cl.zeros()[0].real == pytest.approx(-1785.71428571, abs=1e-4)


def test_seed_overshoot_around_20_percent_at_0707():
    """Seed 002: 'the overshoot ... is around 20 %'; analytic value for the zero-augmented loop."""
    step = loops.step_analysis(_closed_loop(0.707))
    xi = 0.707
    # Independent closed form: y(t) of (1 + s/z)/(s²/ωn² + 2ξ s/ωn + 1) evaluated on a fine grid.
    t = np.linspace(0, 10 / WN, 200001)
    wd = WN * np.sqrt(1 - xi**2)
    z = 250 / 0.0707
    env = np.exp(-xi * WN * t)
    y_plain = 1 - env * (np.cos(wd * t) + xi / np.sqrt(1 - xi**2) * np.sin(wd * t))
    dy_plain = WN / np.sqrt(1 - xi**2) * env * np.sin(wd * t)
    y = y_plain + dy_plain / z
    assert step["overshoot_pct"] == pytest.approx((y.max() - 1) * 100, abs=0.05)
    assert 19 < step["overshoot_pct"] < 22


def test_resistive_plant_law_places_the_poles():
    plant = Plant("inductor_with_resistance", l_h=6e-3, r_ohm=30, e_v=600)
    kp, ki = pi_gains_pole_placement(plant, 0.9, 8000)
    cl = loops.closed_loop(loops.pi_tf(kp, ki) * plant_tf(plant))
    den = np.real(np.poly(cl.poles()))
    assert den == pytest.approx([1, 2 * 0.9 * 8000, 8000**2], rel=1e-9)
    assert damping_from_gains(plant, kp, ki) == pytest.approx((0.9, 8000))


def test_damping_from_gains_inverts_seed_law():
    assert damping_from_gains(SEED, 0.14, 250) == pytest.approx((1.4, 5000))

"""PI discretisations: seed recurrence, python-control cross-checks, matched and prewarp."""

import math

import control
import numpy as np
import pytest

from simbaflow.design.discretisation import METHODS, pi_recurrence, recurrence_tf
from simbaflow.design.realisations import control_library_pid_recurrence

KP, KI, TS = 0.14, 250.0, 1 / 16e3


def test_seed_tustin_coefficients():
    a0, a1 = pi_recurrence(KP, KI, TS, "tustin")
    assert a0 == pytest.approx(-0.1321875, abs=1e-15)
    assert a1 == pytest.approx(0.1478125, abs=1e-15)


@pytest.mark.parametrize("method, ct_method", [("tustin", "tustin"), ("zoh", "zoh"),
                                               ("forward_euler", "euler"), ("backward_euler", "backward_diff")])
def test_recurrence_matches_python_control(method, ct_method):
    a0, a1 = pi_recurrence(KP, KI, TS, method)
    ref = control.c2d(control.tf([KP, KI], [1, 0]), TS, method=ct_method)
    w = np.array([10.0, 1e3, 2e4, 0.9 * math.pi / TS])
    assert recurrence_tf(a0, a1, TS)(np.exp(1j * w * TS)) == pytest.approx(ref(np.exp(1j * w * TS)), rel=1e-9)


def test_matched_maps_zero_and_keeps_integral_gain():
    a0, a1 = pi_recurrence(KP, KI, TS, "matched")
    assert -a0 / a1 == pytest.approx(math.exp(-KI / KP * TS), rel=1e-12)
    # lim z→1 of (z−1)/Ts · C(z) must equal Ki, as lim s→0 of s·C(s) does.
    assert (a1 + a0) / TS == pytest.approx(KI, rel=1e-9)
    # python-control's own matched fails on the integrator pole: the reason this exists.
    ct = control.c2d(control.tf([KP, KI], [1, 0]), TS, method="matched")
    assert not np.all(np.isfinite(ct.num[0][0]))


def test_prewarp_is_exact_at_its_frequency():
    w = 3000.0
    a0, a1 = pi_recurrence(KP, KI, TS, "tustin_prewarp", prewarp_rad_s=w)
    c_cont = KP + KI / (1j * w)
    assert recurrence_tf(a0, a1, TS)(np.exp(1j * w * TS)) == pytest.approx(c_cont, rel=1e-12)
    plain = recurrence_tf(*pi_recurrence(KP, KI, TS, "tustin"), TS)(np.exp(1j * w * TS))
    assert abs(plain - c_cont) > 1e-6  # plain Tustin is not exact there


def test_recurrence_runs_like_the_firmware():
    """Iterating α(k) = α(k−1) + a1 ε(k) + a0 ε(k−1) gives the transfer function's impulse response."""
    for method in METHODS:
        a0, a1 = pi_recurrence(KP, KI, TS, method, prewarp_rad_s=5000)
        eps = np.zeros(6)
        eps[0] = 1.0
        alpha, prev_a, prev_e = [], 0.0, 0.0
        for e in eps:
            prev_a = prev_a + a1 * e + a0 * prev_e
            prev_e = e
            alpha.append(prev_a)
        resp = control.impulse_response(recurrence_tf(a0, a1, TS), np.arange(6) * TS)
        # python-control (>= 0.10, pyproject) excites a discrete system with a pulse of area 1: height 1/Ts.
        assert np.asarray(resp.outputs).ravel() * TS == pytest.approx(alpha, rel=1e-9)


def test_control_library_pid_equals_its_algorithm():
    """OwnTech Pid::calculate (Td = 0, no saturation) re-implemented from its published equations."""
    a0, a1 = control_library_pid_recurrence(KP, KI, TS)
    ti = KP / KI
    rng = np.random.default_rng(1)
    errors = rng.normal(size=50)
    integral, out_pid = 0.0, []
    for e in errors:
        integral += TS * e
        out_pid.append(KP * (e + integral / ti))
    alpha, prev_e, out_rec = 0.0, 0.0, []
    for e in errors:
        alpha += a1 * e + a0 * prev_e
        prev_e = e
        out_rec.append(alpha)
    assert out_rec == pytest.approx(out_pid, rel=1e-9, abs=1e-12)

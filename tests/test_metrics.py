"""Step metrics against closed forms and python-control's step_info."""

import control
import numpy as np
import pytest

from simbaflow.design.metrics import iae, step_metrics


@pytest.mark.parametrize("xi", [0.3, 0.5, 0.707])
def test_second_order_overshoot_closed_form(xi):
    wn = 1000.0
    t = np.linspace(0, 0.03, 30001)
    resp = control.step_response(control.tf([wn**2], [1, 2 * xi * wn, wn**2]), t)
    m = step_metrics(resp.time, resp.outputs.ravel(), y_initial=0.0, y_final=1.0)
    assert m["overshoot_pct"] == pytest.approx(100 * np.exp(-np.pi * xi / np.sqrt(1 - xi**2)), abs=1e-3)
    assert m["peak_time_s"] == pytest.approx(np.pi / (wn * np.sqrt(1 - xi**2)), abs=2e-6)
    info = control.step_info(control.tf([wn**2], [1, 2 * xi * wn, wn**2]), T=t)
    assert m["rise_time_s"] == pytest.approx(info["RiseTime"], rel=2e-3)
    assert m["settling_time_s"] == pytest.approx(info["SettlingTime"], rel=2e-3)


def test_first_order_times_closed_form():
    tau = 1e-3
    t = np.linspace(0, 10 * tau, 100001)
    y = 5.0 - 3.0 * np.exp(-t / tau)  # a step from 2 to 5
    m = step_metrics(t, y, y_initial=2.0, y_final=5.0)
    assert m["overshoot_pct"] == 0.0
    assert m["rise_time_s"] == pytest.approx(tau * np.log(9), rel=1e-4)
    assert m["settling_time_s"] == pytest.approx(tau * np.log(50), rel=1e-4)


def test_downward_step_and_iae():
    t = np.linspace(0, 1, 1001)
    y = np.where(t < 0.5, 10.0, 4.0)
    m = step_metrics(t, y, y_initial=10.0, y_final=4.0)
    # One sample interval (1 ms) holds the whole jump; linear interpolation puts 10 % → 90 % at 0.8 of it.
    assert m["rise_time_s"] == pytest.approx(0.0008, abs=1e-12)
    assert iae(t, 4.0 - y) == pytest.approx(3.0, abs=0.01)

"""Embedded engine against closed-form solutions (independent truth, not itself)."""

import math

import numpy as np
import pytest

from embedded_designs import design, device, open_loop_leg
from simbaflow.simulate.engines.embedded import compile_design


def _rl_design(v, r, l, end):
    devices = [device("DC Voltage Source", "E", 0, 0, Voltage=v), device("Ground", "GND", 1, 20),
               device("Resistor", "R1", 10, 0, Value=r), device("Inductor", "L1", 20, 0, Value=l, Iinit=0)]
    wires = [("E.P", "R1.P"), ("R1.N", "L1.P"), ("L1.N", "GND.G"), ("E.N", "GND.G")]
    return design(devices, wires, end, ["L1 - Current"])


def test_rl_step_matches_closed_form():
    v, r, l = 10.0, 2.0, 5e-3
    tau = l / r
    time_s, values, _ = compile_design(_rl_design(v, r, l, 5 * tau)).run(output_step_s=tau / 50)
    expected = v / r * (1 - np.exp(-time_s / tau))
    np.testing.assert_allclose(values["L1 - Current"], expected, rtol=1e-9, atol=1e-9)


def test_series_rlc_underdamped_capacitor_voltage():
    v, r, l, c = 1.0, 10.0, 1e-3, 1e-6
    devices = [device("DC Voltage Source", "E", 0, 0, Voltage=v), device("Ground", "GND", 1, 20),
               device("Resistor", "R1", 10, 0, Value=r), device("Inductor", "L1", 20, 0, Value=l, Iinit=0),
               device("Capacitor", "C1", 30, 0, Value=c, Vinit=0)]
    wires = [("E.P", "R1.P"), ("R1.N", "L1.P"), ("L1.N", "C1.P"), ("C1.N", "GND.G"), ("E.N", "GND.G")]
    alpha, w0 = r / (2 * l), 1 / math.sqrt(l * c)
    wd = math.sqrt(w0**2 - alpha**2)
    end = 2e-3
    time_s, values, _ = compile_design(design(devices, wires, end, ["C1 - Voltage", "L1 - Current"])).run(
        output_step_s=1e-6)
    vc = v * (1 - np.exp(-alpha * time_s) * (np.cos(wd * time_s) + alpha / wd * np.sin(wd * time_s)))
    il = v / (l * wd) * np.exp(-alpha * time_s) * np.sin(wd * time_s)
    np.testing.assert_allclose(values["C1 - Voltage"], vc, atol=1e-9)
    np.testing.assert_allclose(values["L1 - Current"], il, atol=1e-9)


@pytest.mark.parametrize("synchronous", [True, False], ids=["synchronous", "diode"])
def test_open_loop_buck_ccm_mean_output_is_d_times_e(synchronous):
    duty, e_v, r_ohm = 0.37, 48.0, 10.0
    vo = duty * e_v
    leg = open_loop_leg(duty, e_v, r_ohm, 1e-3, 20e3, 0.02, synchronous=synchronous, c_f=100e-6,
                        iinit_a=vo / r_ohm, vinit_v=vo)
    time_s, values, _ = compile_design(leg).run()
    # Mean over the last 100 switching periods (whole periods, trapezoid over event points).
    window = time_s >= 0.015
    t, out = time_s[window], values["R1 - Voltage"][window]
    mean = np.trapezoid(out, t) / (t[-1] - t[0])
    assert mean == pytest.approx(vo, rel=5e-3)
    # CCM: the inductor current never reaches zero.
    assert values["L1 - Current"].min() > 0.5


def test_switching_instants_are_exact():
    # Carrier 0..1 at 20 kHz against a constant duty: the high side turns off where the
    # rising carrier meets the duty, t = (k + duty / 2) T, to well under 1 ns.
    duty, period = 0.3, 50e-6
    leg = open_loop_leg(duty, 48.0, 10.0, 1e-3, 1 / period, 1e-3)
    time_s, values, _ = compile_design(leg).run(signals=["COMP - Out"])
    gate = values["COMP - Out"]
    falling = time_s[1:][(gate[:-1] > 0.5) & (gate[1:] < 0.5)]
    rising = time_s[1:][(gate[:-1] < 0.5) & (gate[1:] > 0.5)]
    k = np.arange(len(falling))
    np.testing.assert_allclose(falling, (k + duty / 2) * period, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rising, (np.arange(len(rising)) + 1 - duty / 2) * period, rtol=0, atol=1e-12)


def test_output_grid_does_not_change_results():
    leg = open_loop_leg(0.5, 48.0, 10.0, 1e-3, 20e3, 2e-3, c_f=100e-6)
    compiled = compile_design(leg)
    coarse_t, coarse, _ = compiled.run(output_step_s=1e-5)
    fine_t, fine, _ = compiled.run(output_step_s=2.5e-6)
    events_t, events, _ = compiled.run()
    common = np.isin(np.round(fine_t / 1e-9), np.round(coarse_t / 1e-9))
    np.testing.assert_allclose(fine["R1 - Voltage"][common], coarse["R1 - Voltage"], rtol=1e-10)
    # The event-point run ends in the same state.
    assert events["R1 - Voltage"][-1] == pytest.approx(coarse["R1 - Voltage"][-1], rel=1e-10)


def test_sine_source_and_gain_exact():
    devices = [device("Sine Wave", "S", 0, 0, Amplitude=2, Frequency=50, Offset=1, PhaseShift=30),
               device("Gain", "G", 10, 0, Value="1 / 4")]
    time_s, values, _ = compile_design(design(devices, [("S.Out", "G.In")], 0.05, ["G - Out"])).run(
        output_step_s=1e-4)
    expected = (1 + 2 * np.sin(2 * np.pi * 50 * time_s + np.radians(30))) / 4
    np.testing.assert_allclose(values["G - Out"], expected, atol=1e-12)


def test_open_loop_buck_dcm_diode_commutation():
    # Light load: the inductor current returns to zero each period and the diode blocks
    # (a stiff interval: the open switches' 1 Mohm against the inductor). Classic DCM
    # result with a ripple-free output: Vo / E = 2 / (1 + sqrt(1 + 4 K / D^2)), K = 2 L / (R T).
    duty, e_v, l_h, r_ohm, f_hz = 0.3, 48.0, 100e-6, 50.0, 20e3
    k = 2 * l_h / (r_ohm / f_hz)
    vo = e_v * 2 / (1 + math.sqrt(1 + 4 * k / duty**2))
    leg = open_loop_leg(duty, e_v, r_ohm, l_h, f_hz, 0.02, synchronous=False, c_f=100e-6, vinit_v=vo)
    time_s, values, _ = compile_design(leg).run()
    window = time_s >= 0.015
    t = time_s[window]
    assert np.trapezoid(values["R1 - Voltage"][window], t) / (t[-1] - t[0]) == pytest.approx(vo, rel=5e-3)
    il = values["L1 - Current"][window]
    # Blocking diode: the current stops at zero (leakage through 1 Mohm only) for part of each period.
    assert il.min() > -1e-4
    assert np.mean(np.abs(il) < 1e-4) > 0.1

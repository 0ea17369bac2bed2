"""SIMBA's Average block in the embedded engine, against closed forms.

``Out(t) = (1/T) * (I(t) - I(t - T))`` with ``I`` the integral of the input from 0
and ``T = 1/Frequency``; before 0 the input is taken as ``Initial``, so
``I(s) = Initial * s`` for ``s < 0``. Every expected value below integrates the
source analytically and applies that formula.
"""

import numpy as np
import pytest

from embedded_designs import design, device, open_loop_leg
from simbaflow.simulate.engines.embedded import SUPPORTED, compile_design
from simbaflow.simulate.engines.embedded.circuit import R_ON_MIN_OHM
from simbaflow.core.errors import SpecError
from simbaflow.simulate.netlist import pin_positions


def _run(source, frequency_hz, initial, end_s, **run_kwargs):
    """Average of ``source`` (a device named X); returns time and Out."""
    devices = [source, device("Average", "AVG", 10, 0, Frequency=frequency_hz, Initial=initial, SamplingTime="none")]
    compiled = compile_design(design(devices, [("X.Out", "AVG.In")], end_s, ["AVG - Out"]))
    time_s, values, _ = compiled.run(**run_kwargs)
    return time_s, values["AVG - Out"]


def _window_mean(integral, time_s, period_s, initial):
    """(I(t) - I(t - T)) / T with I(s) = integral(s) from 0 on, Initial * s before."""
    before = time_s - period_s
    delayed = np.where(before >= 0.0, integral(np.maximum(before, 0.0)), initial * before)
    return (integral(time_s) - delayed) / period_s


def _sine_integral(amplitude, frequency_hz, offset, phase_deg=0.0):
    omega, phase = 2 * np.pi * frequency_hz, np.radians(phase_deg)
    return lambda s: offset * s + amplitude * (np.cos(phase) - np.cos(omega * s + phase)) / omega


def _square_integral(amplitude, frequency_hz, duty, offset):
    # High (Offset + Amplitude) for the first DutyCycle of each period.
    def integral(s):
        periods = np.floor(s * frequency_hz)
        fraction = s * frequency_hz - periods
        return offset * s + amplitude * (periods * duty + np.minimum(fraction, duty)) / frequency_hz

    return integral


def test_sine_over_its_period_averages_to_its_offset():
    # 2 sin(2 pi 50 t) + 0.3 averaged over 20 ms: 0.3 from t = T on; during the first
    # period the window also holds Initial = -1 for T - t.
    period_s = 0.02
    time_s, out = _run(device("Sine Wave", "X", 0, 0, Amplitude=2, Frequency=50, Offset="0.3", PhaseShift=0),
                       50, -1, 0.07, output_step_s=1e-4)
    expected = _window_mean(_sine_integral(2, 50, 0.3), time_s, period_s, -1.0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
    after = time_s >= period_s
    np.testing.assert_allclose(out[after], 0.3, rtol=0, atol=1e-10)
    assert out[time_s < period_s].min() < -0.5  # the first period is not the steady value


@pytest.mark.parametrize("max_step_s", [None, 1.0])
def test_step_gives_a_linear_ramp_over_one_period(max_step_s):
    # 0 -> 3 at 0.4123 ms, averaged over 1 ms with Initial 0.7: Out ramps by 3 over
    # [0.4123 ms, 1.4123 ms] while the Initial part (0.7 (T - t) / T) runs out at T.
    # max_step_s = 1 s leaves the intervals to the block's own windows.
    period_s, t_step = 1e-3, 0.4123e-3
    time_s, out = _run(device("Step", "X", 0, 0, InitialValue=0, FinalValue=3, StepTime=t_step),
                       "1k", "0.7", 3e-3, output_step_s=1e-5, max_step_s=max_step_s)
    expected = (3 * np.clip(time_s - t_step, 0, period_s) + 0.7 * np.clip(period_s - time_s, 0, period_s)) / period_s
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    ramp = (time_s > period_s) & (time_s < t_step + period_s)
    slope = np.diff(out[ramp]) / np.diff(time_s[ramp])
    np.testing.assert_allclose(slope, 3 / period_s, rtol=1e-8)


def test_ramp_is_delayed_by_half_a_period():
    # In = 2000 t; from t = T the mean over [t - T, t] is the ramp at t - T/2. Before,
    # (1000 t^2 + Initial (T - t)) / T.
    period_s, slope = 1e-3, 2000.0
    time_s, out = _run(device("Piecewise Linear", "X", 0, 0, TimeValueMatrix="[0 0; 10m 20]"),
                       "1k", 5, 4e-3, output_step_s=1e-5)
    after = time_s >= period_s
    np.testing.assert_allclose(out[after], slope * (time_s[after] - period_s / 2), rtol=1e-12, atol=1e-12)
    first = ~after
    expected = (slope * time_s[first] ** 2 / 2 + 5 * (period_s - time_s[first])) / period_s
    np.testing.assert_allclose(out[first], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [1, 3, 1.7])
def test_square_wave_mean(ratio):
    # Square at ratio x the average's frequency, duty 0.3, -1 + 4 while high. For a whole
    # number of square periods per window the mean is Offset + D Amplitude = 0.2; for any
    # ratio it is the closed-form window integral. Event-instant output (no grid).
    period_s = 1e-3
    source = device("Square Wave", "X", 0, 0, Amplitude=4, Frequency=ratio * 1e3, DutyCycle="0.3", Offset=-1,
                    PhaseShift=0)
    time_s, out = _run(source, "1k", 0, 4e-3, max_step_s=1.0)
    expected = _window_mean(_square_integral(4, ratio * 1e3, 0.3, -1), time_s, period_s, 0.0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    if ratio != 1.7:
        np.testing.assert_allclose(out[time_s >= period_s], -1 + 0.3 * 4, rtol=0, atol=1e-12)
    else:
        assert np.ptp(out[time_s >= period_s]) > 0.1  # a partial square period moves the mean


def test_initial_value_fills_the_first_period():
    # Constant 2 with Initial -3: (2 t - 3 (T - t)) / T during the first 5 ms, then 2.
    period_s = 5e-3
    time_s, out = _run(device("Constant", "X", 0, 0, Value=2), 200, -3, 0.012, output_step_s=2.5e-4)
    expected = np.where(time_s < period_s, (2 * time_s - 3 * (period_s - time_s)) / period_s, 2.0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_output_grid_does_not_change_results():
    # A sine at 7.3 x the average's frequency (windows shorter than its period, the solver
    # on exact propagators when max_step_s is long): two grids agree where they meet,
    # and both match the closed form.
    period_s = 1e-3
    source = device("Sine Wave", "X", 0, 0, Amplitude=4, Frequency="7.3k", Offset=1, PhaseShift=30)
    integral = _sine_integral(4, 7.3e3, 1, 30)
    results = {}
    for max_step_s in (None, 1.0):
        for step_s in (1e-5, 2.5e-6):
            time_s, out = _run(source, "1k", 0, 3e-3, output_step_s=step_s, max_step_s=max_step_s)
            np.testing.assert_allclose(out, _window_mean(integral, time_s, period_s, 0.0), rtol=0, atol=1e-10)
            results[max_step_s, step_s] = time_s, out
        (coarse_t, coarse), (fine_t, fine) = results[max_step_s, 1e-5], results[max_step_s, 2.5e-6]
        np.testing.assert_allclose(fine_t[::4], coarse_t, rtol=0, atol=1e-15)
        np.testing.assert_allclose(fine[::4], coarse, rtol=0, atol=1e-12)


def test_average_of_a_switched_buck_output_is_d_times_e():
    # Synchronous buck leg, D = 0.3, E = 48 V, R = 10 ohm, L = 1 mH (tau = 0.1 ms), 20 kHz.
    # In periodic steady state L di/dt averages to 0 over a switching period, so the mean
    # of v_R over one period is the mean leg voltage scaled by the divider the engine's
    # minimum on-resistance makes with R: D E R / (R + R_on_min). After 30 tau the
    # transient is below 1e-12 of that.
    leg = open_loop_leg(0.3, 48.0, 10.0, 1e-3, 20e3, 4e-3)
    circuit = leg["Circuit"]
    circuit["Devices"] += [device("Voltage Probe", "VP", 30, 30),
                           device("Average", "AVG", 40, 30, Frequency="20k", Initial=0, SamplingTime="none")]
    by_name = {d["Name"]: d for d in circuit["Devices"]}
    for a, b in (("VP.P", "R1.P"), ("VP.Out", "AVG.In")):
        (xa, ya), (xb, yb) = (pin_positions(by_name[name])[pin] for name, pin in (a.split("."), b.split(".")))
        segment = {"StartX": xa, "StartY": ya, "EndX": xb, "EndY": yb}
        circuit["Connectors"].append({"Name": f"{a}-{b}", "Segments": [segment]})
    time_s, values, _ = compile_design(leg).run(signals=["AVG - Out"], output_step_s=1e-6)
    settled = time_s >= 3e-3
    expected = 0.3 * 48.0 * 10.0 / (10.0 + R_ON_MIN_OHM)
    np.testing.assert_allclose(values["AVG - Out"][settled], expected, rtol=1e-11)


def test_average_is_listed_and_sampling_time_is_refused():
    assert "Average" in SUPPORTED
    sampled = [device("Constant", "X", 0, 0, Value=1), device("Average", "AVG", 10, 0, Frequency=50, Initial=0,
                                                               SamplingTime="1e-4")]
    with pytest.raises(SpecError, match=r"device 'AVG' \(Average\): SamplingTime '1e-4' is not supported"):
        compile_design(design(sampled, [("X.Out", "AVG.In")], 1e-3, ["AVG - Out"]))
    compiled = compile_design(design(sampled[:1] + [device("Average", "AVG", 10, 0, Frequency=50, Initial=0,
                                                           SamplingTime="none")],
                                     [("X.Out", "AVG.In")], 1e-3, ["AVG - Out"]))
    with pytest.raises(SpecError, match=r"device 'AVG' \(Average\): Frequency must be positive"):
        compiled.run({"AVG": {"Frequency": 0}})
    with pytest.raises(SpecError, match=r"device 'AVG' \(Average\): SamplingTime '1e-4' is not supported"):
        compiled.run({"AVG": {"SamplingTime": "1e-4"}})


@pytest.mark.parametrize("max_step_s", [None, 1.0])
def test_average_of_an_average_of_a_step(max_step_s):
    # A 1 ms average of a unit step at 0.3 ms ramps over [0.3, 1.3] ms; a 0.4 ms average of
    # that ramp is piecewise quadratic, with the corner of the first at 1.3 ms reaching the
    # second as a kink of its input. Y1 = integral of the first Out.
    t_step, t1, t2 = 0.3e-3, 1e-3, 0.4e-3
    devices = [device("Step", "X", 0, 0, InitialValue=0, FinalValue=1, StepTime=t_step),
               device("Average", "A1", 10, 0, Frequency="1k", Initial=0, SamplingTime="none"),
               device("Average", "A2", 20, 0, Frequency="2.5k", Initial=0, SamplingTime="none")]
    compiled = compile_design(design(devices, [("X.Out", "A1.In"), ("A1.Out", "A2.In")], 3e-3, ["A2 - Out"]))
    time_s, values, _ = compiled.run(output_step_s=1e-6, max_step_s=max_step_s)

    def y1_integral(s):
        ramp_s = np.clip(s - t_step, 0.0, None)
        return np.where(ramp_s < t1, ramp_s**2 / (2 * t1), t1 / 2 + ramp_s - t1)

    expected = _window_mean(y1_integral, time_s, t2, 0.0)
    np.testing.assert_allclose(values["A2 - Out"], expected, rtol=0, atol=1e-12)

"""Control blocks and C Code blocks of the embedded engine, against closed forms."""

import numpy as np
import pytest

from embedded_designs import design, device
from simbaflow.simulate.engines.embedded import compile_design
from simbaflow.simulate.engines.embedded.ccode import compile_code
from simbaflow.core.errors import SimbaflowError, SpecError

COUNTER = r"""
#include "simba_library.h"
static double count;
void initialize() { count = 0; }
void calculate_outputs(double *outputs, double *inputs, double time, double time_step) {
    if (inputs[0] == 1) count += 1;
    if (inputs[0] == -1) count -= 1000;
    outputs[0] = count;
}
void terminate() {}
void *snapshot(snapshot_mode mode, void *ptr) { return 0; }
"""


def _counters(end_s):
    devices = [
        device("Square Wave", "clock", 0, 0, Amplitude=1, Frequency="16k", DutyCycle=0.5, Offset=-0.5, PhaseShift=0),
        device("Zero-Crossing Detector", "ZX", 10, 0),
        device("C Code", "A", 20, 0, NumberOfInputs=1, NumberOfOutputs=1, SamplingTime="none", Code=COUNTER),
        device("C Code", "B", 20, 20, NumberOfInputs=1, NumberOfOutputs=1, SamplingTime="none", Code=COUNTER),
    ]
    wires = [("clock.Out", "ZX.In"), ("ZX.Out", "A.inputs[0]"), ("ZX.Out", "B.inputs[0]")]
    return design(devices, wires, end_s, ["A - outputs[0]", "B - outputs[0]", "ZX - Out"])


def test_c_code_blocks_are_isolated_and_clocked_by_zero_crossings():
    # The clock starts high (-0.5 + 1); it rises through zero at k / 16 kHz, k >= 1, and
    # falls at (k + 1/2) / 16 kHz. Each block counts +1 per rising and -1000 per falling
    # crossing in its own globals: 15 rises and 16 falls before 0.99 ms.
    time_s, values, _ = compile_design(_counters(0.99e-3)).run()
    for name in ("A - outputs[0]", "B - outputs[0]"):
        assert values[name][-1] == 15 - 16 * 1000
    # Between events the detector's output is 0: the pulse lives at the crossing instant.
    assert set(np.unique(values["ZX - Out"])) == {0.0}


def test_c_code_compile_is_cached_by_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMBAFLOW_CACHE", str(tmp_path))
    first = compile_code(COUNTER, "A")
    assert first.exists() and first.parent.parent == tmp_path
    mtime = first.stat().st_mtime_ns
    assert compile_code(COUNTER, "B") == first and first.stat().st_mtime_ns == mtime
    assert compile_code(COUNTER + "\n", "C") != first


def test_c_code_that_does_not_compile_names_the_block(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMBAFLOW_CACHE", str(tmp_path))
    with pytest.raises(SimbaflowError, match="C Code block 'ctrl': the code does not compile"):
        compile_code("void initialize( {", "ctrl")


def test_unsupported_device_lists_supported_ones():
    devices = [device("Thyristor", "TH1", 0, 0), device("Ground", "GND", 10, 10)]
    with pytest.raises(SpecError, match=r"device 'TH1' \(Thyristor\) is not supported.*supported devices: .*C Code"):
        compile_design(design(devices, [], 1e-3, []))


def test_unsupported_parameter_value_is_a_clear_error():
    devices = [device("PID", "PI", 0, 0, Kp=1, Ki=1, Kd=0.1, Kf=0), device("Constant", "K", 0, 10, Value=1)]
    with pytest.raises(SpecError, match="device 'PI' \\(PID\\): Kd = 0.1 needs a derivative filter"):
        compile_design(design(devices, [("K.Out", "PI.In")], 1e-3, ["PI - Out"]))


def test_pid_saturation_and_integral_closed_form():
    # Constant error 2: u = Kp e + Ki e t = 1 + 200 t, clipped at Umax = 3 from t = 10 ms;
    # without anti-windup the integral keeps growing (200 t).
    devices = [device("Constant", "E", 0, 0, Value=2),
               device("PID", "PI", 10, 0, Kp=0.5, Ki=100, Kd=0, Kf=0, Umin="-inf", Umax=3, Kb=0, Iinit=0,
                      IntegrationMethod=0, SaturationMethod=0, SamplingTime="none")]
    compiled = compile_design(design(devices, [("E.Out", "PI.In")], 0.02, ["PI - Out", "PI - Integrale contribution"]))
    time_s, values, _ = compiled.run(output_step_s=1e-4)
    np.testing.assert_allclose(values["PI - Out"], np.minimum(1 + 200 * time_s, 3), atol=1e-12)
    np.testing.assert_allclose(values["PI - Integrale contribution"], 200 * time_s, atol=1e-12)
    # Back-calculation (Kb = 50): once saturated, I' = Ki e - Kb (u - Umax) holds u at the limit,
    # so the integral settles where 1 + I = 3 + Ki e / Kb = 7, i.e. I = 6 - 4 exp(-Kb (t - 10 ms)).
    _, values, _ = compiled.run({"PI": {"IntegrationMethod": 2, "Kb": 50}}, output_step_s=1e-4)
    after = time_s >= 0.01
    expected = 6 - 4 * np.exp(-50 * (time_s[after] - 0.01))
    np.testing.assert_allclose(values["PI - Integrale contribution"][after], expected, atol=1e-9)


def test_limiter_clips_a_sine_exactly():
    devices = [device("Sine Wave", "S", 0, 0, Amplitude=2, Frequency=50, Offset=0, PhaseShift=0),
               device("Limiter", "LIM", 10, 0, LowLimit=-1, HighLimit="1.5")]
    time_s, values, _ = compile_design(design(devices, [("S.Out", "LIM.In")], 0.04, ["LIM - Out"])).run(
        output_step_s=1e-4)
    np.testing.assert_allclose(values["LIM - Out"], np.clip(2 * np.sin(2 * np.pi * 50 * time_s), -1, 1.5), atol=1e-12)


def test_discrete_transfer_function_step_response():
    # y[k] = 0.5 y[k-1] + u[k] (Num [1 0], Den [1 -0.5]) for a unit step sampled every 1 ms.
    devices = [device("Constant", "U", 0, 0, Value=1),
               device("Discrete Transfer Function", "H", 10, 0, Num="[1 0]", Den="[1 -0.5]", SamplingTime="1m")]
    time_s, values, _ = compile_design(design(devices, [("U.Out", "H.In")], 9.5e-3, ["H - Out"])).run(
        output_step_s=5e-4)
    k = np.floor(time_s / 1e-3 + 1e-9)
    np.testing.assert_allclose(values["H - Out"], 2 * (1 - 0.5 ** (k + 1)), rtol=1e-12)


def test_sources_square_triangle_piecewise_linear():
    devices = [
        device("Square Wave", "SQ", 0, 0, Amplitude=8, Frequency=100, DutyCycle=0.5, Offset=6, PhaseShift=0),
        device("Triangular Wave", "TRI", 0, 10, Amplitude=2, Frequency=1000, DutyCycle=0.25, Offset=-1, PhaseShift=0),
        device("Piecewise Linear", "PWL", 0, 20, TimeValueMatrix="[0 1; 2m 1; 4m 5; 6m 5]"),
        device("Control Scope", "SC1", 10, 0), device("Control Scope", "SC2", 10, 10), device("Control Scope", "SC3", 10, 20),
    ]
    wires = [("SQ.Out", "SC1.In"), ("TRI.Out", "SC2.In"), ("PWL.Out", "SC3.In")]
    scopes = ["SC1 - Value", "SC2 - Value", "SC3 - Value"]
    time_s, values, _ = compile_design(design(devices, wires, 0.02, scopes)).run(output_step_s=1e-4 / 3)
    inner = np.abs((time_s * 100) % 0.5) > 1e-6  # away from the square's edges
    # Square: Offset + Amplitude (14) for the first half period, Offset (6) for the second.
    np.testing.assert_allclose(values["SC1 - Value"][inner], np.where((time_s[inner] * 100) % 1 < 0.5, 14, 6))
    phase = (time_s * 1000) % 1
    triangle = np.where(phase < 0.25, -1 + 2 * phase / 0.25, 1 - 2 * (phase - 0.25) / 0.75)
    np.testing.assert_allclose(values["SC2 - Value"], triangle, atol=1e-9)
    np.testing.assert_allclose(values["SC3 - Value"], np.interp(time_s, [0, 2e-3, 4e-3, 6e-3], [1, 1, 5, 5]), atol=1e-9)


def test_zero_order_hold_and_discrete_pid():
    # A 0..10 ramp over 10 ms, held every 1 ms; a discrete PI on a constant error of 2:
    # u[k] = Kp e + Ki Ts e (k + 1) (backward-Euler integral, sample k at k Ts).
    devices = [device("Piecewise Linear", "RAMP", 0, 0, TimeValueMatrix="[0 0; 10m 10]"),
               device("Zero Order Hold", "ZOH", 10, 0, SamplingTime="1m"),
               device("Constant", "E", 0, 10, Value=2),
               device("Discrete PID", "DPI", 10, 10, Kp="0.5", Ki=100, Kd=0, Kf=0, Umin="-inf", Umax="inf", Kb=0,
                      Iinit=0, IntegrationMethod=0, SaturationMethod=0, SamplingTime="1m")]
    wires = [("RAMP.Out", "ZOH.In"), ("E.Out", "DPI.In")]
    time_s, values, _ = compile_design(design(devices, wires, 9.5e-3, ["ZOH - Out", "DPI - Out"])).run(
        output_step_s=2.5e-4)
    k = np.floor(time_s / 1e-3 + 1e-9)
    np.testing.assert_allclose(values["ZOH - Out"], k * 1e-3 * 1000, atol=1e-9)
    np.testing.assert_allclose(values["DPI - Out"], 0.5 * 2 + 100 * 1e-3 * 2 * (k + 1), rtol=1e-12)

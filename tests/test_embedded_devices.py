"""Devices the embedded engine supports that no other test simulates, against closed forms.

Controlled Switch (with its Ron), DC Current Source, Diode with forward
voltage Vf and resistance Rd, Sawtooth Wave; through the public API only
(``simbaflow.compile_design``), on designs written here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedded_designs import design, device
from simbaflow import compile_design

#: What an open ideal switch or a blocking diode leaves (the engine's documented off-resistance).
R_OFF_OHM = 1e6


def test_controlled_switch_on_resistance_and_gate():
    # 10 V through the switch (Ron = 2 ohm) into 8 ohm: 1 A while the 1 kHz square gate is high
    # (first half of each period), E / (8 + Roff) while it is low.
    devices = [device("DC Voltage Source", "E", 0, 0, Voltage=10), device("Ground", "GND", 1, 30),
               device("Controlled Switch", "SW", 10, 0, Ron=2),
               device("Resistor", "R1", 20, 10, Value=8),
               device("Square Wave", "G", 10, -10, Amplitude=1, Frequency="1k", DutyCycle=0.5, Offset=0,
                      PhaseShift=0)]
    wires = [("E.P", "SW.P"), ("SW.N", "R1.P"), ("R1.N", "GND.G"), ("E.N", "GND.G"), ("G.Out", "SW.In")]
    time_s, values, _ = compile_design(design(devices, wires, 3.2e-3, ["R1 - Voltage"])).run(output_step_s=1e-4)
    phase = (time_s * 1e3) % 1
    on, off = (phase > 0.01) & (phase < 0.49), (phase > 0.51) & (phase < 0.99)
    assert on.sum() > 10 and off.sum() > 10
    np.testing.assert_allclose(values["R1 - Voltage"][on], 8.0, rtol=1e-9)
    np.testing.assert_allclose(values["R1 - Voltage"][off], 10 * 8 / (8 + R_OFF_OHM), rtol=1e-6)


def test_controlled_switch_rl_turn_on_time_constant():
    # Gate from a Step at 1 ms: i = I∞ + (i_off − I∞)·e^(−(t − 1 ms)(R + Ron)/L) after it, I∞ = E/(R + Ron),
    # from the current the open switch leaked, i_off = E/(R + Roff).
    e_v, r_ohm, ron_ohm, l_h = 12.0, 4.0, 0.5, 2e-3
    devices = [device("DC Voltage Source", "E", 0, 0, Voltage=e_v), device("Ground", "GND", 1, 30),
               device("Controlled Switch", "SW", 10, 0, Ron=ron_ohm),
               device("Inductor", "L1", 20, 10, Value=l_h, Iinit=0),
               device("Resistor", "R1", 30, 10, Value=r_ohm),
               device("Step", "G", 10, -10, InitialValue=0, FinalValue=1, StepTime="1m")]
    wires = [("E.P", "SW.P"), ("SW.N", "L1.P"), ("L1.N", "R1.P"), ("R1.N", "GND.G"), ("E.N", "GND.G"),
             ("G.Out", "SW.In")]
    time_s, values, _ = compile_design(design(devices, wires, 5e-3, ["L1 - Current"])).run(output_step_s=5e-5)
    after = time_s >= 1e-3
    tau = l_h / (r_ohm + ron_ohm)
    i_inf, i_off = e_v / (r_ohm + ron_ohm), e_v / (r_ohm + R_OFF_OHM)
    expected = i_inf + (i_off - i_inf) * np.exp(-(time_s[after] - 1e-3) / tau)
    np.testing.assert_allclose(values["L1 - Current"][after], expected, atol=1e-9)
    # Before the gate: the open switch's leakage, E / Roff at most.
    assert np.abs(values["L1 - Current"][~after]).max() < e_v / R_OFF_OHM


def test_dc_current_source_charges_a_parallel_rc():
    # 2 mA out of P (the engine's convention, circuit.py; not checked against SIMBA here) into R ∥ C: v = I·R·(1 − e^(−t/RC)), RC = 1 kohm · 1 µF = 1 ms.
    i_a, r_ohm, c_f = 2e-3, 1e3, 1e-6
    devices = [device("DC Current Source", "I1", 0, 0, Current=i_a), device("Ground", "GND", 1, 30),
               device("Resistor", "R1", 10, 0, Value=r_ohm), device("Capacitor", "C1", 20, 10, Value=c_f, Vinit=0)]
    wires = [("I1.P", "R1.P"), ("I1.P", "C1.P"), ("R1.N", "GND.G"), ("C1.N", "GND.G"), ("I1.N", "GND.G")]
    time_s, values, _ = compile_design(design(devices, wires, 5e-3, ["C1 - Voltage"])).run(output_step_s=1e-4)
    np.testing.assert_allclose(values["C1 - Voltage"], i_a * r_ohm * (1 - np.exp(-time_s / (r_ohm * c_f))),
                               atol=1e-12)


@pytest.mark.parametrize("vf_v, rd_ohm", [(0.7, 0.5), (2.0, 0.0)])
def test_diode_forward_voltage_and_resistance(vf_v, rd_ohm):
    # 10 V → Diode → 1 mH → 10 ohm: i = (E − Vf)/(R + Rd) · (1 − e^(−t (R + Rd)/L)).
    e_v, r_ohm, l_h = 10.0, 10.0, 1e-3
    devices = [device("DC Voltage Source", "E", 0, 0, Voltage=e_v), device("Ground", "GND", 1, 30),
               device("Diode", "D1", 10, 0, Vf=vf_v, Rd=rd_ohm),
               device("Inductor", "L1", 20, 0, Value=l_h, Iinit=0), device("Resistor", "R1", 30, 0, Value=r_ohm)]
    wires = [("E.P", "D1.Anode"), ("D1.Cathode", "L1.P"), ("L1.N", "R1.P"), ("R1.N", "GND.G"), ("E.N", "GND.G")]
    time_s, values, _ = compile_design(design(devices, wires, 1e-3, ["L1 - Current"])).run(output_step_s=1e-5)
    r_total = r_ohm + max(rd_ohm, 1e-6)  # an Rd of 0 conducts through the engine's 1 µohm minimum
    expected = (e_v - vf_v) / r_total * (1 - np.exp(-time_s * r_total / l_h))
    # The turn-on at t = 0 is an event located to ~1e-11 s: 2e-7 A at most on the first samples.
    np.testing.assert_allclose(values["L1 - Current"], expected, rtol=0, atol=5e-7)
    assert values["L1 - Current"][-1] == pytest.approx((e_v - vf_v) / r_total, rel=1e-4)


def test_diode_blocks_below_its_forward_voltage():
    # 0.5 V against Vf = 0.7 V: the diode stays off; only the off-resistance leaks.
    devices = [device("DC Voltage Source", "E", 0, 0, Voltage=0.5), device("Ground", "GND", 1, 30),
               device("Diode", "D1", 10, 0, Vf=0.7, Rd=0.1), device("Resistor", "R1", 30, 0, Value=10)]
    wires = [("E.P", "D1.Anode"), ("D1.Cathode", "R1.P"), ("R1.N", "GND.G"), ("E.N", "GND.G")]
    _, values, _ = compile_design(design(devices, wires, 1e-4, ["R1 - Voltage"])).run(output_step_s=1e-5)
    assert np.abs(values["R1 - Voltage"]).max() < 0.5 * 10 / R_OFF_OHM * 1.001


def test_sawtooth_wave_and_its_comparator_crossings():
    # Offset + Amplitude·frac(f t + PhaseShift/360): −1 + 4·frac(2 kHz·t + 0.25); a positive shift
    # advances the wave, as SIMBA's Sine Wave. Against 0.6 the comparator goes low where the ramp
    # passes it, t = (k + 0.4 − 0.25)/f, and high again at each drop, t = (k + 0.75)/f.
    f_hz, amplitude, offset, shift_deg, level = 2e3, 4.0, -1.0, 90.0, 0.6
    devices = [device("Sawtooth Wave", "SAW", 0, 0, Amplitude=amplitude, Frequency=f_hz, Offset=offset,
                      PhaseShift=shift_deg),
               device("Constant", "C", 0, 10, Value=level),
               device("Comparator", "COMP", 10, 4),
               device("Gain", "G", 10, 20, Value=1)]
    wires = [("C.Out", "COMP.In1"), ("SAW.Out", "COMP.In2"), ("SAW.Out", "G.In")]
    compiled = compile_design(design(devices, wires, 3e-3, ["G - Out", "COMP - Out"]))
    time_s, values, _ = compiled.run(output_step_s=1e-5)
    frac = (time_s * f_hz + shift_deg / 360) % 1
    away = (frac > 1e-6) & (frac < 1 - 1e-6)
    np.testing.assert_allclose(values["G - Out"][away], offset + amplitude * frac[away], atol=1e-9)
    time_s, values, _ = compiled.run(signals=["COMP - Out"])
    gate = values["COMP - Out"]
    falling = time_s[1:][(gate[:-1] > 0.5) & (gate[1:] < 0.5)]
    rising = time_s[1:][(gate[:-1] < 0.5) & (gate[1:] > 0.5)]
    crossing = (level - offset) / amplitude  # 0.4 of the ramp
    np.testing.assert_allclose(falling, (np.arange(falling.size) + crossing - 0.25) / f_hz, atol=1e-12)
    np.testing.assert_allclose(rising, (np.arange(rising.size) + 0.75) / f_hz, atol=1e-12)
    assert falling.size == 6 and rising.size == 6

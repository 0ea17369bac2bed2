"""Embedded engine against ngspice, closed loops included, to 1e-3 A RMS.

ngspice runs equivalent netlists written here, from SIMBA's semantics of each
block: the carrier comparator as a B-source step ``u(duty − carrier)`` driving
voltage-controlled switches (ngspice places a switching instant on its 10 ns
grid, not exactly: that, about 3e-4 A RMS, is most of the difference), the
continuous PI's integral as a current into a 1 F capacitor, the sampled PI
(the firmware C block of ``discrete_pi``) as track-and-hold pairs clocked at
16 kHz, the ideal diode as XSPICE's piecewise-linear ``sidiode``. The
embedded side runs our own ``simba_projects/dc_current_loop.jsimba`` designs
through the public API. A 5 % inductance error moves the closed-loop current
by about 0.1 A RMS, a hundred times the tolerance.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from cli_helpers import REPO
from embedded_designs import open_loop_leg
from simbaflow import compile_design, get_design, load_project
from simbaflow.simulate.engines.embedded.ngspice import ngspice_available, run_ngspice

pytestmark = pytest.mark.skipif(not ngspice_available(), reason="ngspice not installed (make system-deps)")

PROJECT = REPO / "simba_projects" / "dc_current_loop.jsimba"
#: The engine's ideal-switch resistances (its documented model: R_ON_MIN_OHM, R_OFF_OHM in circuit.py).
RON_OHM, ROFF_OHM = 1e-6, 1e6
#: The seed's leg and carrier (seed 002): 600 V, 6 mH, 30 ohm, 16 kHz.
E_V, L_H, R_OHM, FS_HZ = 600.0, 6e-3, 30.0, 16e3
TS_S = 1 / FS_HZ
STEP_S = 10e-9
#: Tolerance of the closed-loop comparisons (RMS over the run), A.
CLOSED_LOOP_RMS_A = 1e-3

_LEG = f"""VE e 0 DC {E_V}
VCAR car 0 PULSE(0 1 0 {TS_S / 2:.15g} {TS_S / 2:.15g} 1e-15 {TS_S:.15g})
BGH gh 0 V = u(V(d) - V(car))
BGL gl 0 V = 1 - V(gh)
S1 e sw gh 0 SMOD
S2 sw 0 gl 0 SMOD
VP sw nl 0
L1 nl n1 {L_H} IC=0
R1 n1 0 {R_OHM}
.model SMOD SW(VT=0.5 VH=0 RON={RON_OHM} ROFF={ROFF_OHM})
"""


def _reference(f_hz: float) -> str:
    # SIMBA's Square Wave iRef: 6 + 8 A for the first half period, then 6 A.
    return f"VREF iref 0 PULSE(14 6 {0.5 / f_hz:.15g} 1e-12 1e-12 1 2)\n"


def _compare(design_name: str, overrides: dict, netlist: str, end_s: float, method: str = "trap") -> tuple[float, np.ndarray]:
    deck = f"* {design_name}\n{netlist}.options noacct method={method}\n.tran {STEP_S} {end_s} 0 {STEP_S} UIC\n"
    spice_t, spice = run_ngspice(deck, ["i(vp)"])
    design = get_design(load_project(PROJECT), design_name)
    time_s, values, _ = compile_design(design).run(overrides, end_s, ["L1 - Current"], 1e-6)
    ours = values["L1 - Current"]
    theirs = np.interp(time_s, spice_t, spice["i(vp)"])
    return float(np.sqrt(np.mean((ours - theirs) ** 2))), ours


def test_continuous_pi_current_loop_matches_ngspice():
    # continuous_pi: duty = clamp(Kp·e + Ki·∫e + Vs/E, 0, 1), e = iRef − iL; the seed's Kp 0.14, Ki 250.
    # iRef at 240 Hz: start-up to 14 A (duty saturated at first), then the step down to 6 A at 2.08 ms.
    kp, ki, f_ref = 0.14, 250.0, 240.0
    netlist = _LEG + _reference(f_ref) + f"""BINT 0 xi I = {ki} * (V(iref) - I(VP))
CINT xi 0 1 IC=0
BD d 0 V = max(0, min(1, {kp} * (V(iref) - I(VP)) + V(xi) + V(n1) / {E_V}))
"""
    rms, ours = _compare("continuous_pi", {"PI": {"Kp": kp, "Ki": ki}, "iRef": {"Frequency": f_ref}}, netlist, 3e-3)
    assert ours.max() > 14.0 and ours[-1] == pytest.approx(6.0, abs=0.5)  # the run covers both steps
    assert rms < CLOSED_LOOP_RMS_A


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed (the C Code block needs it)")
def test_sampled_pi_current_loop_matches_ngspice():
    # discrete_pi: the firmware PI α(k) = clamp(α(k−1) + a1·e(k) + a0·e(k−1), −1, 1) at every
    # k·Ts (k ≥ 0), held between ticks, duty = clamp(α + Vs/E, 0, 1). In ngspice each state is a
    # track-and-hold pair: the master tracks during [k·Ts − 100 ns, k·Ts) and holds from k·Ts, the
    # slave copies it 100 ns later; the applied α is the slave's while the master tracks.
    a0, a1, f_ref = -0.1321875, 0.1478125, 240.0  # seed 002, Tustin at 16 kHz
    window, edge = 100e-9, 1e-12
    e0 = 14.0  # the error at t = 0 (iL = 0): the first sample
    alpha0 = max(-1.0, min(1.0, a1 * e0))
    netlist = _LEG + _reference(f_ref) + f"""VCA clka 0 PULSE(0 1 {TS_S - window:.15g} {edge} {edge} {window - 2 * edge:.15g} {TS_S:.15g})
VCB clkb 0 PULSE(0 1 {window:.15g} {edge} {edge} {window - 2 * edge:.15g} {TS_S:.15g})
BTA ta 0 V = max(-1, min(1, V(sa) + {a1} * (V(iref) - I(VP)) + {a0} * V(se)))
SWA ta ma clka 0 SHMOD
CMA ma 0 1u IC={alpha0}
BTE te 0 V = V(iref) - I(VP)
SWE te me clka 0 SHMOD
CME me 0 1u IC={e0}
BBA bma 0 V = V(ma)
SWSA bma sa clkb 0 SHMOD
CSA sa 0 1u IC={alpha0}
BBE bme 0 V = V(me)
SWSE bme se clkb 0 SHMOD
CSE se 0 1u IC={e0}
BAL al 0 V = u(V(clka) - 0.5) * V(sa) + (1 - u(V(clka) - 0.5)) * V(ma)
BD d 0 V = max(0, min(1, V(al) + V(n1) / {E_V}))
.model SHMOD SW(VT=0.5 VH=0 RON=1e-3 ROFF=1e12)
"""
    # Gear integration: the 1 ns track-and-hold time constants are stiff for the trapezoidal rule.
    overrides = {"a0": {"Value": a0}, "a1": {"Value": a1}, "delay": {"Value": 0}, "iRef": {"Frequency": f_ref}}
    rms, ours = _compare("discrete_pi", overrides, netlist, 3e-3, method="gear")
    assert ours.max() > 14.0 and ours[-1] == pytest.approx(6.0, abs=0.5)
    assert rms < CLOSED_LOOP_RMS_A


def test_diode_buck_in_discontinuous_conduction_matches_ngspice():
    # Open-loop diode buck at light load (the classic DCM case of test_embedded_analytic), from
    # its DCM output voltage, with a 10 µF capacitor so the output still moves.
    duty, e_v, l_h, r_ohm, f_hz, c_f, end_s = 0.3, 48.0, 100e-6, 50.0, 20e3, 10e-6, 1e-3
    k = 2 * l_h / (r_ohm / f_hz)
    vo = e_v * 2 / (1 + math.sqrt(1 + 4 * k / duty**2))
    period, edge = 1 / f_hz, 1e-9
    # The high side is on for [0, D·T/2) and (T(1 − D/2), T] (carrier below the duty); 1 ns edges
    # centred on those instants.
    delay, width = duty * period / 2 - edge / 2, (1 - duty) * period - edge
    deck = f"""* diode buck, DCM
VE e 0 DC {e_v}
VGH gh 0 PULSE(1 0 {delay:.12g} {edge} {edge} {width:.12g} {period:.12g})
S1 e sw gh 0 SMOD
ADF 0 sw DIDEAL
.model DIDEAL sidiode(Ron={RON_OHM} Roff={ROFF_OHM} Vfwd=0 Vrev=1e6)
L1 sw n1 {l_h} IC=0
R1 n1 0 {r_ohm}
C1 n1 0 {c_f} IC={vo}
.model SMOD SW(VT=0.5 VH=0 RON={RON_OHM} ROFF={ROFF_OHM})
.options noacct
.tran {STEP_S} {end_s} 0 {STEP_S} UIC
"""
    spice_t, spice = run_ngspice(deck, ["i(L1)", "v(n1)"])
    leg = open_loop_leg(duty, e_v, r_ohm, l_h, f_hz, end_s, synchronous=False, c_f=c_f, vinit_v=vo)
    time_s, values, _ = compile_design(leg).run(output_step_s=1e-7)
    il = values["L1 - Current"]
    # Discontinuous conduction: the current sits at zero for a good part of each period.
    assert np.mean(np.abs(il) < 1e-4) > 0.3
    rms_i = np.sqrt(np.mean((il - np.interp(time_s, spice_t, spice["i(L1)"])) ** 2))
    rms_v = np.sqrt(np.mean((values["R1 - Voltage"] - np.interp(time_s, spice_t, spice["v(n1)"])) ** 2))
    assert rms_i < 1e-4   # measured 1.3e-5 A
    assert rms_v < 1e-3   # measured 1e-4 V

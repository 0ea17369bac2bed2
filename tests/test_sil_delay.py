"""Computation delay of the SIMBA C Code block (firmware/sil/simba_pi_block.c, input [4]).

The designs ``discrete_pi`` and ``power_flow`` feed the block's delay from the
constant ``delay``. Runs of ``discrete_pi`` on the embedded engine are checked
against a numpy model of the sampled loop written here, independently of the
block and of :mod:`simbaflow.controller_model`.

The runs start from 6 A (``L1.Iinit``) with a 1 A reference step (``iRef``
7 A for the first 5 ms), so the duty α + Vs/E stays inside 0..1: the leg then
applies E·α on average and the sampled loop is linear, the loop
``tests/test_candidates.py::_simulate_loop`` models.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simbaflow import firmware_check, jsimba

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"
BLOCK = ROOT / "firmware" / "sil" / "simba_pi_block.c"
PI_DIR = ROOT / "firmware" / "lib" / "pi_controller"
#: The embedded engine's C Code interface (SNAPSHOT_CREATE = 0 ... SNAPSHOT_DELETE = 3).
SIMBA_HEADER_DIR = ROOT / "src" / "simbaflow" / "data"

# Seed 002: Kp = 0.14, Ki = 250, Tustin at 16 kHz.
A0, A1 = -0.1321875, 0.1478125
TS_S = 1 / 16e3
L_H, R_OHM, E_V = 6e-3, 30.0, 600.0
I0_A, STEP_A = 6.0, 1.0
N_TICKS = 48                      # 3 ms: the step response, before iRef falls at 5 ms
SIGNALS = ["L1 - Current", "iRef - Out", "duty_cycle - Out", "pi_controller - outputs[0]"]


def _model_loop(delay: int, n: int = N_TICKS) -> np.ndarray:
    """Current above I0 at each tick: recurrence, one-period hold, E·α/L integrated over Ts."""
    i, alpha, e_prev = 0.0, 0.0, 0.0
    pending = [0.0] * delay
    out = []
    for _ in range(n):
        out.append(i)
        e = STEP_A - i
        alpha = min(max(alpha + A1 * e + A0 * e_prev, -1.0), 1.0)
        e_prev = e
        pending.append(alpha)
        i += E_V * TS_S / L_H * pending.pop(0)
    return np.array(out)


def _law(errors: np.ndarray) -> np.ndarray:
    """α(k) of the delay-0 law for ``errors``, in float32 as the block computes it."""
    a0, a1 = np.float32(A0), np.float32(A1)
    alpha, e_prev, out = np.float32(0), np.float32(0), []
    for e in np.asarray(errors, dtype=np.float32):
        alpha = np.float32(np.clip((alpha + a1 * e) + a0 * e_prev, np.float32(-1), np.float32(1)))
        e_prev = e
        out.append(alpha)
    return np.array(out, dtype=np.float32)


@pytest.fixture(scope="module")
def discrete_pi():
    from simbaflow.engines.embedded import compile_design

    return compile_design(jsimba.get_design(jsimba.load_project(PROJECT), "discrete_pi"))


@pytest.fixture(scope="module")
def runs(discrete_pi):
    """``{delay: {signal: value at each tick}}``, the value just after the tick's event."""
    out = {}
    for delay in (0, 1):
        t, values, _ = discrete_pi.run(
            {"delay": {"Value": delay}, "a0": {"Value": A0}, "a1": {"Value": A1},
             "L1": {"Iinit": I0_A}, "iRef": {"Offset": I0_A, "Amplitude": STEP_A}},
            end_time_s=N_TICKS * TS_S, signals=SIGNALS,
        )
        # Every event instant is recorded before and after; the last one at kTs is after the tick.
        idx = [int(np.flatnonzero(np.abs(t - k * TS_S) < 1e-12)[-1]) for k in range(N_TICKS)]
        out[delay] = {name: values[name][idx] for name in SIGNALS}
    return out


def test_the_design_has_no_delay_unless_set():
    design = jsimba.get_design(jsimba.load_project(PROJECT), "discrete_pi")
    assert jsimba.device_parameters(jsimba.device_by_name(design, "delay"))["Value"] == "0"


def test_one_sample_of_delay_overshoots_as_the_sampled_loop_model(runs):
    sim = {d: runs[d]["L1 - Current"] - I0_A for d in (0, 1)}
    model = {d: _model_loop(d) for d in (0, 1)}
    overshoot = {d: (sim[d].max() / STEP_A - 1) * 100 for d in (0, 1)}
    model_overshoot = {d: (model[d].max() / STEP_A - 1) * 100 for d in (0, 1)}
    # The model: 11.2 % without delay, 121.1 % with one sample (the README's seed numbers).
    assert model_overshoot[0] == pytest.approx(11.21, abs=0.01)
    assert model_overshoot[1] == pytest.approx(121.10, abs=0.01)
    # The switched leg is not exactly a zero-order hold: ripple moves the samples
    # by up to 0.5 % (no delay) and 1.9 % (delay) of the step.
    for d in (0, 1):
        assert np.max(np.abs(sim[d] - model[d])) < 0.03 * STEP_A
        assert overshoot[d] == pytest.approx(model_overshoot[d], abs=1.0)
    assert overshoot[1] > 100 > 20 > overshoot[0]
    # The delay shows from the first tick: α(0) is applied over [Ts, 2Ts), not [0, Ts).
    assert sim[0][1] == pytest.approx(E_V * TS_S / L_H * A1, rel=0.01)
    assert abs(sim[1][1]) < 0.01 * STEP_A


@pytest.mark.parametrize("delay", [0, 1])
def test_applied_duty_is_the_law_of_the_previous_tick_when_delayed(runs, delay):
    run = runs[delay]
    current = run["L1 - Current"]
    errors = run["iRef - Out"] - current
    assert errors[0] == STEP_A                          # the block's first sample, at t = 0
    law = _law(errors)
    expected = law if delay == 0 else np.concatenate([[np.float32(0)], law[:-1]])
    alpha = run["pi_controller - outputs[0]"]
    # The block returns a float32 α; the model rounds after each operation as C does.
    assert np.max(np.abs(alpha - expected)) <= 2 * np.spacing(np.float32(0.2))
    # The duty the leg applies at tick k: α + Vs/E with Vs = R·i (no limiting: 0.21..0.51).
    duty = run["duty_cycle - Out"]
    assert 0.0 < duty.min() and duty.max() < 1.0
    assert np.max(np.abs(duty - (expected + R_OHM * current / E_V))) < 1e-6
    # The other hypothesis is far off, so the comparison tells the two apart.
    other = np.concatenate([[np.float32(0)], law[:-1]]) if delay == 0 else law
    assert np.max(np.abs(duty - (other + R_OHM * current / E_V))) > 0.1


# --------------------------------------------------------------------------- the adapter alone


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    """The adapter built as its own translation unit, linked with pi_controller.c, warnings as errors."""
    out = tmp_path_factory.mktemp("sil") / "libblock.so"
    subprocess.run(
        ["gcc", *firmware_check.COMMON_CFLAGS, "-fPIC", "-shared", "-I", str(PI_DIR), "-I", str(SIMBA_HEADER_DIR),
         str(BLOCK), str(PI_DIR / "pi_controller.c"), "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    lib = ctypes.CDLL(str(out))
    lib.calculate_outputs.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                                      ctypes.c_double, ctypes.c_double]
    lib.snapshot.restype = ctypes.c_void_p
    lib.snapshot.argtypes = [ctypes.c_int, ctypes.c_void_p]
    return lib


def _ticks(lib, errors, delay):
    """Outputs for one clock tick per error (the first at time 0), from initialize()."""
    lib.initialize()
    out = (ctypes.c_double * 1)()
    alphas = []
    for k, e in enumerate(errors):
        lib.calculate_outputs(out, (ctypes.c_double * 5)(1.0, e, A0, A1, delay), k * TS_S, TS_S)
        alphas.append(out[0])
    return np.array(alphas)


ERRORS = [1.0, 0.4, -0.3, 0.2, 0.0]


@pytest.mark.parametrize("delay, same_as", [(0.0, 0), (0.4, 0), (-1.0, 0), (math.nan, 0), (1.0, 1), (0.6, 1), (2.0, 1)])
def test_delay_input_is_rounded_to_zero_or_one_sample(block, delay, same_as):
    law = _law(ERRORS).astype(float)
    want = law if same_as == 0 else np.concatenate([[0.0], law[:-1]])
    assert _ticks(block, ERRORS, delay).tolist() == want.tolist()


def test_delayed_output_holds_between_ticks_and_snapshots_keep_the_register(block):
    out = (ctypes.c_double * 1)()

    def call(clock, error, t):
        block.calculate_outputs(out, (ctypes.c_double * 5)(clock, error, A0, A1, 1.0), t, 1e-6)
        return out[0]

    block.initialize()
    assert call(0.0, 3.0, 0.0) == 0.0                       # time 0 samples; α(0) waits a period
    assert call(0.0, 9.0, 1e-6) == 0.0                      # no clock: held
    snap = block.snapshot(0, None)                          # SNAPSHOT_CREATE (embedded header)
    first = call(1.0, 2.0, TS_S)
    assert first == pytest.approx(A1 * 3.0, rel=1e-6)       # α(0), computed from e(0) = 3
    second = call(1.0, 0.0, 2 * TS_S)
    assert second == pytest.approx(A1 * 3.0 + A1 * 2.0 + A0 * 3.0, rel=1e-6)   # α(1)
    block.snapshot(2, snap)                                 # SNAPSHOT_LOAD: back before the first tick
    assert call(0.0, 0.0, 7e-5) == 0.0                      # the restored output
    assert call(1.0, 2.0, TS_S) == first                    # same register and state, same results
    assert call(1.0, 0.0, 2 * TS_S) == second
    block.snapshot(3, snap)                                 # SNAPSHOT_DELETE

"""Computation delay of the SIMBA C Code block (firmware/sil/simba_pi_block.c, input [4]).

The designs ``discrete_pi`` and ``power_flow`` feed the block's delay from the
constant ``delay``. Runs of ``discrete_pi`` on the embedded engine are checked
against a numpy model of the sampled loop written here, independently of the
block and of :mod:`simbaflow.promote.pi_model`.

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

from simbaflow.promote import pi_check as firmware_check

from simbaflow.simulate import jsimba

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"
BLOCK = ROOT / "firmware" / "sil" / "simba_pi_block.c"
PI_DIR = ROOT / "firmware" / "lib" / "pi_controller"
#: The embedded engine's C Code interface (SNAPSHOT_CREATE = 0 ... SNAPSHOT_DELETE = 3).
SIMBA_HEADER_DIR = ROOT / "src" / "simbaflow" / "simulate" / "data"

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
    from simbaflow.simulate.engines.embedded import compile_design

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


# --------------------------------------------------------------------------- firmware check


def test_firmware_check_replays_the_block_with_a_delay(tmp_path):
    lib = firmware_check.build_simba_block(ROOT / "firmware", tmp_path)
    if lib is None:
        pytest.skip("aesim.simba's simba_library.h not installed")
    law = _law(ERRORS).astype(float)
    assert firmware_check.replay_simba_block(lib, ERRORS, A0, A1, TS_S).tolist() == law.tolist()
    assert firmware_check.replay_simba_block(lib, ERRORS, A0, A1, TS_S, 1).tolist() == [0.0, *law[:-1]]


def test_run_errors_reports_the_runs_delay_and_refuses_another(tmp_path):
    from simbaflow.simulate.engines.base import RunResult
    from simbaflow.simulate.runio import write_run_parquet

    result = RunResult(time_s=np.array([0.0, TS_S]),
                       signals={"L1 - Current": np.array([0.0, 1.0]), "iRef - Out": np.array([14.0, 14.0])},
                       status="ok", engine="embedded", engine_version="0.1.0", wall_time_s=0.1)
    ab = {"a0": {"Value": A0}, "a1": {"Value": A1}}
    write_run_parquet(tmp_path / "d1.parquet", result, {"status": "ok", "overrides": {**ab, "delay": {"Value": 1.0}}})
    write_run_parquet(tmp_path / "old.parquet", result, {"status": "ok", "overrides": ab})
    args = (TS_S, "L1 - Current", "iRef - Out", A0, A1)
    assert firmware_check.run_errors(tmp_path / "d1.parquet", *args, delay_samples=1)["delay_samples"] == 1
    assert firmware_check.run_errors(tmp_path / "old.parquet", *args, delay_samples=1)["delay_samples"] == 0
    with pytest.raises(firmware_check.FirmwareCheckError, match=r"the run used delay = 1.0, not .* delay_samples 0"):
        firmware_check.run_errors(tmp_path / "d1.parquet", *args, delay_samples=0)


def _write_delayed_run(root: Path, delayed_duty: bool) -> Path:
    """A ``discrete_pi`` run of the seed gains made with ``delay.Value`` 1, as the sweep stores it.

    Current and reference: firmware_check's numpy loop with one sample of delay.
    Duty: α of the previous sample (``delayed_duty``) or of the same one, plus R·i/E.
    """
    from firmware_helpers import SEED_CANDIDATE
    from simbaflow.simulate.engines.base import RunResult
    from simbaflow.design.plants import Plant
    from simbaflow.simulate.runio import write_run_parquet

    sim = firmware_check.simulated_errors(Plant("voltage_compensated_inductor", L_H, R_OHM, E_V), A0, A1, TS_S,
                                          -1.0, 1.0, delay_samples=1)
    law = _law(sim["error"]).astype(float)
    alpha = np.concatenate([[0.0], law[:-1]]) if delayed_duty else law
    duty = np.clip(alpha + R_OHM * sim["current"] / E_V, 0.0, 1.0)
    result = RunResult(time_s=np.arange(sim["error"].size) * TS_S,
                       signals={"L1 - Current": sim["current"], "iRef - Out": sim["reference"], "duty_cycle - Out": duty},
                       status="ok", engine="embedded", engine_version="test", wall_time_s=0.0)
    path = root / "results" / "dc_current_loop" / "runs" / SEED_CANDIDATE["candidate_id"] / "discrete_pi.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    overrides = {"a0": {"Value": A0}, "a1": {"Value": A1}, "delay": {"Value": 1.0}}
    write_run_parquet(path, result, {"status": "ok", "overrides": overrides})
    return path


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("delayed_duty", [True, False])
def test_firmware_check_matches_a_delayed_runs_duty_only_with_the_delay(tmp_path, delayed_duty):
    from firmware_helpers import make_project, read_selection
    from simbaflow.promote.pi_header import header_fields, render_gains_header

    sel_path, fw = make_project(tmp_path, delay_samples=1)
    run = _write_delayed_run(tmp_path, delayed_duty)
    sel = read_selection(sel_path)
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(sel)))
    if not delayed_duty:
        with pytest.raises(firmware_check.FirmwareCheckError, match="the run did not execute this controller"):
            firmware_check.run_check(fw, tmp_path, selection=sel)
        return
    report = firmware_check.run_check(fw, tmp_path, selection=sel)
    assert f"stimulus: 160 samples from simulated run {run}" in report.lines
    assert any(line.startswith("SIMBA C Code block (header+source+adapter, delay 1)") for line in report.lines)
    assert any(line.startswith("simulated run: recorded duty = clamp(alpha + Vs/E)") for line in report.lines)

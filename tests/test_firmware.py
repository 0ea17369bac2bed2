"""Header rendering, and the compiled controller against the Python model (needs gcc)."""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from firmware_helpers import FIRMWARE, make_project, read_selection, seed_selection
from simbaflow.promote import pi_check as firmware_check
from simbaflow.promote.pi_model import (
    PiFixedParams, pi_fixed_params, pi_fixed_response, pi_float32_response, ulp_distance,
)
from simbaflow.promote.pi_header import (
    c_float_literal, diff_fields, header_fields, read_gains_header, render_gains_header,
)
from simbaflow.core.fixedpoint import FixedPointOverflow, QFormat

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc not installed (make system-deps)")


def test_float_literals_parse_back_to_the_same_float32():
    for v in (-0.1321875, 0.1478125, 6.25e-05, 250.0, 0.0, 1.0, 1e-30):
        text = c_float_literal(v, "v")
        assert text.endswith("f") or text.endswith("f)")
        assert np.float32(float(text.strip("()").rstrip("f"))) == np.float32(v)
    assert c_float_literal(-0.5, "v") == "(-0.5f)"
    assert c_float_literal(250, "v") == "250.0f"


def test_header_states_the_seed_numbers_and_provenance():
    fields = header_fields(seed_selection("ab" * 32))
    text = render_gains_header(fields)
    assert "#define CONTROLLER_GAINS_A0_Q (-8663)" in text
    assert "#define CONTROLLER_GAINS_A1_Q 9687" in text
    assert "#define CONTROLLER_GAINS_OUT_MAX_Q 65536" in text
    assert "#define CONTROLLER_GAINS_TS_NS 62500" in text
    assert "#define CONTROLLER_GAINS_Q_FORMAT \"Q16.16\"" in text
    # Ti = Kp/Ki = 0.14/250 = 5.6e-4 s for OwnTech's PidParams.
    assert float(fields["CONTROLLER_GAINS_PID_TI_S"].rstrip("f")) == pytest.approx(5.6e-4, rel=1e-7)
    for line in ("study:             dc_current_loop", "candidate:         xi1p4-wn5000-fs16000-tustin-d0",
                 "spec_sha256:       " + "ab" * 32, "engine:            analytic",
                 "simbaflow_version: 0.1.0", "git_commit:        unknown", "date:              2026-11-22T09:00:00Z"):
        assert f" * {line}\n" in text
    assert read_gains_header(text) == fields


def test_header_is_a_pure_function_of_the_selection(monkeypatch, tmp_path):
    import copy
    import time

    sel = seed_selection("cd" * 32)
    first = render_gains_header(header_fields(copy.deepcopy(sel)))
    # Another clock, time zone and working directory change nothing ...
    monkeypatch.setattr(time, "time", lambda: 4102444800.0)  # 2100-01-01
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    monkeypatch.chdir(tmp_path)
    time.tzset()
    try:
        assert render_gains_header(header_fields(copy.deepcopy(sel))) == first
    finally:
        monkeypatch.undo()
        time.tzset()
    # ... while the selection's own date is the only line another date changes.
    sel["provenance"]["created_utc"] = "2031-02-03T04:05:06Z"
    changed = set(first.splitlines()) ^ set(render_gains_header(header_fields(sel)).splitlines())
    assert changed == {" * date:              2026-11-22T09:00:00Z", " * date:              2031-02-03T04:05:06Z"}


def test_header_refuses_an_overflowing_coefficient():
    sel = seed_selection("00" * 32)
    sel["candidate"]["a1"] = 40000.0
    with pytest.raises(FixedPointOverflow, match="a1"):
        header_fields(sel)


def test_diff_names_old_and_new_values():
    sel = seed_selection("00" * 32)
    old = header_fields(sel)
    sel["candidate"].update(kp=0.09, overshoot_pct=8.25)
    lines = diff_fields(old, header_fields(sel))
    assert "CONTROLLER_GAINS_KP: 0.140000001f -> 0.0900000036f" in lines
    assert "overshoot_pct: 5.1 -> 8.25" in lines
    assert not any(line.startswith("study") for line in lines)
    assert diff_fields(old, old) == []


# --------------------------------------------------------------------------- compiled C

@pytest.fixture(scope="module")
def seed_build(tmp_path_factory):
    """The seed header promoted into a copy of the firmware, built for the host."""
    root = tmp_path_factory.mktemp("fw")
    sel_path, fw = make_project(root)
    sel = read_selection(sel_path)
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(sel)))
    return fw, firmware_check.build_host_library(fw, fw / "build"), sel


@needs_gcc
def test_compiled_fixed_point_is_bit_exact_on_extreme_sequences(seed_build):
    fw, lib, _ = seed_build
    rng = np.random.default_rng(2026)
    errors_q = np.concatenate([
        rng.integers(-(40 << 16), 40 << 16, size=2000),            # saturates both ways, often
        [-(1 << 31), (1 << 31) - 1, -(1 << 31), 0, 1, -1, 32768, -32768],  # int32 ends, rounding ties
        rng.integers(-300, 300, size=500),                           # small errors: rounding dominates
    ]).astype(np.int64)
    got = firmware_check.replay_fixed(lib, errors_q, 0, 65536)
    want = pi_fixed_response(errors_q, pi_fixed_params(-0.1321875, 0.1478125, 0.0, 1.0, QFormat(32, 16)))
    assert np.array_equal(got, want)
    assert got.min() == 0 and got.max() == 65536    # both bounds reached


@needs_gcc
def test_compiled_float_is_within_one_ulp_of_the_model(seed_build):
    fw, lib, _ = seed_build
    errors = np.random.default_rng(7).normal(0.0, 8.0, size=3000)
    got = firmware_check.replay_float(lib, errors, 0.0, 1.0)
    want = pi_float32_response(errors, -0.1321875, 0.1478125, 0.0, 1.0)
    assert ulp_distance(got, want).max() <= 1
    assert 0.0 < float(np.median(got)) < 1.0


@needs_gcc
def test_fixed_point_with_full_range_bounds_and_int32_min_coefficient(tmp_path):
    """INT32_MIN coefficients and errors do not overflow the int64 sum (header says so)."""
    p = PiFixedParams(a0=-(1 << 31), a1=-(1 << 31), out_min=-(1 << 31), out_max=(1 << 31) - 1, frac_bits=31)
    src = tmp_path / "drive.c"
    src.write_text(
        '#include "pi_controller.h"\n'
        "void run(const int32_t *e, int32_t *o, int n);\n"
        "void run(const int32_t *e, int32_t *o, int n) {\n"
        "  const pi_controller_fixed_params_t p = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MAX, 31};\n"
        "  pi_controller_fixed_t pi; pi_controller_fixed_init(&pi, &p);\n"
        "  for (int k = 0; k < n; k++) o[k] = pi_controller_fixed_calculate(&pi, e[k]);\n}\n")
    lib = tmp_path / "libdrive.so"
    subprocess.run(["gcc", *firmware_check.COMMON_CFLAGS, "-fPIC", "-shared", "-I", str(FIRMWARE / "lib/pi_controller"),
                    str(src), str(FIRMWARE / "lib/pi_controller/pi_controller.c"), "-o", str(lib)], check=True)
    errors = np.array([-(1 << 31), -(1 << 31), (1 << 31) - 1, 12345, -(1 << 31)], dtype=np.int32)
    out = np.empty_like(errors)
    ctypes.CDLL(str(lib)).run(errors.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                              out.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), len(errors))
    assert out.tolist() == pi_fixed_response(errors, p).tolist()


@needs_gcc
def test_simba_block_holds_between_clock_ticks_and_restores_snapshots(seed_build, tmp_path):
    fw, _, _ = seed_build
    lib_path = firmware_check.build_simba_block(fw, tmp_path)
    if lib_path is None:
        pytest.skip("aesim.simba's simba_library.h not installed")
    lib = ctypes.CDLL(str(lib_path))
    lib.calculate_outputs.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                                      ctypes.c_double, ctypes.c_double]
    lib.snapshot.restype = ctypes.c_void_p
    lib.snapshot.argtypes = [ctypes.c_int, ctypes.c_void_p]
    out = (ctypes.c_double * 1)()

    def step(clock, error, t):
        lib.calculate_outputs(out, (ctypes.c_double * 5)(clock, error, -0.1321875, 0.1478125, 0.0), t, 1e-6)
        return out[0]

    lib.initialize()
    assert step(0.0, 3.0, 0.0) == pytest.approx(0.1478125 * 3, rel=1e-6)   # time 0 acts without a clock
    assert step(0.0, 9.0, 1e-6) == pytest.approx(0.1478125 * 3, rel=1e-6)  # no clock: output held
    snap = lib.snapshot(1, None)                                            # SNAPSHOT_CREATE
    after = step(1.0, 2.0, 6.25e-5)
    assert after == pytest.approx(0.1478125 * 3 + 0.1478125 * 2 - 0.1321875 * 3, rel=1e-6)
    lib.snapshot(3, snap)                                                   # SNAPSHOT_LOAD
    assert step(0.0, 0.0, 7e-5) == pytest.approx(0.1478125 * 3, rel=1e-6)
    assert step(1.0, 2.0, 1.25e-4) == after                                 # same state, same result
    lib.snapshot(4, snap)                                                   # SNAPSHOT_DELETE


@needs_arm
def test_cross_compiled_control_path_has_no_double_helpers(seed_build):
    fw, _, _ = seed_build
    objects = firmware_check.cross_compile(fw, fw / "build")
    facts = firmware_check.object_facts(objects["pi_controller"])
    assert facts["undefined"] == []
    assert facts["functions"]["pi_controller_calculate"]["calls"] == []
    assert facts["functions"]["pi_controller_calculate"]["fpu"] > 0      # runs on the FPU
    assert 0 < facts["text"] < 2048


@needs_arm
def test_double_arithmetic_in_the_module_fails_the_check(tmp_path):
    sel_path, fw = make_project(tmp_path)
    src = fw / "lib" / "pi_controller" / "pi_controller.c"
    # A double multiply that leaves every output unchanged (out_min = 0), so only
    # the symbol check can catch it. 0.1 has no exact float, so GCC cannot
    # narrow it to single precision; the casts keep it legal under -Werror.
    text = src.read_text()
    assert "    pi->error_prev = 0.0f;\n" in text
    src.write_text(text.replace("    pi->error_prev = 0.0f;\n",
                                "    pi->error_prev = (float)((double)pi->params.out_min * 0.1);\n", 1))
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(read_selection(sel_path))))
    with pytest.raises(firmware_check.FirmwareCheckError, match=r"pi_controller.o calls double-precision helpers: .*__aeabi_d"):
        firmware_check.run_check(fw, tmp_path)


def test_simulated_errors_track_the_seed_reference():
    from simbaflow.design.plants import Plant

    plant = Plant("voltage_compensated_inductor", 6e-3, 30.0, 600.0)
    stim = firmware_check.simulated_errors(plant, -0.1321875, 0.1478125, 6.25e-5, -1.0, 1.0)
    errors, ref = stim["error"], stim["reference"]
    assert errors.size == 160
    assert ref[0] == pytest.approx(14.0) and ref[-1] == pytest.approx(6.0)   # SIMBA's 14 A then 6 A
    assert errors[0] == pytest.approx(14.0)                                  # starts from 0 A
    assert abs(errors[79]) < 0.05 and abs(errors[-1]) < 0.05                 # settles on both levels
    assert errors[80] == pytest.approx(-8.0, abs=0.05)                       # 14 A → 6 A step
    # α bounds follow the compensation: duty 0..1 means α in −R·i/E .. 1 − R·i/E.
    assert stim["alpha_max"][80] == pytest.approx(1 - 30 * 14 / 600, abs=1e-4)
    assert stim["alpha_min"][80] == pytest.approx(-30 * 14 / 600, abs=1e-4)
    # With α kept at 0..1 the compensated leg cannot bring the current down.
    stuck = firmware_check.simulated_errors(plant, -0.1321875, 0.1478125, 6.25e-5, 0.0, 1.0)
    assert stuck["error"][-1] == pytest.approx(-8.0, abs=0.01)


def test_run_parquet_is_sampled_at_the_controller_instants(tmp_path):
    import pandas as pd

    t = np.array([0.0, 1e-5, 6.25e-5, 7e-5, 1.25e-4, 1.3e-4])
    current = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    pd.DataFrame({"time_s": t, "L1 - Current": current, "iRef - Out": np.full(6, 14.0)}).to_parquet(tmp_path / "r.parquet")
    run = firmware_check.run_errors(tmp_path / "r.parquet", 6.25e-5, "L1 - Current", "iRef - Out")
    assert run["error"].tolist() == [14.0, 13.0, 12.0]
    assert run["current"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(firmware_check.FirmwareCheckError, match="missing 'iL_ref - Out'"):
        firmware_check.run_errors(tmp_path / "r.parquet", 6.25e-5, "L1 - Current", "iL_ref - Out")


def test_run_made_with_other_coefficients_is_refused(tmp_path):
    from simbaflow.simulate.engines.base import RunResult
    from simbaflow.simulate.runio import write_run_parquet

    result = RunResult(time_s=np.array([0.0, 6.25e-5]),
                       signals={"L1 - Current": np.array([0.0, 1.0]), "iRef - Out": np.array([14.0, 14.0])},
                       status="ok", engine="embedded", engine_version="0.1.0", wall_time_s=0.1)
    write_run_parquet(tmp_path / "run.parquet", result,
                      {"status": "ok", "overrides": {"a0": {"Value": -0.07}, "a1": {"Value": 0.0739}}})
    ok = firmware_check.run_errors(tmp_path / "run.parquet", 6.25e-5, "L1 - Current", "iRef - Out", -0.07, 0.0739)
    assert ok["error"].tolist() == [14.0, 13.0]
    with pytest.raises(firmware_check.FirmwareCheckError, match=r"the run used a0 = -0.07, not the promoted -0.1321875"):
        firmware_check.run_errors(tmp_path / "run.parquet", 6.25e-5, "L1 - Current", "iRef - Out", -0.1321875, 0.0739)


@needs_arm
def test_check_fails_when_the_header_does_not_say_what_the_selection_says(tmp_path):
    sel_path, fw = make_project(tmp_path)
    sel = read_selection(sel_path)
    edited = read_selection(sel_path)
    edited["candidate"]["a1"] = 0.1478125 + 2 ** -16          # one Q16.16 step more: 9688
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(edited)))
    with pytest.raises(firmware_check.FirmwareCheckError, match="fixed-point C output differs from the Python model"):
        firmware_check.run_check(fw, tmp_path, selection=sel)


@needs_arm
def test_firmware_check_command_uses_the_study_selection(tmp_path, capsys, monkeypatch):
    from simbaflow.cli import main

    sel_path, fw = make_project(tmp_path)
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(read_selection(sel_path))))
    monkeypatch.chdir(tmp_path)
    main(["firmware-check"])
    out = capsys.readouterr().out
    assert "model values from selection xi1p4-wn5000-fs16000-tustin-d0" in out
    assert "numpy closed loop of the design/dc_current_loop.yaml plant" in out
    assert "pi_controller.o: text " in out and "firmware check passed" in out


@pytest.mark.parametrize("symbol, is_double", [
    ("__aeabi_dadd", True), ("__aeabi_dmul", True), ("__aeabi_f2d", True), ("__aeabi_d2f", True),
    ("__aeabi_i2d", True), ("__adddf3", True), ("__extendsfdf2", True), ("__truncdfsf2", True),
    ("__aeabi_fmul", False), ("__aeabi_ldivmod", False), ("__aeabi_llsr", False), ("__aeabi_idiv", False),
    ("memcpy", False), ("pi_controller_init", False),
])
def test_double_helper_pattern(symbol, is_double):
    assert bool(firmware_check.DOUBLE_HELPER.match(symbol)) is is_double


@needs_arm
def test_committed_header_passes_the_firmware_check(tmp_path):
    """What `make firmware-check` runs, on the repository's promoted header (built in a copy)."""
    fw = tmp_path / "firmware"
    for sub in ("lib", "sil", "host_check", "include"):
        shutil.copytree(FIRMWARE / sub, fw / sub)
    fields = read_gains_header((fw / "include" / "controller_gains.h").read_text())
    report = firmware_check.run_check(fw, FIRMWARE.parent)
    assert any(f"controller: {fields['candidate']}" in line for line in report.lines)
    assert any("samples bit-exact with the Python model" in line for line in report.lines)


@needs_arm
def test_header_without_extern_c_fails_the_cxx_link_check(tmp_path):
    sel_path, fw = make_project(tmp_path)
    h = fw / "lib" / "pi_controller" / "pi_controller.h"
    h.write_text(h.read_text().replace('extern "C" {', "").replace("#ifdef __cplusplus\n}\n#endif", ""))
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(read_selection(sel_path))))
    with pytest.raises(firmware_check.FirmwareCheckError, match=r"pi_check_cxx.o refers to C\+\+-mangled"):
        firmware_check.run_check(fw, tmp_path)


@needs_arm
def test_check_replays_the_candidates_simulated_run_and_matches_its_duty(tmp_path):
    from firmware_helpers import write_seed_run

    sel_path, fw = make_project(tmp_path)
    run = write_seed_run(tmp_path)
    sel = read_selection(sel_path)
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(sel)))
    report = firmware_check.run_check(fw, tmp_path, selection=sel)
    # 10 ms of the embedded engine's discrete_pi: the ticks k·Ts, k = 0..160.
    assert f"stimulus: 161 samples from simulated run {run}" in report.lines
    assert any(line.startswith("simulated run: recorded duty = clamp(alpha + Vs/E)") for line in report.lines)


@needs_arm
def test_a_run_that_did_not_execute_this_controller_fails_the_check(tmp_path):
    from firmware_helpers import write_seed_run

    sel_path, fw = make_project(tmp_path)
    write_seed_run(tmp_path, duty_offset=1e-4)
    sel = read_selection(sel_path)
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(sel)))
    with pytest.raises(firmware_check.FirmwareCheckError, match="the run did not execute this controller"):
        firmware_check.run_check(fw, tmp_path, selection=sel)

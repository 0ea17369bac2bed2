"""Firmware PR controller: compiled C against the float32 model, the transfer function, and the M4F build."""

from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from simbaflow.promote import pr_model

from simbaflow.design import realisations
from simbaflow.promote.pr_header import render_ac_gains_header
from simbaflow.promote.pr_model import F32

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
SOURCES = [FW / "lib/pr_controller/pr_controller.c", FW / "host_check/pr_check.c"]
INCLUDES = ["-I", str(FW / "lib/pr_controller"), "-I", str(FW / "include")]
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-ffp-contract=off", "-O2"]
TS_S, W0 = 1.0e-4, 2 * math.pi * 50
#: libgcc/AEABI double-precision helpers (``__aeabi_dmul``, ``__aeabi_f2d``, ``__muldf3``...).
DOUBLE_HELPER = re.compile(r"^(__aeabi_(d[a-z0-9]*|[a-z0-9]*2d)|__\w*df\w*)$")

FloatPtr = ctypes.POINTER(ctypes.c_float)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing: `make system-deps` installs the tools the firmware checks need")
    out = tmp_path_factory.mktemp("pr") / "libpr_check.so"
    subprocess.run(["gcc", *CFLAGS, "-shared", "-fPIC", *INCLUDES, *map(str, SOURCES), "-lm", "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(out))


def _f32(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32)


def _run_c(lib, params: pr_model.PrParams, errors: np.ndarray) -> np.ndarray:
    p = _f32([params.kp, params.kr, params.b0, params.b1, params.a1, params.out_min, params.out_max])
    e = _f32(errors)
    out = np.zeros_like(e)
    rc = lib.pr_check_run(p.ctypes.data_as(FloatPtr), e.ctypes.data_as(FloatPtr), out.ctypes.data_as(FloatPtr),
                          ctypes.c_size_t(len(e)))
    assert rc == 0
    return out


def _errors(n: int = 4000, seed: int = 7) -> np.ndarray:
    """A 50 Hz error with harmonics, noise and two large steps that drive the output into its bounds."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * TS_S
    e = 2.0 * np.sin(W0 * t) + 0.3 * np.sin(5 * W0 * t + 0.4) + 0.05 * rng.standard_normal(n)
    e[1000:1300] += 300.0
    e[2500:2600] -= 500.0
    return e.astype(np.float32)


@pytest.mark.parametrize("phi", [0.0, 0.0314159])
def test_c_matches_model_bit_for_bit(lib, phi):
    params = pr_model.pr_params(0.3, 250.0, TS_S, W0, phi, -40.0, 40.0)
    errors = _errors()
    c_out = _run_c(lib, params, errors)
    model = pr_model.pr_float32_response(params, errors)
    assert np.any(np.abs(c_out) == 40.0), "the sequence must exercise the saturation"
    assert np.array_equal(c_out.view(np.uint32), model.view(np.uint32))


def test_unsaturated_response_is_the_transfer_function(lib):
    # Another method: C(z) = Kp + Kr (b0 + b1 z⁻¹)/(1 + a1 z⁻¹ + z⁻²) filtered in
    # double precision, with the controller's own float32 coefficients (the
    # undamped resonator would otherwise drift with a1's rounding).
    kp, kr = 0.2, 3000.0
    params = pr_model.pr_params(kp, kr, TS_S, W0, 0.0, -1e6, 1e6)
    errors = _errors()
    num = [kp + kr * params.b0, kp * params.a1 + kr * params.b1, kp]
    den = [1.0, params.a1, 1.0]
    expected = lfilter(num, den, errors.astype(float))
    c_out = _run_c(lib, params, errors)
    assert np.max(np.abs(c_out - expected)) < 1e-4 * np.max(np.abs(expected))
    # And the realisation simbaflow analyses (double coefficients) agrees to the drift.
    tf = realisations.pr_tf(kp, kr, TS_S, W0)
    ideal = lfilter(np.asarray(tf.num[0][0], float), np.asarray(tf.den[0][0], float), errors.astype(float))
    assert np.max(np.abs(c_out - ideal)) < 5e-3 * np.max(np.abs(ideal))


def test_saturation_back_calculation_by_hand(lib):
    # Pr's anti-windup rewrites r(k) = (u_sat − Kp e)/Kr but keeps r(k−1): under a
    # constant error the next output swings to the other bound. Computed by hand:
    kp, kr, e = 0.2, 3000.0, 100.0
    params = pr_model.pr_params(kp, kr, TS_S, W0, 0.0, -5.0, 5.0)
    out = _run_c(lib, params, np.full(4, e, dtype=np.float32))
    b0, b1, a1 = params.b0, params.b1, params.a1
    r0 = (5.0 - kp * e) / kr                       # u0 = Kp e + Kr b0 e = 50 > 5
    u1 = kp * e + kr * (b0 * e + b1 * e - a1 * r0)  # = −9.98…: clamped to −5
    r1 = (-5.0 - kp * e) / kr
    u2 = kp * e + kr * (b0 * e + b1 * e - a1 * r1 - r0)
    assert u1 < -5.0 and u2 < -5.0
    assert out[:3].tolist() == [5.0, -5.0, -5.0]
    r2 = (-5.0 - kp * e) / kr
    u3 = kp * e + kr * (b0 * e + b1 * e - a1 * r2 - r1)
    assert out[3] == pytest.approx(max(-5.0, min(5.0, u3)), abs=1e-4)


def test_init_refuses_zero_kr_and_inverted_bounds(lib):
    for bad in ([0.2, 0.0, 1e-4, -1e-4, -2.0, -1.0, 1.0], [0.2, 1.0, 1e-4, -1e-4, -2.0, 1.0, -1.0]):
        p, e, out = _f32(bad), _f32([1.0]), _f32([0.0])
        assert lib.pr_check_run(p.ctypes.data_as(FloatPtr), e.ctypes.data_as(FloatPtr),
                                out.ctypes.data_as(FloatPtr), ctypes.c_size_t(1)) == -1
    with pytest.raises(ValueError):
        pr_model.pr_params(0.2, 0.0, TS_S, W0, 0.0, -1.0, 1.0)


@pytest.mark.parametrize("w0, phi", [(W0, 0.0), (W0, 0.0314159), (2 * math.pi * 60, 0.1)])
def test_coefficients_match_libm_cosf(lib, w0, phi):
    out = _f32([0, 0, 0])
    lib.pr_check_coefficients(ctypes.c_float(TS_S), ctypes.c_float(w0), ctypes.c_float(phi),
                              out.ctypes.data_as(FloatPtr))
    model = _f32(pr_model.pr_coefficients_f32(TS_S, w0, phi))
    # Within one unit in the last place of each other (libm's cosf is not required to round correctly).
    assert np.all(np.abs(out.view(np.int32) - model.view(np.int32)) <= 1)
    exact = realisations.pr_coefficients(TS_S, w0, phi)
    assert model == pytest.approx([exact["b"][0], exact["b"][1], exact["a"][1]], rel=1e-6)


def test_committed_header_drives_both_roles(lib):
    text = (FW / "include/ac_gains.h").read_text()
    values = dict(re.findall(r"#define AC_GAINS_(\w+) \(?([-0-9.e]+)f\)?", text))
    errors = _errors()
    for client, role in ((0, "SERVER"), (1, "CLIENT")):
        params = pr_model.PrParams(*(float(F32(values[f"{role}_{k}"])) for k in ("KP", "KR", "B0", "B1", "A1")),
                                   -float(values["V_BUS_V"]), float(values["V_BUS_V"]))
        out = np.zeros_like(errors)
        assert lib.pr_check_role(client, errors.ctypes.data_as(FloatPtr), out.ctypes.data_as(FloatPtr),
                                 ctypes.c_size_t(len(errors))) == 0
        assert np.array_equal(out.view(np.uint32), pr_model.pr_float32_response(params, errors).view(np.uint32))


def test_header_refuses_the_alternative_discretisation():
    spec = {"study": "s", "_path": "s.yaml", "ac": {"ts_s": TS_S, "f0_hz": 50.0}}
    with pytest.raises(ValueError, match="not the control_library Pr"):
        render_ac_gains_header(spec, {"candidate_id": "c", "discretisation": "tustin_prewarp",
                                      "firmware_pr": False}, {})


def test_cortex_m4f_build_is_single_precision(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc is missing: run `make system-deps`")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", *CFLAGS]
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *flags, *INCLUDES, "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        symbols = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], check=True, capture_output=True,
                                 text=True).stdout.split()
        assert not [s for s in symbols if DOUBLE_HELPER.match(s)], symbols
        disasm = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], check=True, capture_output=True,
                                text=True).stdout
        assert re.search(r"\bvmul\.f32\b", disasm) or src.stem == "pr_check"
        assert not re.search(r"\.f64\b", disasm)


def test_simba_block_runs_the_controller_at_clock_ticks(tmp_path):
    from simbaflow.simulate.sil import PR_BLOCK_SOURCES, pr_block_code

    import aesim.simba

    include = next(iter(Path(aesim.simba.__file__).parent.rglob("simba_library.h")), None)
    if include is None:
        pytest.fail("aesim.simba's simba_library.h is missing")
    code = pr_block_code()
    assert code.encode() == b"".join((REPO / "firmware" / p).read_bytes() for p in PR_BLOCK_SOURCES)
    src = tmp_path / "block.c"
    src.write_text(code)
    so = tmp_path / "block.so"
    subprocess.run(["gcc", *CFLAGS, "-shared", "-fPIC", "-I", str(include.parent), str(src), "-lm", "-o", str(so)],
                   check=True, capture_output=True, text=True)
    block = ctypes.CDLL(str(so))
    block.calculate_outputs.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                                        ctypes.c_double, ctypes.c_double]
    block.initialize()
    errors = _errors(3000)
    inputs = (ctypes.c_double * 7)()
    outputs = (ctypes.c_double * 1)()
    got = []
    # Four solver steps per control period; the clock is 1 on the first of them only (and at t = 0).
    for k, e in enumerate(errors):
        for j in range(4):
            t = (4 * k + j) * 25e-6
            inputs[:] = [1.0 if (j == 0 and k > 0) else 0.0, float(e), 0.3, 250.0, W0, 0.0314159, 40.0]
            block.calculate_outputs(outputs, inputs, t, 25e-6)
            if j == 3:
                got.append(outputs[0])
    # The block computes its coefficients with the host's cosf; the model's are the correctly rounded ones.
    params = pr_model.pr_params(0.3, 250.0, TS_S, W0, 0.0314159, -40.0, 40.0)
    model = pr_model.pr_float32_response(params, errors)
    assert np.any(np.abs(model) == 40.0)
    assert np.array_equal(np.asarray(got, dtype=np.float32).view(np.uint32), model.view(np.uint32))

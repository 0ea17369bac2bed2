"""Prove the promoted controller code: host build + bit-exact replay, Cortex-M4F cross-compile.

What the check does, in order:

1. builds ``pi_controller`` with the promoted ``controller_gains.h`` for the
   host (``gcc -Wall -Wextra -Werror``) as a shared library and replays the
   error sequence of the promoted candidate through it: fixed-point outputs
   must equal :mod:`simbaflow.promote.pi_model` bit for bit, float outputs
   must be within 1 ulp of the float32 model;
2. builds the SIMBA C Code block (header + source + adapter concatenated, as
   the ``discrete_pi`` design holds them) and replays the same sequence;
3. cross-compiles the module and the header for the SPIN's STM32G474
   (Cortex-M4F, hard float), in C and, as the OwnTech application includes
   them, in C++; prints code size and per-function facts, and fails if an
   object calls a double-precision helper or links to C++-mangled names.

Outputs go to ``<firmware>/build/`` (git-ignored).
"""

from __future__ import annotations

import ctypes
import importlib.util
import re
from pathlib import Path

import numpy as np

from simbaflow.promote import pi_model as controller_model
from simbaflow.promote.toolchain import (
    ARM_CC, ARM_CFLAGS, ARM_CXX, COMMON_CFLAGS, CXXFLAGS, DOUBLE_HELPER, HOST_CC, WARNINGS, CheckReport,
    FirmwareCheckError, object_facts, promoted_selection, run_tool,
)
from simbaflow.promote.pi_header import HEADER_PATH, read_gains_header
from simbaflow.simulate.sil import block_code
from simbaflow.core.errors import SimbaflowError
from simbaflow.core.fixedpoint import QFormat, to_fixed

#: Functions on the board's control path.
CONTROL_PATH = ("pi_controller_calculate", "pi_controller_fixed_calculate")

#: Duty-cycle range of the leg (the design's ``duty_cycle`` limiter, ``DUTY_MIN/MAX`` in main.cpp).
DUTY_MIN, DUTY_MAX = 0.0, 1.0

#: α bounds of the SIMBA block (``ALPHA_MIN``/``ALPHA_MAX`` in firmware/sil/simba_pi_block.c).
SIMBA_BLOCK_ALPHA_BOUNDS = (-1.0, 1.0)

#: How far a run's recorded duty may sit from the block's α + Vs/E: float32 α and a
#: compensation rounded to float32 (a few 1e-8), with margin.
RUN_DUTY_TOLERANCE = 1e-6

#: Current signal of a discrete_pi run when the spec does not name one (SIMBA's "<device> - <scope>").
RUN_CURRENT = "L1 - Current"


# --------------------------------------------------------------------------- stimulus

def alpha_bounds(comp: np.ndarray, out_min: float, out_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample α bounds (float32): the study's ``out_min..out_max`` narrowed to a feasible duty.

    The duty is ``α + comp`` and the leg can only apply ``DUTY_MIN..DUTY_MAX``,
    so α beyond ``DUTY_MIN − comp .. DUTY_MAX − comp`` would only wind up the
    state; ``main.cpp`` computes the same from its measurements each sample.
    """
    comp = np.asarray(comp, dtype=np.float32)
    lo = np.maximum(np.float32(out_min), np.float32(DUTY_MIN) - comp)
    hi = np.minimum(np.float32(out_max), np.float32(DUTY_MAX) - comp)
    return lo, hi


def simulated_errors(plant, a0: float, a1: float, ts_s: float, out_min: float, out_max: float,
                     delay_samples: int = 0, duration_s: float = 10e-3) -> dict[str, np.ndarray]:
    """Current error of the sampled current loop, simulated with numpy.

    The leg is averaged: the inductor sees ``E·d`` against the load voltage
    ``R·i``, integrated exactly over each sample (zero-order hold), the duty
    applied ``delay_samples`` late. The controller is the float32 model of the
    firmware with the per-sample bounds of :func:`alpha_bounds`; the duty
    ``α + Vs/E`` is limited to ``DUTY_MIN..DUTY_MAX`` like the design's
    ``duty_cycle`` block.
    The reference repeats SIMBA's reference project: 70 % of E/R for the first
    half, 30 % after (14 A then 6 A for the seed's 600 V, 30 Ω leg), so the
    loop saturates, recovers and steps down.

    Returns
    -------
    dict
        ``error``, ``reference``, ``current`` (A) and ``alpha_min``,
        ``alpha_max`` (float32), one value per sample.
    """
    if plant.r_ohm <= 0:
        raise SimbaflowError("the firmware check's closed-loop stimulus needs plant.r_ohm > 0 to size its reference")
    n = int(round(duration_s / ts_s))
    i_full = plant.e_v / plant.r_ohm
    reference = np.where(np.arange(n) < n // 2, 0.7 * i_full, 0.3 * i_full)
    decay = np.exp(-plant.r_ohm * ts_s / plant.l_h)
    pi = controller_model.PiController(a0, a1, out_min, out_max)
    pending = [0.0] * delay_samples
    i = 0.0
    out = {key: np.empty(n) for key in ("error", "current")}
    out["alpha_min"], out["alpha_max"] = np.empty(n, np.float32), np.empty(n, np.float32)
    for k in range(n):
        out["current"][k], out["error"][k] = i, reference[k] - i
        comp = plant.compensation(np.array([i]))
        lo, hi = alpha_bounds(comp, out_min, out_max)
        out["alpha_min"][k], out["alpha_max"][k] = lo[0], hi[0]
        pi.set_bounds(lo[0], hi[0])
        alpha = pi.calculate(out["error"][k])
        pending.append(min(max(float(alpha) + float(comp[0]), DUTY_MIN), DUTY_MAX))
        applied = pending.pop(0)
        i = i * decay + (1.0 - decay) * plant.e_v * applied / plant.r_ohm
    out["reference"] = reference
    return out


def run_errors(parquet: Path, ts_s: float, current: str, reference: str,
               a0: float | None = None, a1: float | None = None, duty: str | None = None,
               delay_samples: int | None = None) -> dict[str, np.ndarray]:
    """Current error, current (and duty, if named) at each controller sample of a ``discrete_pi`` run.

    The controller samples at ``k·Ts``, so each sample takes the last simulated
    point at or before that instant. When the run records the ``a0``/``a1`` it
    was made with (metadata ``overrides``), they must be the promoted ones as
    the controller holds them (float32: the C Code block converts them too).
    ``delay_samples`` in the result is the block's computation delay in that
    run (its ``delay.Value`` override, 0 without one), rounded as the block does;
    when both the run and the caller give one, they must agree.
    """
    from simbaflow.simulate.runio import read_run_parquet

    table, meta = read_run_parquet(parquet)
    if meta.get("status", "ok") != "ok":
        raise FirmwareCheckError(f"{parquet}: run status is {meta['status']!r}; expected a finished ('ok') run")
    missing = [c for c in (current, reference) if c not in table.columns]
    if missing:
        raise FirmwareCheckError(
            f"{parquet}: expected columns {current!r} and {reference!r} (the spec's simulate.designs.discrete_pi "
            f"response and reference); missing {', '.join(map(repr, missing))}"
        )
    for name, want in (("a0", a0), ("a1", a1)):
        used = meta.get("overrides", {}).get(name, {}).get("Value")
        if want is not None and used is not None and np.float32(used) != np.float32(want):
            raise FirmwareCheckError(f"{parquet}: the run used {name} = {used!r}, not the promoted {want!r}")
    t = table["time_s"].to_numpy(dtype=float)
    n = int(np.floor(t[-1] / ts_s + 1e-9)) + 1
    idx = np.clip(np.searchsorted(t, np.arange(n) * ts_s * (1 + 1e-12), side="right") - 1, 0, None)
    i = table[current].to_numpy(dtype=float)[idx]
    out = {"error": table[reference].to_numpy(dtype=float)[idx] - i, "current": i}
    # The block rounds its delay input to 0 or 1 sample (simba_pi_block.c).
    used = meta.get("overrides", {}).get("delay", {}).get("Value")
    out["delay_samples"] = int(used is not None and float(used) >= 0.5)
    if used is not None and delay_samples is not None and out["delay_samples"] != int(delay_samples):
        raise FirmwareCheckError(
            f"{parquet}: the run used delay = {used!r}, not the promoted candidate's delay_samples {delay_samples}"
        )
    if duty is not None and duty in table.columns:
        out["duty"] = table[duty].to_numpy(dtype=float)[idx]
    return out


def error_sequence(project_dir: Path, fields: dict[str, str], a0: float, a1: float, ts_s: float,
                   out_min: float, out_max: float) -> tuple[dict[str, np.ndarray], str]:
    """The stimulus to replay for the promoted candidate, and where it came from.

    The candidate's simulated ``discrete_pi`` run when there is one (signals
    named by the spec's ``simulate.designs.discrete_pi``), else a numpy
    closed loop of the spec's plant (:func:`simulated_errors`).

    Returns
    -------
    stimulus : dict
        ``error`` and the per-sample ``alpha_min``, ``alpha_max`` the board would set;
        from a run also ``duty`` (what the simulated design applied) and ``comp`` (Vs/E).
    source : str
    """
    from simbaflow.design.plants import plant_from_spec
    from simbaflow.core.spec import load_spec

    spec = load_spec(project_dir / fields["spec"])
    plant = plant_from_spec(spec)
    run = project_dir / "results" / fields["study"] / "runs" / fields["candidate"] / "discrete_pi.parquet"
    design = spec.get("simulate", {}).get("designs", {}).get("discrete_pi")
    if run.exists() and design and "reference" in design:
        stim = run_errors(run, ts_s, design.get("response", RUN_CURRENT), design["reference"], a0, a1,
                          design.get("duty"), int(fields.get("delay_samples", "0")))
        stim["comp"] = plant.compensation(stim["current"])
        stim["alpha_min"], stim["alpha_max"] = alpha_bounds(stim["comp"], out_min, out_max)
        return stim, f"simulated run {run}"
    stim = simulated_errors(plant, a0, a1, ts_s, out_min, out_max, int(fields.get("delay_samples", "0")))
    return stim, f"numpy closed loop of the {fields['spec']} plant ({plant.model}; no discrete_pi run at {run})"


# --------------------------------------------------------------------------- host build

def _simba_include_dir() -> Path | None:
    spec = importlib.util.find_spec("aesim.simba")
    if spec is None or not spec.submodule_search_locations:
        return None
    inc = Path(list(spec.submodule_search_locations)[0]) / "Resources" / "Resources"
    return inc if (inc / "simba_library.h").exists() else None


def build_host_library(firmware_dir: Path, build_dir: Path) -> Path:
    """``libpi_check.so``: pi_controller + the promoted header, host gcc, warnings as errors."""
    out = build_dir / "host" / "libpi_check.so"
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([HOST_CC, *COMMON_CFLAGS, "-fPIC", "-shared",
          "-I", str(firmware_dir / "lib" / "pi_controller"), "-I", str(firmware_dir / "include"),
          str(firmware_dir / "lib" / "pi_controller" / "pi_controller.c"),
          str(firmware_dir / "host_check" / "pi_check.c"), "-o", str(out)],
         "host build of pi_controller with controller_gains.h")
    return out


def simba_block_source(firmware_dir: Path) -> str:
    """The SIMBA C Code block's code, exactly as the ``.jsimba`` designs embed it."""
    return block_code(firmware_dir)


def build_simba_block(firmware_dir: Path, build_dir: Path) -> Path | None:
    """The concatenated SIMBA block as a host shared library; None without aesim.simba's header."""
    include = _simba_include_dir()
    if include is None:
        return None
    src = build_dir / "host" / "simba_pi_block_concat.c"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(simba_block_source(firmware_dir))
    out = build_dir / "host" / "simba_pi_block.so"
    run_tool([HOST_CC, *COMMON_CFLAGS, "-fPIC", "-shared", "-I", str(include), str(src), "-o", str(out)],
         "host build of the SIMBA C Code block (header + source + adapter)")
    return out


def _pointer(array: np.ndarray, ctype):
    return array.ctypes.data_as(ctypes.POINTER(ctype))


def replay_float(lib_path: Path, errors: np.ndarray, out_min, out_max) -> np.ndarray:
    """Outputs of the compiled float variant; bounds are scalars or per-sample arrays."""
    lib = ctypes.CDLL(str(lib_path))
    e = np.ascontiguousarray(errors, dtype=np.float32)
    lo = np.ascontiguousarray(np.broadcast_to(np.asarray(out_min, dtype=np.float32), e.shape))
    hi = np.ascontiguousarray(np.broadcast_to(np.asarray(out_max, dtype=np.float32), e.shape))
    out = np.empty_like(e)
    lib.pi_check_float(_pointer(e, ctypes.c_float), _pointer(lo, ctypes.c_float), _pointer(hi, ctypes.c_float),
                       _pointer(out, ctypes.c_float), ctypes.c_size_t(e.size))
    return out


def replay_fixed(lib_path: Path, errors_q: np.ndarray, out_min_q, out_max_q) -> np.ndarray:
    """Outputs of the compiled fixed-point variant for int32 errors; bounds scalars or arrays."""
    lib = ctypes.CDLL(str(lib_path))
    e = np.ascontiguousarray(errors_q, dtype=np.int32)
    lo = np.ascontiguousarray(np.broadcast_to(np.asarray(out_min_q, dtype=np.int32), e.shape))
    hi = np.ascontiguousarray(np.broadcast_to(np.asarray(out_max_q, dtype=np.int32), e.shape))
    out = np.empty_like(e)
    lib.pi_check_fixed(_pointer(e, ctypes.c_int32), _pointer(lo, ctypes.c_int32), _pointer(hi, ctypes.c_int32),
                       _pointer(out, ctypes.c_int32), ctypes.c_size_t(e.size))
    return out


def replay_simba_block(lib_path: Path, errors: np.ndarray, a0: float, a1: float, ts_s: float,
                       delay_samples: int = 0) -> np.ndarray:
    """Drive the SIMBA block like SIMBA does: clock pulse at each sample, output read back.

    ``delay_samples`` (0 or 1) is the block's delay input: with 1 the output at
    sample k is the α computed at sample k-1.
    """
    lib = ctypes.CDLL(str(lib_path))
    lib.calculate_outputs.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                                      ctypes.c_double, ctypes.c_double]
    lib.initialize()
    inputs = (ctypes.c_double * 5)()
    output = (ctypes.c_double * 1)()
    out = np.empty(len(errors))
    for k, e in enumerate(errors):
        inputs[0], inputs[1], inputs[2], inputs[3], inputs[4] = 1.0, float(e), a0, a1, float(delay_samples)
        lib.calculate_outputs(output, inputs, ctypes.c_double(k * ts_s), ctypes.c_double(ts_s))
        out[k] = output[0]
    lib.terminate()
    return out


# --------------------------------------------------------------------------- cross build

def cross_compile(firmware_dir: Path, build_dir: Path) -> dict[str, Path]:
    """Objects for the Cortex-M4F: the module, and the header-driven driver in C and in C++.

    The C++ build includes both headers the way the OwnTech application
    (C++, ``src/main.cpp``) does, with its compiler flags.
    """
    out_dir = build_dir / "cortex-m4f"
    out_dir.mkdir(parents=True, exist_ok=True)
    includes = ["-I", str(firmware_dir / "lib" / "pi_controller"), "-I", str(firmware_dir / "include")]
    driver = firmware_dir / "host_check" / "pi_check.c"
    builds = {
        "pi_controller": [ARM_CC, *ARM_CFLAGS, *COMMON_CFLAGS,
                          str(firmware_dir / "lib" / "pi_controller" / "pi_controller.c")],
        "pi_check": [ARM_CC, *ARM_CFLAGS, *COMMON_CFLAGS, str(driver)],
        "pi_check_cxx": [ARM_CXX, *ARM_CFLAGS, *CXXFLAGS, str(driver)],
    }
    objects = {}
    for name, cmd in builds.items():
        obj = out_dir / f"{name}.o"
        run_tool([*cmd, *includes, "-c", "-o", str(obj)], f"Cortex-M4F cross-compile of {name}")
        objects[name] = obj
    return objects


# --------------------------------------------------------------------------- the check

def header_numbers(fields: dict[str, str]) -> dict:
    """The header's values as numbers (what the C compiler sees)."""
    def f(key: str) -> float:
        return float(fields[key].strip("()").rstrip("f"))

    def i(key: str) -> int:
        m = re.fullmatch(r"\((-?\d+) - 1\)", fields[key])  # how INT32_MIN is written
        return int(m.group(1)) - 1 if m else int(fields[key].strip("()"))

    return {"a0": f("CONTROLLER_GAINS_A0"), "a1": f("CONTROLLER_GAINS_A1"),
            "out_min": f("CONTROLLER_GAINS_OUT_MIN"), "out_max": f("CONTROLLER_GAINS_OUT_MAX"),
            "ts_s": int(fields["CONTROLLER_GAINS_TS_NS"]) * 1e-9,
            "frac_bits": int(fields["CONTROLLER_GAINS_FRAC_BITS"]),
            "a0_q": i("CONTROLLER_GAINS_A0_Q"), "a1_q": i("CONTROLLER_GAINS_A1_Q"),
            "out_min_q": i("CONTROLLER_GAINS_OUT_MIN_Q"), "out_max_q": i("CONTROLLER_GAINS_OUT_MAX_Q")}


def run_check(firmware_dir: str | Path, project_dir: str | Path = ".", selection: dict | None = None) -> CheckReport:
    """Build, replay and cross-compile the promoted controller; raise on any failure.

    Parameters
    ----------
    firmware_dir : path
        The firmware tree (``lib/pi_controller``, ``include/controller_gains.h``...).
    project_dir : path
        Where ``results/`` and the study spec live.
    selection : dict, optional
        The promoted selection. The models then take a0, a1 and the bounds from
        it, independently of the header text, so a header that does not say
        what the selection says fails the check. Without it (``make
        firmware-check``), ``results/<study>/selection.json`` is used when it
        still selects the header's candidate, else the header's own values.

    Raises
    ------
    FirmwareCheckError
    """
    firmware_dir, project_dir = Path(firmware_dir), Path(project_dir)
    header = firmware_dir / HEADER_PATH
    if not header.exists():
        raise FirmwareCheckError(f"{header}: no promoted header; run `simbaflow promote results/<study>/selection.json`")
    fields = read_gains_header(header.read_text())
    build_dir = firmware_dir / "build"
    report = CheckReport()
    if selection is None:
        selection = promoted_selection(project_dir, fields)
    if selection is not None:
        cand, ctrl = selection["candidate"], selection["controller"]
        fmt = QFormat(int(selection["fixed_point"]["word_bits"]), int(selection["fixed_point"]["frac_bits"]))
        a0, a1, ts_s = float(cand["a0"]), float(cand["a1"]), float(cand["ts_s"])
        lo, hi = float(ctrl["output_min"]), float(ctrl["output_max"])
        qparams = controller_model.pi_fixed_params(a0, a1, lo, hi, fmt)
        source = f"selection {selection['candidate_id']}"
    else:
        h = header_numbers(fields)
        a0, a1, ts_s, lo, hi = h["a0"], h["a1"], h["ts_s"], h["out_min"], h["out_max"]
        fmt = QFormat(32, h["frac_bits"])
        qparams = controller_model.PiFixedParams(h["a0_q"], h["a1_q"], h["out_min_q"], h["out_max_q"], h["frac_bits"])
        source = f"header {header}"
    report.say(f"controller: {fields.get('candidate', '?')} ({fields.get('realisation', '?')}), model values from {source}")

    stim, stimulus = error_sequence(project_dir, fields, a0, a1, ts_s, lo, hi)
    errors = stim["error"]
    n = errors.size
    report.say(f"stimulus: {n} samples from {stimulus}")

    lib = build_host_library(firmware_dir, build_dir)
    report.say(f"host build: {HOST_CC} {' '.join(WARNINGS)} -> {lib.relative_to(firmware_dir)}")

    errors_q = np.array([to_fixed(float(e), fmt, f"error[{k}]") for k, e in enumerate(errors)], dtype=np.int64)
    lo_q = np.array([to_fixed(float(v), fmt, f"alpha_min[{k}]") for k, v in enumerate(stim["alpha_min"])])
    hi_q = np.array([to_fixed(float(v), fmt, f"alpha_max[{k}]") for k, v in enumerate(stim["alpha_max"])])
    got_q = replay_fixed(lib, errors_q, lo_q, hi_q)
    want_q = controller_model.pi_fixed_response(errors_q, qparams, lo_q, hi_q)
    bad = np.flatnonzero(got_q != want_q)
    if bad.size:
        k = int(bad[0])
        raise FirmwareCheckError(
            f"fixed-point C output differs from the Python model at {bad.size} of {n} samples; "
            f"first at k={k}: C {int(got_q[k])}, model {int(want_q[k])} ({fmt.name})"
        )
    report.say(f"fixed point ({fmt.name}): {n}/{n} samples bit-exact with the Python model")

    got_f = replay_float(lib, errors, stim["alpha_min"], stim["alpha_max"])
    want_f = controller_model.pi_float32_response(errors, a0, a1, lo, hi, stim["alpha_min"], stim["alpha_max"])
    ulps = controller_model.ulp_distance(got_f, want_f)
    if ulps.max(initial=0) > 1:
        k = int(np.argmax(ulps))
        raise FirmwareCheckError(
            f"float C output is {int(ulps[k])} ulp from the float32 model at k={k} "
            f"(C {float(got_f[k])!r}, model {float(want_f[k])!r}); allowed: 1 ulp"
        )
    report.say(f"float: max {int(ulps.max(initial=0))} ulp from the float32 model over {n} samples")

    block = build_simba_block(firmware_dir, build_dir)
    if block is None:
        report.say("SIMBA C Code block: skipped (aesim.simba's simba_library.h not installed)")
    else:
        delay = int(stim.get("delay_samples", 0))
        got_b = replay_simba_block(block, errors, a0, a1, ts_s, delay)
        want_b = controller_model.pi_float32_response(errors, a0, a1, *SIMBA_BLOCK_ALPHA_BOUNDS)
        if delay:
            # Delayed block: α(k-1) at sample k, the reset α (0) first.
            want_b = np.concatenate([np.zeros(1, np.float32), want_b[:-1]])
        ulps_b = controller_model.ulp_distance(got_b.astype(np.float32), want_b)
        if ulps_b.max(initial=0) > 1 or not np.array_equal(got_b, got_b.astype(np.float32).astype(float)):
            raise FirmwareCheckError("the SIMBA C Code block's output differs from the float32 model by more than 1 ulp")
        report.say(f"SIMBA C Code block (header+source+adapter, delay {delay}): "
                   f"max {int(ulps_b.max(initial=0))} ulp from the model")
        if "duty" in stim:
            # The simulated design ran this block: its duty must be clamp(α + Vs/E).
            duty = np.clip(got_b + stim["comp"], DUTY_MIN, DUTY_MAX)
            deviation = float(np.max(np.abs(duty - stim["duty"])))
            if deviation > RUN_DUTY_TOLERANCE:
                k = int(np.argmax(np.abs(duty - stim["duty"])))
                raise FirmwareCheckError(
                    f"the simulated run's duty differs from the firmware block's clamp(alpha + Vs/E) by {deviation:.3g} "
                    f"at k={k} (tolerance {RUN_DUTY_TOLERANCE:g}): the run did not execute this controller"
                )
            report.say(f"simulated run: recorded duty = clamp(alpha + Vs/E) of the block within {deviation:.2g}")

    objects = cross_compile(firmware_dir, build_dir)
    report.say(f"cross-compile: {ARM_CC} {' '.join(ARM_CFLAGS)} -O2 -Werror (pi_check_cxx: {ARM_CXX} -std=c++2a)")
    for name, obj in objects.items():
        facts = object_facts(obj)
        report.say(f"  {obj.name}: text {facts['text']} B, data {facts['data']} B, bss {facts['bss']} B")
        mangled = [s for s in facts["undefined"] if s.startswith("_Z")]
        if mangled:
            # C++ callers must link to the C functions: pi_controller.h's extern "C".
            raise FirmwareCheckError(f"{obj.name} refers to C++-mangled controller symbols: {', '.join(mangled)}")
        doubles = [s for s in facts["undefined"] if DOUBLE_HELPER.match(s)]
        if doubles:
            raise FirmwareCheckError(f"{obj.name} calls double-precision helpers: {', '.join(doubles)}")
        for fn in CONTROL_PATH:
            if fn in facts["functions"]:
                info = facts["functions"][fn]
                calls = ", ".join(info["calls"]) or "none (leaf)"
                report.say(f"    {fn}: {info['instructions']} instructions ({info['fpu']} FPU), calls: {calls}")
                bad_calls = [c for c in info["calls"] if DOUBLE_HELPER.match(c)]
                if bad_calls:
                    raise FirmwareCheckError(f"{fn} calls double-precision helpers: {', '.join(bad_calls)}")
        report.say(f"    undefined symbols: {', '.join(facts['undefined']) or 'none'}; no double-precision helpers")
    return report

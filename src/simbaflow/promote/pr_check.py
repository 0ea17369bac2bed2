"""Prove the AC client/server firmware: both roles built for the host and the Cortex-M4F, replayed bit-exact.

What the check does with ``include/ac_gains.h``, in order:

1. builds ``pr_controller`` + ``rs485_frame`` + ``host_check/ac_role_check.c``
   for the host (``gcc -Wall -Wextra -Werror``) once with ``-DROLE_SERVER``
   and once with ``-DROLE_CLIENT``, as shared libraries;
2. replays an error sequence through each role (the selected candidate's
   simulated run when ``run_files`` has one, else a numpy simulation of the
   spec's coupled plant): the PR output and the duty must equal
   :mod:`simbaflow.promote.pr_model` bit for bit;
3. cross-compiles the same modules and the role driver, per role, in C and
   C++, for the SPIN's Cortex-M4F; prints code sizes and fails if an object
   calls a double-precision helper.

Outputs go to ``<firmware>/build/`` (git-ignored).
"""

from __future__ import annotations

import ctypes
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simbaflow.promote import pr_model
from simbaflow.promote.pr_header import c_float_value, read_ac_gains_header
from simbaflow.promote.toolchain import (
    ARM_CC, ARM_CFLAGS, ARM_CXX, COMMON_CFLAGS, CXXFLAGS, DOUBLE_HELPER, HOST_CC, WARNINGS, CheckReport,
    FirmwareCheckError, object_facts, promoted_selection, run_tool,
)

#: Where promote writes the AC header, relative to the firmware directory.
AC_HEADER_PATH = "include/ac_gains.h"

#: Portable modules both roles link (relative to the firmware directory).
AC_MODULES = ("lib/pr_controller/pr_controller.c", "lib/rs485_frame/rs485_frame.c")
#: The role's control period (apps/client_server/src/main.cpp's arithmetic), built per role.
ROLE_DRIVER = "host_check/ac_role_check.c"
ROLES = ("server", "client")

#: Signals of the AC design's run: the server's reference and load voltage, the
#: client's received current reference and its inductor current.
RUN_SIGNALS = {"v_ref": "Vref - Out", "v_out": "v_load - Out", "i_ref": "link_iref - Out", "i_client": "Lc1 - Current"}

#: Length of the numpy stimulus: three periods of the 50 Hz fundamental from rest.
NUMPY_STIMULUS_S = 0.06


@dataclass(frozen=True)
class AcModel:
    """What the firmware should compute: each role's PR parameters and the shared constants."""

    server: pr_model.PrParams
    client: pr_model.PrParams
    ts_s: float
    w0_rad_s: float
    v_bus_v: float
    k_gain: float
    source: str


def _includes(firmware_dir: Path) -> list[str]:
    return ["-I", str(firmware_dir / "lib" / "pr_controller"), "-I", str(firmware_dir / "lib" / "rs485_frame"),
            "-I", str(firmware_dir / "include")]


# --------------------------------------------------------------------------- model values

def model_from_selection(selection: dict, spec: dict) -> AcModel:
    """Each role's PR as the selection's gains and the spec's ``ac`` section define it."""
    cand, ac = selection["candidate"], spec["ac"]
    ts_s, w0, v_bus = float(ac["ts_s"]), 2.0 * math.pi * float(ac["f0_hz"]), float(ac["plant"]["v_bus_v"])
    params = {role: pr_model.pr_params(float(cand[f"{role}_kp"]), float(cand[f"{role}_kr"]), ts_s, w0,
                                       float(cand[f"{role}_phi_prime_rad"]), -v_bus, v_bus) for role in ROLES}
    return AcModel(params["server"], params["client"], ts_s, w0, v_bus, float(cand["k_gain"]),
                   f"selection {selection['candidate_id']}")


def model_from_header(fields: dict[str, str], header: Path) -> AcModel:
    """Each role's PR exactly as the header's literals give it."""
    def f(name: str) -> float:
        return c_float_value(fields[f"AC_GAINS_{name}"])

    v_bus = f("V_BUS_V")
    params = {role: pr_model.PrParams(*(f(f"{role.upper()}_{k}") for k in ("KP", "KR", "B0", "B1", "A1")),
                                      -v_bus, v_bus) for role in ROLES}
    return AcModel(params["server"], params["client"], f("TS_S"), f("W0_RAD_S"), v_bus, f("K_GAIN"),
                   f"header {header}")


# --------------------------------------------------------------------------- stimulus

def _delayed(x: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples), x[:-samples]]) if samples else x


def run_signals(spec: dict, design: str) -> dict[str, str]:
    """The run's column for each of :data:`RUN_SIGNALS`: the spec's ``simulate.designs.<design>`` names, else ours."""
    named = spec.get("simulate", {}).get("designs", {}).get(design, {})
    return {**RUN_SIGNALS, **{key: named[src] for key, src in
                              (("v_ref", "v_ref"), ("v_out", "v_load"), ("i_client", "i_client")) if src in named}}


def run_stimulus(parquet: Path, ts_s: float, link_delay_samples: int,
                 signals: dict[str, str] = RUN_SIGNALS) -> dict[str, np.ndarray]:
    """Each role's inputs at the controller instants ``k·Ts`` of a simulated AC run.

    Each sample takes the last simulated point at or before ``k·Ts``. The
    client's voltage feed-forward is the server's reference delayed by the link.
    """
    from simbaflow.simulate.runio import read_run_parquet

    table, meta = read_run_parquet(parquet)
    if meta.get("status", "ok") != "ok":
        raise FirmwareCheckError(f"{parquet}: run status is {meta['status']!r}; expected a finished ('ok') run")
    t = table["time_s"].to_numpy(dtype=float)
    n = int(np.floor(t[-1] / ts_s + 1e-9)) + 1
    idx = np.clip(np.searchsorted(t, np.arange(n) * ts_s * (1 + 1e-12), side="right") - 1, 0, None)
    s = {key: table[col].to_numpy(dtype=float)[idx] for key, col in signals.items()}
    return {"v_ref": s["v_ref"], "i_ref": s["i_ref"], "server_measured": s["v_out"],
            "client_v_ref": _delayed(s["v_ref"], link_delay_samples), "client_measured": s["i_client"]}


def numpy_stimulus(spec: dict, cand: dict, duration_s: float = NUMPY_STIMULUS_S) -> dict[str, np.ndarray]:
    """Each role's inputs from the linear coupled model (:mod:`simbaflow.design.coupled_inverters`) started from rest.

    The server's reference is the spec's sine at f0; the client receives
    ``k_gain`` times the server current and the reference, one link delay late.
    """
    import control

    from simbaflow.design.coupled_inverters import coupled_system, pr_controller_tf

    ac = spec["ac"]
    ts_s, w0 = float(ac["ts_s"]), 2.0 * math.pi * float(ac["f0_hz"])
    tfs = [pr_controller_tf(cand[f"{r}_kp"], cand[f"{r}_kr"], ts_s, w0, cand[f"{r}_phi_prime_rad"],
                            cand.get("discretisation", "control_library_pr")) for r in ROLES]
    link = int(ac["link_delay_samples"])
    sys = coupled_system(ac["plant"], ts_s, *tfs, cand["k_gain"], ac["computation_delay_samples"], link)
    t = np.arange(int(round(duration_s / ts_s))) * ts_s
    v_ref = ac["v_ref_amplitude_v"] * np.sin(w0 * t)
    y = np.asarray(control.forced_response(sys, T=t, U=v_ref).outputs)
    v, i_s, i_c = y[0], y[1], y[2]
    return {"v_ref": v_ref, "i_ref": _delayed(cand["k_gain"] * i_s, link), "server_measured": v,
            "client_v_ref": _delayed(v_ref, link), "client_measured": i_c}


def stimulus(project_dir: Path, selection: dict | None, spec: dict, cand: dict,
             model: AcModel) -> tuple[dict[str, np.ndarray], str]:
    """The selected candidate's simulated run when ``run_files`` names one with the AC signals, else numpy."""
    for design, rel in (selection or {}).get("run_files", {}).items():
        path = Path(rel) if Path(rel).is_absolute() else project_dir / rel
        if not path.is_file():
            continue
        import pyarrow.parquet as pq

        signals = run_signals(spec, design)
        if set(signals.values()) <= set(pq.read_schema(path).names):
            stim = run_stimulus(path, model.ts_s, int(spec["ac"]["link_delay_samples"]), signals)
            return stim, f"simulated run {path} ({design})"
    return numpy_stimulus(spec, cand), f"numpy simulation of the {spec['_path']} coupled plant (no run in run_files records the AC signals)"


# --------------------------------------------------------------------------- host build and replay

def build_role_library(firmware_dir: Path, build_dir: Path, role: str) -> Path:
    """``libac_<role>_<hash>.so``: the portable modules and the role driver, host gcc, warnings as errors.

    The name carries a hash of the inputs: a process that loads the library
    (ctypes) and rebuilds it with another header would otherwise get the
    first one back from the dynamic loader's cache.
    """
    sources = [firmware_dir / p for p in (*AC_MODULES, ROLE_DRIVER)]
    digest = hashlib.sha256()
    for path in [*sources, firmware_dir / AC_HEADER_PATH, firmware_dir / "lib/pr_controller/pr_controller.h",
                 firmware_dir / "lib/rs485_frame/rs485_frame.h"]:
        digest.update(path.read_bytes() if path.exists() else b"")
    out = build_dir / "host" / f"libac_{role}_{digest.hexdigest()[:12]}.so"
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f"libac_{role}_*.so"):
        stale.unlink(missing_ok=True)  # earlier headers' builds; a loaded copy stays mapped
    run_tool([HOST_CC, *COMMON_CFLAGS, "-fPIC", "-shared", f"-DROLE_{role.upper()}", *_includes(firmware_dir),
          *map(str, sources), "-lm", "-o", str(out)],
         f"host build of the {role.upper()} role (pr_controller, rs485_frame, ac_role_check) with ac_gains.h")
    return out


def replay_role(lib_path: Path, v_ref, i_ref, measured) -> tuple[np.ndarray, np.ndarray]:
    """``(u, duty)`` of the compiled role for float32 inputs, one value per control period."""
    lib = ctypes.CDLL(str(lib_path))
    fp = ctypes.POINTER(ctypes.c_float)
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in (v_ref, i_ref, measured)]
    u, duty = np.zeros_like(arrays[0]), np.zeros_like(arrays[0])
    rc = lib.ac_role_run(*(a.ctypes.data_as(fp) for a in (*arrays, u, duty)), ctypes.c_size_t(u.size))
    if rc != 0:
        raise FirmwareCheckError(f"{lib_path.name}: ac_role_run returned {rc} "
                                 "(-1: the PR refused the header's parameters, -2: a frame was rejected)")
    return u, duty


def role_model(model: AcModel, role: str, v_ref, i_ref, measured) -> tuple[np.ndarray, np.ndarray]:
    """``(u, duty)`` of a role by :mod:`simbaflow.promote.pr_model`, each float32 operation as the C does it."""
    f32 = np.float32
    v_ref, i_ref, measured = (np.asarray(a, dtype=np.float32) for a in (v_ref, i_ref, measured))
    error = (v_ref if role == "server" else i_ref) - measured
    u = pr_model.pr_float32_response(getattr(model, role), error)
    total = u if role == "server" else v_ref + u
    duty = f32(0.5) + total / (f32(2.0) * f32(model.v_bus_v))
    return u, duty.astype(np.float32)


# --------------------------------------------------------------------------- cross build

def cross_compile_roles(firmware_dir: Path, build_dir: Path) -> dict[str, Path]:
    """Cortex-M4F objects: the portable modules once, the role driver per role in C and C++."""
    out_dir = build_dir / "cortex-m4f"
    out_dir.mkdir(parents=True, exist_ok=True)
    driver = str(firmware_dir / ROLE_DRIVER)
    builds = {Path(p).stem: [ARM_CC, *ARM_CFLAGS, *COMMON_CFLAGS, str(firmware_dir / p)] for p in AC_MODULES}
    for role in ROLES:
        flag = f"-DROLE_{role.upper()}"
        builds[f"ac_role_{role}"] = [ARM_CC, *ARM_CFLAGS, *COMMON_CFLAGS, flag, driver]
        # The application is C++: the modules' headers must give C linkage there too.
        builds[f"ac_role_{role}_cxx"] = [ARM_CXX, *ARM_CFLAGS, *CXXFLAGS, flag, driver]
    objects = {}
    for name, cmd in builds.items():
        obj = out_dir / f"{name}.o"
        run_tool([*cmd, *_includes(firmware_dir), "-c", "-o", str(obj)], f"Cortex-M4F cross-compile of {name}")
        objects[name] = obj
    return objects


# --------------------------------------------------------------------------- the check

def run_ac_check(firmware_dir: str | Path, project_dir: str | Path = ".", selection: dict | None = None,
                 report: CheckReport | None = None) -> CheckReport:
    """Build both roles, replay them against :mod:`simbaflow.promote.pr_model`, cross-compile; raise on any failure.

    Parameters
    ----------
    firmware_dir : path
        The firmware tree (``lib/pr_controller``, ``lib/rs485_frame``, ``include/ac_gains.h``...).
    project_dir : path
        Where ``results/`` and the study spec live.
    selection : dict, optional
        The promoted AC selection: the model then takes the gains from it and
        the coefficients from the spec, independently of the header, so a
        header that does not say what the selection says fails. Without it,
        ``results/<study>/selection.json`` when it still selects the header's
        candidate, else the header's own values.
    report : CheckReport, optional
        Lines are appended to it (the DC check's, under ``make firmware-check``).

    Raises
    ------
    FirmwareCheckError
    """
    from simbaflow.core.spec import load_spec

    firmware_dir, project_dir = Path(firmware_dir), Path(project_dir)
    report = report or CheckReport()
    header = firmware_dir / AC_HEADER_PATH
    if not header.exists():
        raise FirmwareCheckError(f"{header}: no AC gains header; "
                                 "run `simbaflow promote results/<study>/selection.json`")
    fields = read_ac_gains_header(header.read_text())
    if selection is None:
        selection = promoted_selection(project_dir, fields)
    spec_rel = selection["spec_path"] if selection is not None else fields.get("spec", "")
    spec_path = project_dir / spec_rel
    if not spec_path.is_file():
        raise FirmwareCheckError(f"{header}: spec {spec_rel!r} not found under {project_dir}; "
                                 "expected the AC study spec the header was generated from")
    spec = load_spec(spec_path)
    spec["_path"] = spec_rel
    if selection is not None:
        model, cand = model_from_selection(selection, spec), selection["candidate"]
    else:
        model = model_from_header(fields, header)
        cand = {f"{r}_{k}": getattr(getattr(model, r), k) for r in ROLES for k in ("kp", "kr")}
        cand.update({f"{r}_phi_prime_rad": c_float_value(fields[f"AC_GAINS_{r.upper()}_PHI_PRIME_RAD"])
                     for r in ROLES}, k_gain=model.k_gain)
    report.say(f"AC controllers: {fields.get('candidate', '?')} (SERVER voltage PR, CLIENT current PR), "
               f"model values from {model.source}")

    stim, source = stimulus(project_dir, selection, spec, cand, model)
    n = stim["v_ref"].size
    report.say(f"AC stimulus: {n} samples from {source}")

    build_dir = firmware_dir / "build"
    inputs = {"server": (stim["v_ref"], stim["i_ref"], stim["server_measured"]),
              "client": (stim["client_v_ref"], stim["i_ref"], stim["client_measured"])}
    for role in ROLES:
        lib = build_role_library(firmware_dir, build_dir, role)
        got_u, got_d = replay_role(lib, *inputs[role])
        want_u, want_d = role_model(model, role, *inputs[role])
        for what, got, want in (("PR output", got_u, want_u), ("duty", got_d, want_d)):
            bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
            if bad.size:
                k = int(bad[0])
                raise FirmwareCheckError(
                    f"{role.upper()} {what}: C differs from simbaflow.promote.pr_model at {bad.size} of {n} samples; "
                    f"first at k={k}: C {float(got[k])!r}, model {float(want[k])!r}"
                )
        saturated = int(np.count_nonzero(np.abs(want_u) == np.float32(model.v_bus_v)))
        report.say(f"{role.upper()} host build ({HOST_CC} {' '.join(WARNINGS)} -DROLE_{role.upper()}): "
                   f"{n}/{n} PR outputs and duties bit-exact with simbaflow.promote.pr_model ({saturated} saturated)")

    objects = cross_compile_roles(firmware_dir, build_dir)
    report.say(f"AC cross-compile: {ARM_CC} {' '.join(ARM_CFLAGS)} -O2 -Werror, per role -DROLE_SERVER / "
               f"-DROLE_CLIENT (ac_role_*_cxx: {ARM_CXX} -std=c++2a)")
    facts = {name: object_facts(obj) for name, obj in objects.items()}
    for name, obj in objects.items():
        info = facts[name]
        report.say(f"  {obj.name}: text {info['text']} B, data {info['data']} B, bss {info['bss']} B")
        mangled = [s for s in info["undefined"] if s.startswith("_Z")]
        if mangled:
            raise FirmwareCheckError(f"{obj.name} refers to C++-mangled symbols: {', '.join(mangled)}; "
                                     "the module headers need extern \"C\"")
        doubles = [s for s in info["undefined"] if DOUBLE_HELPER.match(s)]
        if doubles:
            raise FirmwareCheckError(f"{obj.name} calls double-precision helpers: {', '.join(doubles)}")
    fn = facts["pr_controller"]["functions"].get("pr_controller_calculate")
    if fn:
        report.say(f"    pr_controller_calculate: {fn['instructions']} instructions ({fn['fpu']} FPU), "
                   f"calls: {', '.join(fn['calls']) or 'none (leaf)'}")
    for role in ROLES:
        total = sum(facts[k]["text"] for k in ("pr_controller", "rs485_frame", f"ac_role_{role}"))
        report.say(f"  {role.upper()} control path (pr_controller + rs485_frame + ac_role_{role}): text {total} B; "
                   "no double-precision helpers")
    return report

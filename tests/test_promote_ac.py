"""`simbaflow promote` of an AC client/server selection, and the AC part of the firmware check.

Selections are the sweep's own: the study is built by the workflow's steps
(tests/promote_helpers.py), and tests edit copies of it. The check is the
real one (gcc and arm-none-eabi-gcc on firmware/lib/pr_controller,
firmware/lib/rs485_frame and firmware/host_check/ac_role_check.c).
"""

from __future__ import annotations

import atexit
import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from promote_helpers import build_study
from simbaflow.promote import pr_check as ac_firmware_check, pr_model
from simbaflow.promote.pr_header import read_ac_gains_header
from simbaflow.cli import main
from simbaflow.promote.check import run_all_checks
from simbaflow.promote.toolchain import DOUBLE_HELPER, FirmwareCheckError, object_facts
from simbaflow.kinds import promote
from simbaflow.promote.pipeline import PromotionRefused
from simbaflow.core.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"

needs_toolchains = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="gcc and arm-none-eabi-gcc are needed (make system-deps)",
)

#: design/ac_client_server.yaml's plant and constraints around its selected gains:
#: client Kr 250 and 500, and the tustin_prewarp alternative the firmware does not run.
AC_SPEC = """\
study: ac_client_server
ac:
  plant: {l_leg_h: 33.0e-6, c_leg_f: 61.1e-6, r_leg_ohm: 0.0, v_bus_v: 40.0, r_load_ohm: 30.0}
  f0_hz: 50.0
  ts_s: 1.0e-4
  v_ref_amplitude_v: 12.0
  computation_delay_samples: 0
  link_delay_samples: 1
  sweep:
    server: {kp: [0.04], kr: [500], phi_prime_rad: [0.0]}
    client: {kp: [0.3], kr: [250, 500], phi_prime_rad: [0.0]}
    k_gain: [1.0]
    discretisation: [control_library_pr, tustin_prewarp]
selection:
  constraints:
    stable: true
    firmware_pr: true
    phase_error_abs_deg: {max: 2}
    server_phase_margin_deg: {min: 30}
    client_phase_margin_deg: {min: 30}
    server_gain_margin_db: {min: 6}
    client_gain_margin_db: {min: 6}
  objective: {minimize: settling_time_s}
"""
SELECTED = "v0p04-500-0_i0p3-250-0_k1_clpr"
RUNNER_UP = "v0p04-500-0_i0p3-500-0_k1_clpr"
TUSTIN = "v0p04-500-0_i0p3-250-0_k1_tustin"
TS_S, W0 = 1.0e-4, 2 * math.pi * 50.0


#: The same study with only the discretisation the firmware does not run (and no firmware_pr constraint).
TUSTIN_SPEC = AC_SPEC.replace("discretisation: [control_library_pr, tustin_prewarp]",
                              "discretisation: [tustin_prewarp]").replace("    firmware_pr: true\n", "")

_STUDIES: dict[str, Path] = {}


def _json_row(row: dict) -> dict:
    from simbaflow.core.tables import jsonable

    return jsonable(row)


def make_ac_project(root: Path, candidate_id: str = SELECTED) -> tuple[Path, Path, dict]:
    """A copy of the AC study, swept by the workflow's steps, and of the firmware tree, under ``root``.

    ``candidate_id`` TUSTIN gives the study whose selection is the tustin_prewarp candidate.

    Returns
    -------
    selection_path, firmware_dir, rows (candidate_id -> candidates.csv row as JSON)
    """
    from simbaflow.core.tables import read_candidates

    spec_text = TUSTIN_SPEC if candidate_id == TUSTIN else AC_SPEC
    if spec_text not in _STUDIES:
        built = Path(tempfile.mkdtemp(prefix="ac-study-"))
        atexit.register(shutil.rmtree, built, True)
        build_study(built, spec_text, spec_rel="design/ac_client_server.yaml", created_utc="2026-11-22T10:00:00Z")
        _STUDIES[spec_text] = built
    shutil.copytree(_STUDIES[spec_text], root, dirs_exist_ok=True)
    sel_path = root / "results" / "ac_client_server" / "selection.json"
    assert json.loads(sel_path.read_text())["candidate_id"] == candidate_id
    by_id = {r["candidate_id"]: _json_row(r) for r in read_candidates(sel_path.parent / "candidates.csv")}
    firmware = root / "firmware"
    for sub in ("lib", "host_check"):
        shutil.copytree(FIRMWARE / sub, firmware / sub)
    (firmware / "include").mkdir()
    return sel_path, firmware, by_id


def write_selection(path: Path, selection: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection, indent=1))
    return path


def edit_selection(path: Path, **candidate) -> dict:
    data = json.loads(path.read_text())
    data["candidate"].update(candidate)
    write_selection(path, data)
    return data


# --------------------------------------------------------------------------- promote

@needs_toolchains
def test_promote_writes_both_roles_checks_and_is_idempotent(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    header = fw / "include" / "ac_gains.h"
    first = promote(sel, fw)
    assert first.written and first.changed and first.header == header
    fields = read_ac_gains_header(header.read_text())
    # float32 of the gains; b1 = -Ts cos(w0 Ts) = -9.99506535e-05, a1 = -2 cos(w0 Ts) = -1.99901312.
    assert fields["AC_GAINS_SERVER_KP"] == "0.0399999991f" and fields["AC_GAINS_SERVER_KR"] == "500.0f"
    assert fields["AC_GAINS_CLIENT_KP"] == "0.300000012f" and fields["AC_GAINS_CLIENT_KR"] == "250.0f"
    assert float(fields["AC_GAINS_CLIENT_B1"].strip("()f")) == pytest.approx(-TS_S * math.cos(W0 * TS_S), rel=1e-7)
    assert float(fields["AC_GAINS_SERVER_A1"].strip("()f")) == pytest.approx(-2 * math.cos(W0 * TS_S), rel=1e-7)
    assert fields["candidate"] == SELECTED and fields["date"] == "2026-11-22T10:00:00Z"
    assert "Regenerate with: simbaflow promote results/ac_client_server/selection.json" in header.read_text()
    assert f"candidate: (none) -> {SELECTED}" in first.diff
    assert "AC_GAINS_CLIENT_KR: (none) -> 250.0f" in first.diff
    assert "AC stimulus: 600 samples from numpy simulation of the design/ac_client_server.yaml coupled plant " \
           "(no run in run_files records the AC signals)" in first.check_lines
    for role in ("SERVER", "CLIENT"):
        assert any(line.startswith(f"{role} host build") and "600/600 PR outputs and duties bit-exact" in line
                   for line in first.check_lines)
        assert any(line.startswith(f"  {role} control path") and line.endswith("no double-precision helpers")
                   for line in first.check_lines)
    assert not (fw / "include" / "controller_gains.h").exists()
    text = header.read_bytes()

    second = promote(sel, fw)
    assert not second.changed and not second.written and second.diff == []
    assert header.read_bytes() == text


def test_dry_run_diff_shows_old_to_new_gains(tmp_path):
    sel, fw, rows = make_ac_project(tmp_path)
    # A header promoted earlier for the runner-up (client Kr 500).
    earlier = json.loads(sel.read_text())
    earlier.update(candidate_id=RUNNER_UP, candidate=rows[RUNNER_UP])
    old_text = _header_for(sel, earlier)
    (fw / "include" / "ac_gains.h").write_text(old_text)
    result = promote(sel, fw, dry_run=True)
    assert "AC_GAINS_CLIENT_KR: 500.0f -> 250.0f" in result.diff
    assert f"candidate: {RUNNER_UP} -> {SELECTED}" in result.diff
    assert not any(line.startswith("AC_GAINS_SERVER_") for line in result.diff)
    assert result.changed and not result.written
    assert (fw / "include" / "ac_gains.h").read_text() == old_text


def _header_for(sel: Path, selection: dict | None = None) -> str:
    from simbaflow.promote.pr_promote import ac_header_text

    selection = selection or json.loads(sel.read_text())
    return ac_header_text(selection, load_spec(sel.parents[2] / selection["spec_path"]))


def test_refuses_an_edited_selection_that_promotes_a_rejected_candidate(tmp_path):
    """Issue 12, defect 1 on the AC kind: the tustin_prewarp row (rejected: firmware_pr) put in, constraints {}."""
    sel, fw, rows = make_ac_project(tmp_path)
    data = json.loads(sel.read_text())
    assert TUSTIN in [r["candidate_id"] for r in data["rejected"]]
    data.update(candidate_id=TUSTIN, candidate=rows[TUSTIN], constraints={}, realisation="tustin_prewarp")
    write_selection(sel, data)
    with pytest.raises(PromotionRefused, match=rf"selection.json: candidate_id: \"{TUSTIN}\" but the spec and the "
                                               rf"study's tables give \"{SELECTED}\""):
        promote(sel, fw)
    assert not (fw / "include" / "ac_gains.h").exists()


@pytest.mark.parametrize("key, value, shown", [
    ("phase_error_abs_deg", 1.5, "1.5"),
    ("stable", False, "false"),
    ("client_kr", 300.0, "300.0"),
    ("server_kp", "abc", '"abc"'),          # defect 4: non-numeric and null values
    ("server_kp", None, "null"),
])
def test_refuses_an_edited_candidate_value(tmp_path, key, value, shown):
    sel, fw, _ = make_ac_project(tmp_path)
    edit_selection(sel, **{key: value})
    with pytest.raises(PromotionRefused, match=rf"selection.json: candidate.{key}: {shown} but the spec and the "
                                               r"study's tables give "):
        promote(sel, fw)
    assert not (fw / "include" / "ac_gains.h").exists()


def test_refuses_when_the_spec_changed_since_the_sweep(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    spec = tmp_path / "design" / "ac_client_server.yaml"
    spec.write_text(spec.read_text().replace("r_load_ohm: 30.0", "r_load_ohm: 15.0"))
    with pytest.raises(PromotionRefused, match=r"spec_sha256: .* does not match .*ac_client_server.yaml"):
        promote(sel, fw)


def test_refuses_a_candidates_table_edited_after_the_selection(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    table = sel.parent / "candidates.csv"
    table.write_text(table.read_text().replace("True", "False", 1))
    with pytest.raises(PromotionRefused, match=r"tables_sha256.candidates.csv: .* does not match"):
        promote(sel, fw)


def test_refuses_a_discretisation_the_firmware_does_not_run(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path, candidate_id=TUSTIN)
    with pytest.raises(PromotionRefused, match=r"candidate.discretisation: 'tustin_prewarp' is not run by target "
                                               r"spin .*; expected one of control_library_pr"):
        promote(sel, fw)
    sel2, fw2, _ = make_ac_project(tmp_path / "b")
    with pytest.raises(PromotionRefused, match=r"is not run by target fpga"):
        promote(sel2, fw2, target="fpga")


def test_refuses_a_coefficient_that_does_not_follow_from_the_gains(tmp_path):
    sel, fw, rows = make_ac_project(tmp_path)
    # b1 = -Ts cos(w0 Ts) = -9.99506535e-05: the recorded one made one part per million off.
    b1 = rows[SELECTED]["client_b1"]
    assert b1 == pytest.approx(-TS_S * math.cos(W0 * TS_S), rel=1e-12)
    edit_selection(sel, client_b1=b1 * (1 + 1e-6))
    with pytest.raises(PromotionRefused, match=r"candidate.client_b1: -9.99507\d*e-05 but the spec and the "
                                               r"study's tables give -9.99506"):
        promote(sel, fw)


def test_refuses_a_missing_candidate_key(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    data = json.loads(sel.read_text())
    del data["candidate"]["client_a1"]
    write_selection(sel, data)
    with pytest.raises(PromotionRefused, match=r"candidate.client_a1: \(missing\) but"):
        promote(sel, fw)


@needs_toolchains
def test_failed_check_leaves_the_previous_header(tmp_path):
    sel, fw, rows = make_ac_project(tmp_path)
    header = fw / "include" / "ac_gains.h"
    earlier = json.loads(sel.read_text())
    earlier.update(candidate_id=RUNNER_UP, candidate=rows[RUNNER_UP])
    header.write_text(_header_for(sel, earlier))
    before = header.read_bytes()
    src = fw / "lib" / "rs485_frame" / "rs485_frame.c"
    src.write_text(src.read_text() + "\nint unused_and_uninitialised(void) { int x; return x; }\n")
    with pytest.raises(FirmwareCheckError,
                       match=r"host build of the SERVER role .* failed.*ac_gains.h was left as it was"):
        promote(sel, fw)
    assert header.read_bytes() == before
    assert not list(header.parent.glob(".*")) and not (fw / "build" / "staging").exists()


@needs_toolchains
def test_failed_first_promotion_leaves_no_header(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    (fw / "host_check" / "ac_role_check.c").write_text("#error broken on purpose\n")
    with pytest.raises(FirmwareCheckError, match="no .*ac_gains.h was written"):
        promote(sel, fw)
    assert not (fw / "include" / "ac_gains.h").exists()


def test_cli_refusal_is_one_line_and_dry_run_writes_nothing(tmp_path, capsys):
    sel, fw, _ = make_ac_project(tmp_path, candidate_id=TUSTIN)
    with pytest.raises(SystemExit) as exit_info:
        main(["promote", str(sel), "--firmware-dir", str(fw)])
    assert exit_info.value.code == 6
    err = capsys.readouterr().err.strip()
    assert err.startswith("simbaflow: ") and "'tustin_prewarp' is not run by target spin" in err and "\n" not in err

    sel2, fw2, _ = make_ac_project(tmp_path / "b")
    main(["promote", str(sel2), "--dry-run", "--firmware-dir", str(fw2)])
    out = capsys.readouterr().out
    assert "AC_GAINS_SERVER_KR: (none) -> 500.0f" in out and "dry run: nothing written" in out
    assert not (fw2 / "include" / "ac_gains.h").exists()


# --------------------------------------------------------------------------- the AC firmware check

def _run_file(root: Path, n: int = 800) -> Path:
    """A client_server run as the sweep stores it: a 50 Hz voltage, currents, and a large start-up error."""
    from simbaflow.simulate.engines.base import RunResult
    from simbaflow.simulate.runio import write_run_parquet

    rng = np.random.default_rng(3)
    t = np.arange(n) * TS_S
    v_ref = 12.0 * np.sin(W0 * t)
    # The load voltage lags and starts 100 V off, so both PRs saturate at +-40 V for a while.
    v_load = 11.6 * np.sin(W0 * t - 0.05) + 100.0 * np.exp(-t / 5e-3) + 0.05 * rng.standard_normal(n)
    i_s = 0.4 * np.sin(W0 * t - 0.02) + 0.01 * rng.standard_normal(n)
    i_c = 0.39 * np.sin(W0 * t - 0.05) - 200.0 * np.exp(-t / 5e-3)
    link = np.concatenate([[0.0], i_s[:-1]])
    result = RunResult(time_s=t, signals={"v_load - Out": v_load, "Vref - Out": v_ref, "Ls1 - Current": i_s,
                                          "Lc1 - Current": i_c, "link_iref - Out": link},
                       status="ok", engine="embedded", engine_version="test", wall_time_s=0.0)
    path = root / "results" / "ac_client_server" / "runs" / SELECTED / "client_server.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_run_parquet(path, result, {"status": "ok"})
    return path


@needs_toolchains
def test_pr_c_code_is_bit_exact_with_pr_model_on_the_simulated_error_sequence(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    run = _run_file(tmp_path)
    data = json.loads(sel.read_text())
    data["run_files"] = {"client_server": str(run.relative_to(tmp_path))}
    (fw / "include" / "ac_gains.h").write_text(_header_for(sel, data))
    report = ac_firmware_check.run_ac_check(fw, tmp_path, selection=data)
    assert f"AC stimulus: 800 samples from simulated run {run} (client_server)" in report.lines
    exact = [line for line in report.lines if "800/800 PR outputs and duties bit-exact" in line]
    assert len(exact) == 2 and all(int(re.search(r"\((\d+) saturated\)", line).group(1)) > 0 for line in exact)

    # The same, outside the check: the compiled roles against pr_model on errors computed here.
    import pyarrow.parquet as pq

    table = pq.read_table(run).to_pandas()
    for role, (ref, meas) in {"server": ("Vref - Out", "v_load - Out"),
                              "client": ("link_iref - Out", "Lc1 - Current")}.items():
        lib = ac_firmware_check.build_role_library(fw, tmp_path / "build", role)
        refs, measured = table[ref].to_numpy(np.float32), table[meas].to_numpy(np.float32)
        v_ref = table["Vref - Out"].to_numpy(np.float32)
        u, _ = ac_firmware_check.replay_role(lib, v_ref, refs, measured) if role == "client" else \
            ac_firmware_check.replay_role(lib, refs, np.zeros_like(refs), measured)
        kp, kr = (0.04, 500.0) if role == "server" else (0.3, 250.0)
        params = pr_model.pr_params(kp, kr, TS_S, W0, 0.0, -40.0, 40.0)
        want = pr_model.pr_float32_response(params, refs - measured)   # float32 subtraction, as the C
        assert np.array_equal(u.view(np.uint32), want.view(np.uint32))
        # Both paths of the PR: saturated (back-calculation) and linear.
        assert np.count_nonzero(np.abs(want) == 40.0) > 0 and np.count_nonzero(np.abs(want) < 40.0) > 400


@needs_toolchains
def test_header_that_differs_from_the_selection_fails_the_check(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    text = _header_for(sel).replace("#define AC_GAINS_CLIENT_KR 250.0f", "#define AC_GAINS_CLIENT_KR 250.000015f")
    (fw / "include" / "ac_gains.h").write_text(text)   # one float32 ulp above 250
    with pytest.raises(FirmwareCheckError, match=r"CLIENT PR output: C differs from simbaflow.promote.pr_model at \d+ of 600"):
        ac_firmware_check.run_ac_check(fw, tmp_path, selection=json.loads(sel.read_text()))


@needs_toolchains
def test_both_roles_cross_compile_without_double_helpers(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    (fw / "include" / "ac_gains.h").write_text(_header_for(sel))
    objects = ac_firmware_check.cross_compile_roles(fw, tmp_path / "build")
    assert set(objects) == {"pr_controller", "rs485_frame", "ac_role_server", "ac_role_server_cxx",
                            "ac_role_client", "ac_role_client_cxx"}
    for name, obj in objects.items():
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True,
                                   check=True).stdout.split()
        assert not [s for s in undefined if DOUBLE_HELPER.match(s)], name
    # Only the client unpacks frames: the two roles really are different builds.
    server = object_facts(objects["ac_role_server"])["undefined"]
    client = object_facts(objects["ac_role_client"])["undefined"]
    assert "rs485_frame_unpack" in client and "rs485_frame_unpack" not in server
    arch = subprocess.run(["arm-none-eabi-readelf", "-A", str(objects["ac_role_client"])], capture_output=True,
                          text=True, check=True).stdout
    assert "Tag_FP_arch: VFPv4-D16" in arch and "Tag_ABI_VFP_args: VFP registers" in arch


@needs_toolchains
def test_double_arithmetic_in_a_role_fails_the_check(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    (fw / "include" / "ac_gains.h").write_text(_header_for(sel))
    driver = fw / "host_check" / "ac_role_check.c"
    # Explicit casts and an exact x 1.0: no warning and the same values on the host, but a
    # double multiply on the M4F (single-precision FPU only).
    source = driver.read_text()
    line = "duty[k] = 0.5F + u[k] / (2.0F * AC_GAINS_V_BUS_V);"
    assert line in source
    driver.write_text(source.replace(line, "{ volatile double one = 1.0; duty[k] = (float)((double)(0.5F + u[k] / "
                                           "(2.0F * AC_GAINS_V_BUS_V)) * one); }"))
    with pytest.raises(FirmwareCheckError, match=r"ac_role_server.o calls double-precision helpers: .*__aeabi_dmul"):
        ac_firmware_check.run_ac_check(fw, tmp_path, selection=json.loads(sel.read_text()))
    objects = ac_firmware_check.cross_compile_roles(fw, tmp_path / "build")
    assert "__aeabi_dmul" in object_facts(objects["ac_role_server"])["undefined"]


def test_role_driver_needs_exactly_one_role(tmp_path):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing")
    for flags in ([], ["-DROLE_SERVER", "-DROLE_CLIENT"]):
        out = subprocess.run(["gcc", "-fsyntax-only", *flags, "-I", str(FIRMWARE / "include"),
                              "-I", str(FIRMWARE / "lib/pr_controller"), "-I", str(FIRMWARE / "lib/rs485_frame"),
                              str(FIRMWARE / "host_check/ac_role_check.c")], capture_output=True, text=True)
        assert out.returncode != 0 and "define exactly one of ROLE_SERVER, ROLE_CLIENT" in out.stderr


@needs_toolchains
def test_firmware_check_command_checks_the_promoted_ac_header(tmp_path, capsys, monkeypatch):
    sel, fw, _ = make_ac_project(tmp_path)
    (fw / "include" / "ac_gains.h").write_text(_header_for(sel))
    monkeypatch.chdir(tmp_path)
    main(["firmware-check"])
    out = capsys.readouterr().out
    assert f"model values from selection {SELECTED}" in out
    assert "SERVER control path" in out and "CLIENT control path" in out and "firmware check passed" in out
    # No header at all: one sentence naming both.
    (fw / "include" / "ac_gains.h").unlink()
    with pytest.raises(FirmwareCheckError, match="neither include/controller_gains.h nor include/ac_gains.h"):
        run_all_checks(fw, tmp_path)


@needs_toolchains
def test_header_without_extern_c_fails_the_cxx_link_check(tmp_path):
    sel, fw, _ = make_ac_project(tmp_path)
    (fw / "include" / "ac_gains.h").write_text(_header_for(sel))
    h = fw / "lib" / "rs485_frame" / "rs485_frame.h"
    text = h.read_text()
    assert 'extern "C" {' in text
    h.write_text(text.replace('extern "C" {', "").replace("#ifdef __cplusplus\n}\n#endif", ""))
    with pytest.raises(FirmwareCheckError, match=r"ac_role_server_cxx.o refers to C\+\+-mangled symbols: .*rs485_frame"):
        ac_firmware_check.run_ac_check(fw, tmp_path, selection=json.loads(sel.read_text()))


@needs_toolchains
def test_committed_ac_header_passes_the_check(tmp_path):
    """What `make firmware-check` runs on the repository's ac_gains.h (built in a copy)."""
    fw = tmp_path / "firmware"
    for sub in ("lib", "host_check", "include"):
        shutil.copytree(FIRMWARE / sub, fw / sub)
    fields = read_ac_gains_header((fw / "include" / "ac_gains.h").read_text())
    report = ac_firmware_check.run_ac_check(fw, REPO)
    assert report.lines[0].startswith(f"AC controllers: {fields['candidate']} ")
    assert sum("PR outputs and duties bit-exact with simbaflow.promote.pr_model" in line for line in report.lines) == 2


def test_ac_design_selects_on_the_analytic_constraints_of_a_spec_with_simulated_ones(tmp_path, capsys):
    spec = tmp_path / "ac.yaml"
    # The sweep's constraint on the switched simulation: ac-design cannot evaluate it and leaves it to the sweep.
    spec.write_text(AC_SPEC.replace("    stable: true\n", "    stable: true\n"
                                    "    client_server.phase_error_abs_deg: {max: 2}\n"))
    main(["ac-design", str(spec)])
    out = capsys.readouterr().out
    assert "(analytic constraints only; `simbaflow sweep` checks 1 on simulations)" in out
    assert SELECTED in out

"""`simbaflow promote` of a DC study: derivation, refusals, diff, staging, idempotence, check failures.

The study is a small real sweep built by the workflow's own steps
(tests/promote_helpers.py); the firmware check promote runs is the real one
(gcc + arm-none-eabi-gcc). Expected numbers are seed 002's closed forms.
"""

import math
import shutil

import pytest

from promote_helpers import (
    ATTACK_ID, DC_SPEC, SEED_ID, build_study, copy_firmware, read_json, run_promote, write_json,
)
from simbaflow.cli import main
from simbaflow.core.tables import jsonable, read_candidates
from simbaflow.kinds import promote
from simbaflow.promote.pi_header import header_fields, read_gains_header, render_gains_header
from simbaflow.promote.pipeline import PromotionRefused
from simbaflow.promote.toolchain import FirmwareCheckError

needs_toolchains = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="gcc and arm-none-eabi-gcc are needed (make system-deps)",
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("dc")
    build_study(root, DC_SPEC, created_utc="2026-11-22T09:00:00Z")
    return root


@pytest.fixture
def project(study, tmp_path):
    """A private copy of the study, with a firmware tree: (selection path, firmware dir)."""
    root = tmp_path / "p"
    shutil.copytree(study, root)
    return root / "results" / "dc_current_loop" / "selection.json", copy_firmware(root)


def edit(path, **keys):
    data = read_json(path)
    data.update(keys)
    write_json(path, data)
    return data


def rows_of(sel):
    return {r["candidate_id"]: r for r in read_candidates(sel.parent / "candidates.csv")}


# --------------------------------------------------------------------------- what is promoted

@needs_toolchains
def test_promote_writes_checks_and_is_idempotent(project):
    sel, fw = project
    header = fw / "include" / "controller_gains.h"
    first = promote(sel, fw)
    assert first.written and first.changed
    fields = read_gains_header(header.read_text())
    assert fields["candidate"] == SEED_ID and fields["date"] == "2026-11-22T09:00:00Z"
    assert fields["CONTROLLER_GAINS_A0_Q"] == "(-8663)" and fields["CONTROLLER_GAINS_A1_Q"] == "9687"
    assert float(fields["CONTROLLER_GAINS_KP"].rstrip("f")) == pytest.approx(0.14, rel=1e-7)
    assert float(fields["CONTROLLER_GAINS_KI"].rstrip("f")) == pytest.approx(250.0, rel=1e-7)
    assert f"candidate: (none) -> {SEED_ID}" in first.diff
    assert any("160/160 samples bit-exact" in line for line in first.check_lines)
    assert any("no double-precision helpers" in line for line in first.check_lines)
    assert not (fw / "build" / "staging").exists()          # the staging copy is gone
    text = header.read_bytes()

    second = promote(sel, fw)
    assert not second.changed and not second.written and second.diff == []
    assert header.read_bytes() == text


def test_diff_shows_old_to_new_gains(project):
    sel, fw = project
    # A header promoted earlier for ξ = 1.1: Kp = 2·1.1·250/5000 = 0.11, Tustin a0 = −0.1021875 (−6697),
    # a1 = 0.1178125 (7721).
    old = read_json(sel)
    old["candidate"].update(xi=1.1, kp=0.11, a0=-0.11 + 0.0078125, a1=0.11 + 0.0078125, overshoot_pct=7.5)
    (fw / "include" / "controller_gains.h").write_text(render_gains_header(header_fields(old)))
    result = promote(sel, fw, dry_run=True)
    assert "CONTROLLER_GAINS_A0_Q: (-6697) -> (-8663)" in result.diff
    assert "CONTROLLER_GAINS_A1_Q: 7721 -> 9687" in result.diff
    assert any(line.startswith("overshoot_pct: 7.5 -> ") for line in result.diff)
    assert result.changed and not result.written


# --------------------------------------------------------------------------- defect 1: the selection is not trusted

def test_cli_refuses_an_edited_selection_that_promotes_a_rejected_candidate(project):
    """Issue 12, defect 1: the row of a 72.7 %-overshoot candidate copied into `candidate`, `constraints: {}`."""
    sel, fw = project
    root = sel.parents[2]
    header = fw / "include" / "controller_gains.h"
    header.write_text("/* the previous header */\n")
    before = header.read_bytes()
    data = read_json(sel)
    row = jsonable(rows_of(sel)[ATTACK_ID])
    assert row["overshoot_pct"] > 70 and row["phase_margin_deg"] < 25      # the reproduced figures
    data.update(candidate_id=ATTACK_ID, candidate=row, constraints={}, realisation=row["realisation"])
    write_json(root / "edited.json", data)
    res = run_promote("edited.json", cwd=root)
    assert res.returncode == 6, res.stdout + res.stderr
    err = res.stderr.strip()
    assert err.startswith("simbaflow: edited.json: ") and "\n" not in err and "Traceback" not in err
    assert f"candidate_id: \"{ATTACK_ID}\" but the spec and the study's tables give \"{SEED_ID}\"" in err
    assert header.read_bytes() == before


def test_refuses_constraints_that_are_not_the_specs(project):
    sel, fw = project
    edit(sel, constraints={})
    with pytest.raises(PromotionRefused, match=r"selection.json: constraints.overshoot_pct: \(missing\) but the spec "
                                               r"and the study's tables give \{\"max\": 15\}"):
        promote(sel, fw)
    assert not (fw / "include" / "controller_gains.h").exists()


@pytest.mark.parametrize("key, value, shown", [
    ("overshoot_pct", 9.0, "9.0"),          # a metric made to look better
    ("stable", False, "false"),
    ("kp", 0.1414, "0.1414"),                # gains that are not the candidate's
    ("a1_fixed", 9688, "9688"),
    ("kp", "abc", '"abc"'),                  # defect 4: non-numeric and null values
    ("kp", None, "null"),
])
def test_refuses_an_edited_candidate_value(project, key, value, shown):
    sel, fw = project
    data = read_json(sel)
    data["candidate"][key] = value
    write_json(sel, data)
    with pytest.raises(PromotionRefused, match=rf"selection.json: candidate.{key}: {shown} but the spec and "
                                               r"the study's tables give "):
        promote(sel, fw)


def test_refuses_a_missing_candidate_key(project):
    sel, fw = project
    data = read_json(sel)
    del data["candidate"]["a1"]
    write_json(sel, data)
    with pytest.raises(PromotionRefused, match=r"selection.json: candidate.a1: \(missing\) but .* give -?0.147812"):
        promote(sel, fw)


def test_refuses_when_the_spec_changed_since_the_sweep(project):
    sel, fw = project
    spec = sel.parents[2] / "design" / "study.yaml"
    spec.write_text(spec.read_text().replace("r_ohm: 30", "r_ohm: 33"))
    with pytest.raises(PromotionRefused, match=r"spec_sha256: .* does not match .*study.yaml"):
        promote(sel, fw)


def test_refuses_a_spec_outside_the_project(project, tmp_path):
    """An edited spec_path cannot bring its own (empty) constraints, even with the right hash."""
    import hashlib

    sel, fw = project
    evil = tmp_path / "evil.yaml"
    evil.write_text(DC_SPEC.replace("constraints: {overshoot_pct: {max: 15}, phase_margin_deg: {min: 45}, "
                                    "stable: true}", "constraints: {}"))
    sha = hashlib.sha256(evil.read_bytes()).hexdigest()
    data = read_json(sel)
    data.update(spec_path=str(evil), spec_sha256=sha)
    data["provenance"]["spec_sha256"] = sha
    write_json(sel, data)
    with pytest.raises(PromotionRefused, match=r"spec_path: .*evil.yaml.* is outside the project"):
        promote(sel, fw)


def test_refuses_a_candidates_table_edited_after_the_selection(project):
    sel, fw = project
    table = sel.parent / "candidates.csv"
    text = table.read_text()
    assert ",27.168429948" in text                                  # ξ = 0.7's 27 % overshoot made acceptable
    table.write_text(text.replace(",27.168429948", ",7.168429948"))
    with pytest.raises(PromotionRefused, match=r"tables_sha256.candidates.csv: .* does not match .*candidates.csv"):
        promote(sel, fw)


def test_refuses_a_table_whose_rows_the_spec_does_not_give(project):
    """candidates.csv and its recorded hash both edited: re-evaluating the winner from the spec catches it."""
    import hashlib

    sel, fw = project
    table = sel.parent / "candidates.csv"
    text = table.read_text()
    # ξ = 0.7 (27 % overshoot) settles sooner than the seed: with 7 % it becomes the table's winner.
    table.write_text(text.replace(",27.168429948", ",7.168429948"))
    data = read_json(sel)
    data["tables_sha256"]["candidates.csv"] = hashlib.sha256(table.read_bytes()).hexdigest()
    write_json(sel, data)
    with pytest.raises(PromotionRefused, match=r"candidates.csv: xi0p7-wn5000-fs16000-tustin-d0.overshoot_pct: "
                                               r"7.168.* but re-evaluating the candidate from .* gives 27.168"):
        promote(sel, fw)


def test_refuses_a_selection_without_table_hashes(project):
    sel, fw = project
    data = read_json(sel)
    del data["tables_sha256"]
    write_json(sel, data)
    with pytest.raises(PromotionRefused, match=r"tables_sha256.candidates.csv: null; expected the SHA-256 .* remove .*selection.json and re-run"):
        promote(sel, fw)


# --------------------------------------------------------------------------- targets and coefficients

def test_refuses_a_realisation_the_target_does_not_run(project):
    sel, fw = project
    with pytest.raises(PromotionRefused, match=r"candidate.realisation: 'pi_recurrence' is not run by target fpga"):
        promote(sel, fw, target="fpga")
    with pytest.raises(PromotionRefused, match=r"--target fpga_lcl: unknown target"):
        promote(sel, fw, target="fpga_lcl")


def test_control_library_pid_study_is_promoted_with_backward_euler_coefficients(tmp_path):
    # OwnTech's Pid: a1 = Kp + Ki·Ts = 0.15562, a0 = −Kp = −0.14 (−9175 and 10199 in Q16.16).
    sel = build_study(tmp_path, DC_SPEC.replace("delay_samples: [0, 1]",
                                                "delay_samples: [0]\n  realisation: [control_library_pid]"))
    result = promote(sel, copy_firmware(tmp_path), dry_run=True)
    assert "CONTROLLER_GAINS_REALISATION: (none) -> CONTROLLER_GAINS_REALISATION_CONTROL_LIBRARY_PID" in result.diff
    assert "CONTROLLER_GAINS_A0_Q: (none) -> (-9175)" in result.diff
    assert "CONTROLLER_GAINS_A1_Q: (none) -> 10199" in result.diff


def test_tustin_prewarp_coefficients_follow_from_wn(tmp_path):
    # Prewarped at ωn = 5000 rad/s: s = k(z−1)/(z+1), k = ωn/tan(ωn·Ts/2) = 31 967.4…
    sel = build_study(tmp_path, DC_SPEC.replace("method: [tustin]", "method: [tustin_prewarp]"))
    k = 5000 / math.tan(5000 * 6.25e-5 / 2)
    a0 = -0.14 + 250 / k
    result = promote(sel, copy_firmware(tmp_path), dry_run=True)
    got = next(line for line in result.diff if line.startswith("CONTROLLER_GAINS_A0: "))
    assert float(got.split("-> ")[1].strip("()f")) == pytest.approx(a0, rel=1e-7)


# --------------------------------------------------------------------------- the check and the firmware tree

@needs_toolchains
def test_failed_check_leaves_the_previous_header(project):
    sel, fw = project
    header = fw / "include" / "controller_gains.h"
    header.write_text("/* the previous header */\n")
    before = header.read_bytes()
    src = fw / "lib" / "pi_controller" / "pi_controller.c"
    src.write_text(src.read_text() + "\nint unused_and_uninitialised(void) { int x; return x; }\n")
    with pytest.raises(FirmwareCheckError, match="host build of pi_controller .* failed.*was left as it was"):
        promote(sel, fw)
    assert header.read_bytes() == before
    assert not list(header.parent.glob(".*")) and not (fw / "build" / "staging").exists()


@needs_toolchains
def test_failed_first_promotion_leaves_no_header(project):
    sel, fw = project
    (fw / "lib" / "pi_controller" / "pi_controller.c").write_text("#error broken on purpose\n")
    with pytest.raises(FirmwareCheckError, match="no .*controller_gains.h was written"):
        promote(sel, fw)
    assert not (fw / "include" / "controller_gains.h").exists()


def test_cli_refusal_is_one_line_and_non_zero(project, capsys):
    sel, fw = project
    data = read_json(sel)
    data["candidate"]["overshoot_pct"] = 1.0
    write_json(sel, data)
    with pytest.raises(SystemExit) as exit_info:
        main(["promote", str(sel), "--firmware-dir", str(fw)])
    assert exit_info.value.code == 6
    err = capsys.readouterr().err.strip()
    assert err.startswith("simbaflow: ") and "candidate.overshoot_pct: 1.0 but" in err
    assert "\n" not in err


def test_cli_dry_run_prints_the_diff_and_writes_nothing(project, capsys):
    sel, fw = project
    main(["promote", str(sel), "--dry-run", "--firmware-dir", str(fw)])
    out = capsys.readouterr().out
    assert "CONTROLLER_GAINS_A1_Q: (none) -> 9687" in out and "dry run: nothing written" in out
    assert not (fw / "include" / "controller_gains.h").exists() and not (fw / "build").exists()

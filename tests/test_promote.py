"""`simbaflow promote`: refusals, diff, atomic write, idempotence, restore on a failed check.

Selections are built from the seed's numbers (tests/firmware_helpers.py); the
firmware check that promote runs is the real one (gcc + arm-none-eabi-gcc).
"""

import shutil

import pytest

from firmware_helpers import make_project, read_selection, write_selection
from simbaflow.cli import main
from simbaflow.promote.pi_header import read_gains_header
from simbaflow.promote.toolchain import FirmwareCheckError
from simbaflow.promote.pipeline import PromotionRefused, promote

needs_toolchains = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="gcc and arm-none-eabi-gcc are needed (make system-deps)",
)


@needs_toolchains
def test_promote_writes_checks_and_is_idempotent(tmp_path):
    sel, fw = make_project(tmp_path)
    header = fw / "include" / "controller_gains.h"
    first = promote(sel, fw)
    assert first.written and first.changed
    fields = read_gains_header(header.read_text())
    assert fields["CONTROLLER_GAINS_A0_Q"] == "(-8663)" and fields["CONTROLLER_GAINS_A1_Q"] == "9687"
    assert "candidate: (none) -> xi1p4-wn5000-fs16000-tustin-d0" in first.diff
    assert any("160/160 samples bit-exact" in line for line in first.check_lines)
    assert any("no double-precision helpers" in line for line in first.check_lines)
    text = header.read_bytes()

    second = promote(sel, fw)
    assert not second.changed and not second.written and second.diff == []
    assert header.read_bytes() == text


def test_diff_shows_old_to_new_gains(tmp_path):
    sel, fw = make_project(tmp_path)
    (fw / "include" / "controller_gains.h").write_text(
        promote_header_text(sel))
    data = read_selection(sel)
    # ξ = 1.1 at ωn = 5000: Kp = 2·1.1·250/5000 = 0.11, Tustin at 16 kHz.
    data["candidate"].update(xi=1.1, kp=0.11, a0=-0.11 + 0.0078125, a1=0.11 + 0.0078125,
                             a0_fixed=-6697, a1_fixed=7721, overshoot_pct=7.5)
    write_selection(sel, data)
    result = promote(sel, fw, dry_run=True)
    assert "CONTROLLER_GAINS_A0_Q: (-8663) -> (-6697)" in result.diff
    assert "CONTROLLER_GAINS_A1_Q: 9687 -> 7721" in result.diff
    assert "overshoot_pct: 5.1 -> 7.5" in result.diff
    assert result.changed and not result.written


def promote_header_text(sel):
    from simbaflow.promote.pi_header import header_fields, render_gains_header

    return render_gains_header(header_fields(read_selection(sel)))


def test_refuses_a_selection_that_breaks_its_constraints(tmp_path):
    sel, fw = make_project(tmp_path, overshoot_pct=12.3)   # constraints_met still says true
    with pytest.raises(PromotionRefused, match=r"selection.json: candidate xi1p4.* violates its constraints "
                                               r"\(overshoot_pct = 12.3 > max 10\)"):
        promote(sel, fw)
    assert not (fw / "include" / "controller_gains.h").exists()


def test_refuses_an_unstable_candidate(tmp_path):
    sel, fw = make_project(tmp_path, stable=False)
    with pytest.raises(PromotionRefused, match="stable = False"):
        promote(sel, fw)


def test_refuses_when_the_spec_changed_since_the_sweep(tmp_path):
    sel, fw = make_project(tmp_path)
    spec = tmp_path / "design" / "dc_current_loop.yaml"
    spec.write_text(spec.read_text().replace("r_ohm: 30", "r_ohm: 33"))
    with pytest.raises(PromotionRefused, match=r"spec_sha256: .* does not match .*dc_current_loop.yaml"):
        promote(sel, fw)


def test_refuses_a_realisation_the_target_does_not_run(tmp_path):
    sel, fw = make_project(tmp_path, realisation="pr_resonant")
    with pytest.raises(PromotionRefused, match=r"candidate.realisation: 'pr_resonant' is not run by target spin"):
        promote(sel, fw)
    sel2, fw2 = make_project(tmp_path / "b")
    with pytest.raises(PromotionRefused, match=r"--target fpga_lcl: unknown target"):
        promote(sel2, fw2, target="fpga_lcl")


def test_refuses_a_coefficient_that_overflows_q16_16(tmp_path):
    # Kp = 40000 (consistent Tustin coefficients) puts a1 = 40000.0078 above Q16.16's 32767.99998.
    sel, fw = make_project(tmp_path, kp=40000.0, a0=-40000.0 + 0.0078125, a1=40000.0 + 0.0078125,
                           a0_fixed=None, a1_fixed=None)
    with pytest.raises(PromotionRefused, match=r"selection.json: candidate.a0 = -40000 overflows Q16.16"):
        promote(sel, fw)


def test_refuses_coefficients_that_do_not_follow_from_the_gains(tmp_path):
    # The selection example's kp = 0.1414 with the seed's a0 (which comes from kp = 0.14).
    sel, fw = make_project(tmp_path, kp=0.1414)
    with pytest.raises(PromotionRefused, match=r"candidate.a0: -0.1321875 does not follow from kp=0.1414"):
        promote(sel, fw)


def test_refuses_recorded_fixed_point_integers_that_disagree(tmp_path):
    sel, fw = make_project(tmp_path, a1_fixed=9688)
    with pytest.raises(PromotionRefused, match=r"candidate.a1_fixed: 9688 but 0.1478125 in Q16.16 is 9687"):
        promote(sel, fw)


def test_control_library_pid_selection_is_accepted_with_backward_euler_coefficients(tmp_path):
    # OwnTech's Pid: a1 = Kp + Ki·Ts = 0.15562, a0 = −Kp.
    sel, fw = make_project(tmp_path, realisation="control_library_pid", a0=-0.14, a1=0.14 + 250 / 16000,
                           a0_fixed=-9175, a1_fixed=10199)
    result = promote(sel, fw, dry_run=True)
    assert "CONTROLLER_GAINS_REALISATION: (none) -> CONTROLLER_GAINS_REALISATION_CONTROL_LIBRARY_PID" in result.diff


@needs_toolchains
def test_failed_check_restores_the_previous_header(tmp_path):
    sel, fw = make_project(tmp_path)
    header = fw / "include" / "controller_gains.h"
    promote(sel, fw)
    before = header.read_bytes()

    data = read_selection(sel)
    data["candidate"].update(xi=1.1, kp=0.11, a0=-0.11 + 0.0078125, a1=0.11 + 0.0078125,
                             a0_fixed=-6697, a1_fixed=7721)
    write_selection(sel, data)
    src = fw / "lib" / "pi_controller" / "pi_controller.c"
    src.write_text(src.read_text() + "\nint unused_and_uninitialised(void) { int x; return x; }\n")
    with pytest.raises(FirmwareCheckError, match="host build of pi_controller .* failed.*restored to its previous content"):
        promote(sel, fw)
    assert header.read_bytes() == before
    assert not list(header.parent.glob(".controller_gains.h.*"))   # no temp file left behind


@needs_toolchains
def test_failed_first_promotion_leaves_no_header(tmp_path):
    sel, fw = make_project(tmp_path)
    (fw / "lib" / "pi_controller" / "pi_controller.c").write_text("#error broken on purpose\n")
    with pytest.raises(FirmwareCheckError, match="was removed"):
        promote(sel, fw)
    assert not (fw / "include" / "controller_gains.h").exists()


def test_cli_refusal_is_one_line_and_non_zero(tmp_path, capsys):
    sel, fw = make_project(tmp_path, overshoot_pct=12.3)
    with pytest.raises(SystemExit) as exit_info:
        main(["promote", str(sel), "--firmware-dir", str(fw)])
    assert exit_info.value.code == 6
    err = capsys.readouterr().err.strip()
    assert err.startswith("simbaflow: ") and "overshoot_pct = 12.3 > max 10" in err
    assert "\n" not in err


def test_cli_dry_run_prints_the_diff_and_writes_nothing(tmp_path, capsys):
    sel, fw = make_project(tmp_path)
    main(["promote", str(sel), "--dry-run", "--firmware-dir", str(fw)])
    out = capsys.readouterr().out
    assert "CONTROLLER_GAINS_A1_Q: (none) -> 9687" in out and "dry run: nothing written" in out
    assert not (fw / "include" / "controller_gains.h").exists()


def test_tustin_prewarp_coefficients_are_checked_at_wn(tmp_path):
    import math

    # Prewarped at ωn = 5000 rad/s: s = k(z−1)/(z+1), k = ωn/tan(ωn·Ts/2) = 31 967.4…
    k = 5000 / math.tan(5000 * 6.25e-5 / 2)
    a0, a1 = -0.14 + 250 / k, 0.14 + 250 / k
    sel, fw = make_project(tmp_path, method="tustin_prewarp", a0=a0, a1=a1, a0_fixed=None, a1_fixed=None)
    assert promote(sel, fw, dry_run=True).changed
    sel2, fw2 = make_project(tmp_path / "b", method="tustin_prewarp", a0_fixed=None, a1_fixed=None)
    with pytest.raises(PromotionRefused, match=r"candidate.a0: -0.1321875 does not follow .* with tustin_prewarp"):
        promote(sel2, fw2, dry_run=True)


def test_refuses_a_selection_missing_a_candidate_key(tmp_path):
    sel, fw = make_project(tmp_path)
    data = read_selection(sel)
    del data["candidate"]["a1"]
    write_selection(sel, data)
    with pytest.raises(PromotionRefused, match=r"selection.json: candidate.a1 is missing"):
        promote(sel, fw)

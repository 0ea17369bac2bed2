"""FPGA path (seed 003): promote a state-space spec, read the files back, compare with the model.

The model here is computed independently of simbaflow.design.statespace: the seed's
A and B, forward Euler by hand (Ad = I + A·Ts, Bd = B·Ts), rounding to
Q16.16 with numpy; seed 003 printed the same integers and hex words.
"""

import shutil

import numpy as np
import pytest

from firmware_helpers import REPO
from simbaflow.cli import main
from simbaflow.core.fixedpoint import from_hex
from simbaflow.promote.fpga import read_readmemh, read_vhdl_matrix
from simbaflow.kinds import promote
from simbaflow.promote.pipeline import PromotionRefused, promote_statespace

SPEC = REPO / "design" / "lcl_filter.yaml"


def seed_model():
    r1, l1, cf, cd, rd, ld = 1e-6, 110e-6, 150e-6, 25e-6, 2.5, 850e-6
    l2, r2, ts = 34.5e3**2 / (8.33 * 4.42e6 * 2 * np.pi * 60), 0.1, 500e-9
    a = np.array([
        [-r1 / l1, 0, 0, -1 / l1, 0],
        [0, 0, 0, 1 / ld, -1 / ld],
        [0, 0, -r2 / l2, 1 / l2, 0],
        [1 / cf, -1 / cf, -1 / cf, -1 / (cf * rd), 1 / (cf * rd)],
        [0, 1 / cd, 0, 1 / (cd * rd), -1 / (cd * rd)],
    ])
    b = np.array([[1 / l1, 0], [0, 0], [0, -1 / l2], [0, 0], [0, 0]])
    ad, bd = np.eye(5) + a * ts, b * ts
    q = lambda m: (np.sign(m) * np.floor(np.abs(m) * 65536 + 0.5)).astype(np.int64)  # noqa: E731
    return q(ad), q(bd)


@pytest.fixture
def project(tmp_path):
    spec = tmp_path / "design" / "lcl_filter.yaml"
    spec.parent.mkdir()
    shutil.copy(SPEC, spec)
    return spec, tmp_path / "firmware"


def test_fpga_files_read_back_equal_the_model(project):
    spec, fw = project
    result = promote_statespace(spec, fw)
    ad_q, bd_q = seed_model()
    mem_ad = read_readmemh((fw / "fpga" / "lcl_filter_ad.mem").read_text(), 32, (5, 5))
    mem_bd = read_readmemh((fw / "fpga" / "lcl_filter_bd.mem").read_text(), 32, (5, 2))
    pkg = (fw / "fpga" / "lcl_filter_pkg.vhd").read_text()
    assert np.array_equal(mem_ad, ad_q) and np.array_equal(mem_bd, bd_q)
    assert np.array_equal(read_vhdl_matrix(pkg, "AD", 32), ad_q)
    assert np.array_equal(read_vhdl_matrix(pkg, "BD", 32), bd_q)
    # Seed 003's own printout: Ad[0,3] = -298 = FFFFFED6, Ad[3,3] = 65449 = 0000FFA9, Bd[0,0] = 298.
    assert (mem_ad[0, 3], mem_ad[3, 3], mem_bd[0, 0]) == (-298, 65449, 298)
    assert 'signed\'(x"FFFFFED6")' in pkg and from_hex("0000FFA9", 32) == 65449
    assert "constant TS_PS     : natural := 500000;" in pkg
    assert result.written


def test_fpga_files_carry_provenance_and_promotion_is_idempotent(project):
    spec, fw = project
    promote_statespace(spec, fw)
    texts = {p.name: p.read_text() for p in (fw / "fpga").iterdir()}
    for text in texts.values():
        assert "study:             lcl_filter" in text and "q_format:          Q16.16" in text
        assert "spec_sha256:" in text and "simbaflow_version:" in text and "git_commit:" in text
    again = promote_statespace(spec, fw)
    assert not again.changed and not again.written and again.diff == []
    assert {p.name: p.read_text() for p in (fw / "fpga").iterdir()} == texts


def test_fpga_warns_about_terms_quantisation_removes(project):
    spec, fw = project
    result = promote_statespace(spec, fw, dry_run=True)
    # Bd[2,1] = −Ts/L2 = −5.83e-6 is below Q16.16's resolution (1.53e-5).
    assert any(w.startswith("bd[2,1] = -5.83e-06 quantises to 0 in Q16.16") for w in result.warnings)
    assert not (fw / "fpga").exists()


def test_fpga_diff_names_changed_words(project):
    spec, fw = project
    promote_statespace(spec, fw)
    spec.write_text(spec.read_text().replace("ts_s: 500.0e-9", "ts_s: 1000.0e-9"))
    result = promote_statespace(spec, fw, dry_run=True)
    assert "ad[0,3]: -298 -> -596" in result.diff            # −Ts/L1 doubles with Ts
    assert "lcl_filter_pkg.vhd: changed" in result.diff


def test_fpga_refuses_overflow(project):
    spec, fw = project
    # L1 = 1 pH: Ad[0,3] = −Ts/L1 = −5e-7/1e-12 = −500000, beyond Q16.16's ±32768.
    spec.write_text(spec.read_text().replace("l1_h: 110.0e-6", "l1_h: 1.0e-12"))
    with pytest.raises(PromotionRefused, match=r"lcl_filter.yaml: ad\[0,3\] = -500000 overflows Q16.16"):
        promote_statespace(spec, fw)


def test_targets_refuse_the_other_kind_of_study(project, tmp_path):
    spec, fw = project
    with pytest.raises(PromotionRefused, match="a state-space study is not run by target spin"):
        promote_statespace(spec, fw, target="spin")
    from promote_helpers import DC_SPEC, build_study, copy_firmware

    sel = build_study(tmp_path / "pi", DC_SPEC)
    with pytest.raises(PromotionRefused, match=r"'pi_recurrence' is not run by target fpga"):
        promote(sel, copy_firmware(tmp_path / "pi"), target="fpga")


def test_cli_promotes_a_state_space_spec(project, capsys):
    spec, fw = project
    main(["promote", str(spec), "--firmware-dir", str(fw)])
    out = capsys.readouterr().out
    assert "lcl_filter_ad.mem: (none) -> new" in out and "promoted" in out


def test_fpga_set_is_replaced_as_one_directory(project):
    """The three files are staged in a copy of fpga/ that replaces it in one rename: other files are kept."""
    spec, fw = project
    promote_statespace(spec, fw)
    (fw / "fpga" / "README").write_text("kept\n")
    before = (fw / "fpga").stat().st_ino
    spec.write_text(spec.read_text().replace("ts_s: 500.0e-9", "ts_s: 1000.0e-9"))
    result = promote_statespace(spec, fw)
    assert result.written
    assert (fw / "fpga").stat().st_ino != before                 # a new directory, not three rewrites
    assert (fw / "fpga" / "README").read_text() == "kept\n"
    ad = read_readmemh((fw / "fpga" / "lcl_filter_ad.mem").read_text(), 32, (5, 5))
    assert ad[0, 3] == -596                                       # −Ts/L1 doubles with Ts
    assert sorted(p.name for p in (fw / "fpga").iterdir()) == [
        "README", "lcl_filter_ad.mem", "lcl_filter_bd.mem", "lcl_filter_pkg.vhd"]
    assert not (fw / "build" / "staging").exists()


def test_sigterm_during_the_fpga_read_back_leaves_the_previous_files(project, monkeypatch):
    """A SIGTERM that arrives while the staged files are read back: nothing of the new set is in place."""
    import os
    import signal

    from simbaflow.promote import pipeline
    from simbaflow.promote.staging import PromotionInterrupted

    spec, fw = project
    promote_statespace(spec, fw)
    before = {p.name: p.read_bytes() for p in (fw / "fpga").iterdir()}
    spec.write_text(spec.read_text().replace("ts_s: 500.0e-9", "ts_s: 1000.0e-9"))
    read_back = pipeline._read_back

    def killed_while_reading(fpga_dir, out):
        os.kill(os.getpid(), signal.SIGTERM)       # a real signal, delivered to this process
        read_back(fpga_dir, out)

    monkeypatch.setattr(pipeline, "_read_back", killed_while_reading)
    with pytest.raises(PromotionInterrupted, match="interrupted by SIGTERM; the previous FPGA files were left") as exc:
        promote_statespace(spec, fw)
    assert exc.value.exit_code == 128 + signal.SIGTERM
    assert {p.name: p.read_bytes() for p in (fw / "fpga").iterdir()} == before
    assert not (fw / "build" / "staging").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is the default again

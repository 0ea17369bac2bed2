"""Issue 12's promotion defects, each reproduced as a user meets it: `simbaflow promote` in a subprocess.

1. an edited selection (another candidate, ``constraints: {}``) on a real simulated sweep;
2. a candidate id or study name carrying a newline and a ``#define`` into the header;
3. SIGTERM / SIGINT during the firmware check (the header must be byte-identical after);
4. a read-only firmware tree, non-numeric and null values: one line, no stack trace.

The studies come from the workflow (tests/promote_helpers.py, and a real
`simbaflow sweep` on the embedded engine for the simulated one).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import run_cli
from promote_helpers import (
    DC_SPEC, FIRMWARE, SEED_ID, build_study, copy_firmware, read_json, run_promote, write_json,
)
from simbaflow.core.errors import SpecError
from simbaflow.core.spec import validate_spec
from simbaflow.core.tables import jsonable, read_candidates
from simbaflow.promote.pi_header import header_fields, render_gains_header
from test_simulate_stage import make_spec, workdir

needs_toolchains = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="gcc and arm-none-eabi-gcc are needed (make system-deps)",
)

INJECTION = "\n#define CONTROLLER_GAINS_INJECTED 1\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("dc")
    build_study(root, DC_SPEC)
    return root


@pytest.fixture
def project(study, tmp_path):
    """A copy of the analytic study with a firmware tree and a previous header: (root, header)."""
    root = tmp_path / "p"
    shutil.copytree(study, root)
    fw = copy_firmware(root, header="controller_gains.h")      # the repository's header as "the previous one"
    return root, fw / "include" / "controller_gains.h"


SELECTION = Path("results/dc_current_loop/selection.json")


def one_line_refusal(res: subprocess.CompletedProcess, code: int) -> str:
    err = res.stderr.strip()
    assert res.returncode == code, res.stdout[-2000:] + res.stderr[-2000:]
    assert err.startswith("simbaflow: ") and "\n" not in err and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- 1: a real simulated sweep, edited

@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """`simbaflow sweep` on the embedded engine: ξ = 0.7 and 1.4 at ωn = 2500 rad/s, Tustin, simulated constraints."""
    spec = make_spec("simtrust", methods=("tustin",), xi=(0.7, 1.4))
    spec["sweep"]["delay_samples"] = [0, 1]
    spec["selection"]["constraints"]["phase_margin_deg"] = {"min": 45}
    work = workdir(tmp_path_factory.mktemp("sim"), spec)
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work


@pytest.fixture
def simulated_project(simulated, tmp_path):
    root = tmp_path / "sim"
    shutil.copytree(simulated, root, ignore=shutil.ignore_patterns(".snakemake"))
    fw = copy_firmware(root, header="controller_gains.h")
    return root, fw / "include" / "controller_gains.h"


@needs_toolchains
def test_real_simulated_selection_is_promoted_and_an_edited_copy_is_refused(simulated_project):
    root, header = simulated_project
    results = root / "results" / "simtrust"
    selection = read_json(results / "selection.json")
    metrics = pd.read_csv(results / "metrics.csv")
    winner = selection["candidate_id"]
    # The attack's row: ξ = 0.7 with one sample of delay, rejected on its analytic phase margin.
    rows = {r["candidate_id"]: r for r in read_candidates(results / "candidates.csv")}
    bad = "xi0p7-wn2500-fs16000-tustin-d1"
    assert rows[bad]["phase_margin_deg"] < 45 and bad != winner
    before = header.read_bytes()

    edited = dict(selection, candidate_id=bad, candidate=jsonable(rows[bad]), constraints={})
    write_json(root / "edited.json", edited)
    err = one_line_refusal(run_promote("edited.json", "--firmware-dir", "firmware", cwd=root), 6)
    assert f'edited.json: candidate_id: "{bad}" but the spec and the study\'s tables give "{winner}"' in err
    assert header.read_bytes() == before

    assert set(selection["tables_sha256"]) == {"candidates.csv", "metrics.csv"}
    # metrics.csv edited (its hash is recorded) so that a candidate breaking the simulated constraint looks compliant.
    table = results / "metrics.csv"
    metrics.loc[metrics.design == "discrete_pi", "overshoot_pct"] = 1.0
    metrics.to_csv(table, index=False)
    err = one_line_refusal(run_promote("results/simtrust/selection.json", cwd=root), 6)
    assert "tables_sha256.metrics.csv: " in err and "does not match" in err
    assert header.read_bytes() == before


@needs_toolchains
def test_the_swept_selection_is_promoted(simulated_project):
    root, header = simulated_project
    res = run_promote("results/simtrust/selection.json", cwd=root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    winner = read_json(root / "results" / "simtrust" / "selection.json")["candidate_id"]
    assert f" * candidate:         {winner}\n" in header.read_text()
    assert " * engine:            embedded\n" in header.read_text()
    assert "promoted" in res.stdout


# --------------------------------------------------------------------------- 2: text that reaches C

def test_injected_candidate_id_is_refused_and_the_header_is_unchanged(project):
    root, header = project
    before = header.read_bytes()
    data = read_json(root / SELECTION)
    data["candidate_id"] = SEED_ID + INJECTION
    write_json(root / "edited.json", data)
    err = one_line_refusal(run_promote("edited.json", cwd=root), 6)
    assert "edited.json: candidate_id: " in err and "INJECTED" in err   # shown escaped, on the one line
    assert header.read_bytes() == before


@pytest.mark.parametrize("key, value", [
    ("candidate_id", SEED_ID + INJECTION),
    ("candidate_id", SEED_ID + " */ int injected; /* "),
    ("study", "dc_current_loop" + INJECTION),
    ("spec_path", "design/a*/s.yaml"),
    ("engine", "embedded" + INJECTION),
])
def test_header_refuses_text_that_would_leave_its_comment(key, value):
    from firmware_helpers import seed_selection

    sel = seed_selection("ab" * 32)
    sel[key] = value
    with pytest.raises(ValueError, match=rf"^{key}: "):
        header_fields(sel)


@pytest.mark.parametrize("field", ["candidate", "study", "date", "spec"])
def test_rendering_refuses_fields_that_would_leave_the_comment(field):
    from firmware_helpers import seed_selection

    fields = header_fields(seed_selection("ab" * 32))
    fields[field] += INJECTION
    with pytest.raises(ValueError, match=rf"^{field}: "):
        render_gains_header(fields)


def test_ac_header_refuses_an_injected_candidate_id():
    from simbaflow.core.spec import load_spec
    from simbaflow.promote.pr_header import render_ac_gains_header

    spec = load_spec(FIRMWARE.parent / "design" / "ac_client_server.yaml")
    cand = {"candidate_id": "v0p04-500-0_i0p3-250-0_k1_clpr" + INJECTION, "firmware_pr": True,
            "discretisation": "control_library_pr", "k_gain": 1.0,
            **{f"{r}_{k}": v for r in ("server", "client") for k, v in (("kp", 0.1), ("kr", 100.0),
                                                                         ("phi_prime_rad", 0.0))}}
    prov = {"spec_sha256": "ab" * 32, "simbaflow_version": "0.1.0", "git_commit": "unknown",
            "created_utc": "2026-11-22T10:00:00Z"}
    with pytest.raises(ValueError, match="candidate_id"):
        render_ac_gains_header(spec, {**cand, **dict.fromkeys(
            ("settling_time_s", "phase_error_deg", "voltage_amplitude_error_pct", "server_phase_margin_deg",
             "server_gain_margin_db", "client_phase_margin_deg", "client_gain_margin_db"), 1.0)}, prov)


@pytest.mark.parametrize("study", ["dc_current_loop\n", "dc\n#define CONTROLLER_GAINS_INJECTED 1", "a */ b",
                                   "-starts-with-a-dash", "x" * 65])
def test_spec_refuses_a_study_name_that_is_not_a_plain_name(study):
    spec = {"study": study, "plant": {"model": "voltage_compensated_inductor", "l_h": 6e-3, "e_v": 600},
            "sweep": {"xi": [1.4], "wn_rad_s": [5000], "fs_hz": [16000]}}
    with pytest.raises(SpecError, match=r"^s.yaml: study: .* does not match"):
        validate_spec(spec, "s.yaml")


def test_spec_path_that_would_end_the_comment_is_refused(tmp_path):
    """A spec in a directory named `a*`: its path holds `*/`, which would end the header's comment."""
    sel = build_study(tmp_path, DC_SPEC, spec_rel="design/a*/study.yaml")
    copy_firmware(tmp_path)
    err = one_line_refusal(run_promote(str(sel.relative_to(tmp_path)), cwd=tmp_path), 6)
    assert "spec_path: 'design/a*/study.yaml' cannot go into a C comment" in err
    assert not (tmp_path / "firmware" / "include" / "controller_gains.h").exists()


# --------------------------------------------------------------------------- 3: a kill during the check

def _children(pid: int) -> list[str]:
    """Command names of the processes whose parent is ``pid`` (from /proc)."""
    names = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            names.append(comm)
    return names


@needs_toolchains
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_firmware_check_leaves_the_previous_header(project, signum):
    root, header = project
    before = header.read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "simbaflow", "promote", str(SELECTION)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    seen = []
    # The check's compilers run as children of the promote process: kill it while one runs.
    while proc.poll() is None and time.monotonic() < deadline:
        seen = [c for c in _children(proc.pid) if c.startswith(("gcc", "arm-none-eabi"))]
        if seen:
            proc.send_signal(signum)
            break
        time.sleep(0.002)
    out, err = proc.communicate(timeout=120)
    assert seen, f"no compiler seen before promote ended (rc {proc.returncode}): {out[-1000:]} {err[-1000:]}"
    assert header.read_bytes() == before
    assert proc.returncode == 128 + signum, out[-2000:] + err[-2000:]
    assert "promoted" not in out
    assert err.strip() == (f"simbaflow: promote interrupted by {signal.Signals(signum).name}; "
                           "firmware/include/controller_gains.h was left as it was")
    assert not list(header.parent.glob(".*")) and not (root / "firmware" / "build" / "staging").exists()
    # No compiler outlives the promotion.
    time.sleep(0.2)
    assert not _children(proc.pid)


# --------------------------------------------------------------------------- 4: unwritable tree, bad values

@pytest.fixture
def read_only(project):
    """The firmware tree made unwritable: permission bits, and for root (who ignores them) chattr +i."""
    root, header = project
    fw = root / "firmware"
    dirs = [fw, fw / "include"]
    for d in dirs:
        d.chmod(0o555)
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.fail("chattr (e2fsprogs) is needed to make a directory read-only for root")
        subprocess.run(["chattr", "+i", *map(str, dirs)], check=True)
    try:
        yield root, header
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *map(str, dirs)], check=True)
        for d in dirs:
            d.chmod(0o755)


def test_read_only_firmware_directory_is_one_line(read_only):
    root, header = read_only
    before = header.read_bytes()
    err = one_line_refusal(run_promote(str(SELECTION), cwd=root), 2)
    assert err.startswith("simbaflow: firmware/include: cannot write there (")
    assert err.endswith("expected a writable firmware tree")
    assert header.read_bytes() == before


def test_read_only_firmware_directory_still_allows_a_dry_run(read_only):
    root, _ = read_only
    res = run_promote(str(SELECTION), "--dry-run", cwd=root)
    assert res.returncode == 0 and "dry run: nothing written" in res.stdout, res.stderr


@pytest.mark.parametrize("path, value, shown", [
    (("candidate", "kp"), "abc", '"abc"'),
    (("candidate", "kp"), None, "null"),
    (("candidate", "a0"), [1, 2], "[1, 2]"),
    (("controller", "output_max"), "1", '"1"'),
    (("fixed_point", "frac_bits"), None, "null"),
])
def test_non_numeric_and_null_values_are_one_line(project, path, value, shown):
    root, header = project
    before = header.read_bytes()
    data = read_json(root / SELECTION)
    data[path[0]][path[1]] = value
    write_json(root / SELECTION, data)
    err = one_line_refusal(run_promote(str(SELECTION), cwd=root), 6)
    assert f"selection.json: {'.'.join(path)}: {shown} but the spec and the study's tables give " in err
    assert header.read_bytes() == before


@pytest.mark.parametrize("text", ["[1, 2]", "not json", ""])
def test_a_selection_that_is_not_an_object_is_one_line(project, text):
    root, _ = project
    (root / SELECTION).write_text(text)
    one_line_refusal(run_promote(str(SELECTION), cwd=root), 6)

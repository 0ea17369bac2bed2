"""Small real studies for the promote tests, built the way the workflow builds them.

The tables come from the workflow's own steps (``evaluate_batch``,
``gather_candidates``, ``select_to_json``), so a selection here is exactly what
`simbaflow sweep` writes; tests then edit copies of it as an attacker would.

The DC study is seed 002's leg (L = 6 mH, R = 30 Ω, E = 600 V) at ωn = 5000 rad/s,
16 kHz, Tustin, with and without one sample of delay, ξ = 0.7 and 1.4. Only the
seed's candidate (ξ = 1.4, no delay) meets the constraints; its closed forms are
Ki = L·ωn²/E = 250, Kp = 2ξKi/ωn = 0.14, a0 = −Kp + Ki·Ts/2 = −0.1321875,
a1 = Kp + Ki·Ts/2 = 0.1478125, i.e. −8663 and 9687 in Q16.16.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"

DC_SPEC = """\
study: dc_current_loop
plant: {model: voltage_compensated_inductor, l_h: 6.0e-3, r_ohm: 30, e_v: 600}
sweep:
  xi: [0.7, 1.4]
  wn_rad_s: [5000]
  fs_hz: [16000]
  method: [tustin]
  delay_samples: [0, 1]
controller: {output_min: -1, output_max: 1}
fixed_point: {word_bits: 32, frac_bits: 16}
selection:
  constraints: {overshoot_pct: {max: 15}, phase_margin_deg: {min: 45}, stable: true}
  objective: {minimize: settling_time_s}
"""
SEED_ID = "xi1p4-wn5000-fs16000-tustin-d0"
#: The reproduced attack's row: 72.7 % overshoot, 24° phase margin.
ATTACK_ID = "xi0p7-wn5000-fs16000-tustin-d1"

#: What each firmware check reads of the firmware tree.
FIRMWARE_PARTS = ("lib", "sil", "host_check")


def build_study(root: Path, spec_text: str, spec_rel: str = "design/study.yaml",
                created_utc: str | None = None) -> Path:
    """Spec, candidates.csv and selection.json under ``root`` through the workflow's steps; the selection's path.

    ``created_utc`` replaces the provenance date (a fixed date makes headers comparable).
    """
    from simbaflow.core.spec import load_spec
    from simbaflow.kinds import candidate_ids
    from simbaflow.workflow import steps

    spec_path = root / spec_rel
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(spec_text)
    spec = load_spec(spec_path)
    results = root / "results" / spec["study"]
    batch = results / "candidates" / "b000.json"
    steps.evaluate_batch(spec_path, candidate_ids(spec), batch)
    steps.gather_candidates(spec_path, [batch], results / "candidates.csv")
    selection = results / "selection.json"
    _select_from(root, spec_rel, results)
    if created_utc is not None:
        data = read_json(selection)
        data["provenance"]["created_utc"] = created_utc
        write_json(selection, data)
    return selection


def _select_from(root: Path, spec_rel: str, results: Path) -> None:
    """``select_to_json`` as the workflow's rule runs it: in the project, with the spec's relative path."""
    import os

    from simbaflow.workflow import steps

    cwd = os.getcwd()
    os.chdir(root)
    try:
        steps.select_to_json(spec_rel, results.relative_to(root) / "candidates.csv",
                             results.relative_to(root) / "selection.json")
    finally:
        os.chdir(cwd)


def copy_firmware(root: Path, header: str | None = None) -> Path:
    """The firmware sources under ``root/firmware`` with an empty ``include/`` (or one header from the repo)."""
    fw = root / "firmware"
    for part in FIRMWARE_PARTS:
        shutil.copytree(FIRMWARE / part, fw / part)
    (fw / "include").mkdir()
    if header is not None:
        shutil.copy(FIRMWARE / "include" / header, fw / "include" / header)
    return fw


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def run_promote(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`simbaflow promote ARGS` in a subprocess (what a user runs)."""
    return subprocess.run([sys.executable, "-m", "simbaflow", "promote", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)

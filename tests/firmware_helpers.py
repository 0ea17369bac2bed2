"""Build a throw-away project for promote/firmware tests from the seed's numbers.

Seed 002: ξ = 1.4, ωn = 5000 rad/s, L = 6 mH, E = 600 V give Ki = L·ωn²/E = 250
and Kp = 2ξKi/ωn = 0.14; Tustin at 16 kHz gives a0 = −0.1321875,
a1 = 0.1478125, i.e. −8663 and 9687 in Q16.16.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"

SEED_SPEC = """\
study: dc_current_loop
plant: {model: voltage_compensated_inductor, l_h: 6.0e-3, r_ohm: 30, e_v: 600}
sweep:
  xi: [1.4]
  wn_rad_s: [5000]
  fs_hz: [16000]
  method: [tustin]
  delay_samples: [0]
controller: {output_min: -1, output_max: 1}
fixed_point: {word_bits: 32, frac_bits: 16}
selection:
  constraints: {overshoot_pct: {max: 10}, phase_margin_deg: {min: 45}, stable: true}
  objective: {minimize: settling_time_s}
simulate:
  project: simba_projects/dc_current_loop.jsimba
  designs:
    discrete_pi:
      set: {a0.Value: a0, a1.Value: a1}
      signals: [L1 - Current, duty_cycle - Out, iRef - Out]
      response: L1 - Current
      reference: iRef - Out
      duty: duty_cycle - Out
"""

SEED_CANDIDATE = {
    "candidate_id": "xi1p4-wn5000-fs16000-tustin-d0", "xi": 1.4, "wn_rad_s": 5000.0,
    "kp": 0.14, "ki": 250.0, "method": "tustin", "realisation": "pi_recurrence",
    "fs_hz": 16000.0, "ts_s": 6.25e-05, "delay_samples": 0,
    "a0": -0.1321875, "a1": 0.1478125, "a0_fixed": -8663, "a1_fixed": 9687,
    "overshoot_pct": 5.1, "rise_time_s": 1e-4, "settling_time_s": 5e-4, "phase_margin_deg": 70.0,
    "stable": True, "status": "ok",
}


def seed_selection(spec_sha256: str) -> dict:
    """A selection as the lead's sweep writes it, for the seed candidate."""
    return {
        "study": "dc_current_loop",
        "spec_path": "design/dc_current_loop.yaml",
        "spec_sha256": spec_sha256,
        "candidate_id": SEED_CANDIDATE["candidate_id"],
        "candidate": copy.deepcopy(SEED_CANDIDATE),
        "fixed_point": {"word_bits": 32, "frac_bits": 16, "q_format": "Q16.16"},
        "controller": {"output_min": -1.0, "output_max": 1.0},
        "constraints": {"overshoot_pct": {"max": 10}, "phase_margin_deg": {"min": 45}, "stable": True},
        "objective": {"minimize": "settling_time_s"},
        "constraints_met": {"overshoot_pct": True, "phase_margin_deg": True, "stable": True},
        "reason": "seed candidate",
        "runners_up": [],
        "rejected": [],
        "engine": "analytic",
        "provenance": {"simbaflow_version": "0.1.0", "git_commit": "unknown",
                       "spec_sha256": spec_sha256, "created_utc": "2026-11-22T09:00:00Z"},
    }


def make_project(root: Path, **candidate_overrides) -> tuple[Path, Path]:
    """A project under ``root``: spec, selection and a copy of the firmware tree.

    Returns
    -------
    selection_path, firmware_dir
    """
    spec = root / "design" / "dc_current_loop.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text(SEED_SPEC)
    sha = hashlib.sha256(spec.read_bytes()).hexdigest()
    selection = seed_selection(sha)
    selection["candidate"].update(candidate_overrides)
    sel_path = root / "results" / "dc_current_loop" / "selection.json"
    write_selection(sel_path, selection)
    firmware = root / "firmware"
    for sub in ("lib", "sil", "host_check"):
        shutil.copytree(FIRMWARE / sub, firmware / sub)
    (firmware / "include").mkdir()
    return sel_path, firmware


def write_selection(path: Path, selection: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection, indent=1))


def read_selection(path: Path) -> dict:
    return json.loads(path.read_text())


def write_seed_run(root: Path, duty_offset: float = 0.0) -> Path:
    """A ``discrete_pi`` run file for the seed candidate, as the sweep stores it.

    The embedded engine runs ``simba_projects/dc_current_loop.jsimba``'s
    ``discrete_pi`` (the firmware PI as a C Code block, the switched leg) for
    10 ms with the seed's a0 and a1; ``duty_offset`` is added to the recorded
    duty (to fake a run that did not execute this controller).
    """
    from simbaflow.simulate.engines.base import Overrides
    from simbaflow.simulate.engines.select import select_engine
    from simbaflow.simulate.runio import write_run_parquet

    a0, a1 = SEED_CANDIDATE["a0"], SEED_CANDIDATE["a1"]
    overrides = {"a0": {"Value": a0}, "a1": {"Value": a1}}
    engine, _ = select_engine("embedded")
    result = engine.run(REPO / "simba_projects" / "dc_current_loop.jsimba", "discrete_pi", Overrides(parameters=overrides),
                        ["L1 - Current", "iRef - Out", "duty_cycle - Out"], end_time_s=0.01)
    assert result.ok, result.message
    result.signals["duty_cycle - Out"] = result.signals["duty_cycle - Out"] + duty_offset
    path = root / "results" / "dc_current_loop" / "runs" / SEED_CANDIDATE["candidate_id"] / "discrete_pi.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_run_parquet(path, result, {"status": "ok", "overrides": overrides})
    return path

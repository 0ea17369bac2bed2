"""Promote an AC client/server selection: both roles' PR gains into ``firmware/include/ac_gains.h``.

The same derivation and refusals as the DC promotion (:mod:`simbaflow.promote.pipeline`),
each one sentence naming the file and key:

- the selection disagrees with what the spec and the study's tables
  (``candidates.csv``, ``metrics.csv``, hash-checked) give once the spec's
  constraints and objective are applied and the winner re-evaluated
  (:func:`simbaflow.promote.derive.derive_selection`): the spec's SHA-256,
  the candidate id, any candidate value, the constraints...;
- the target does not run the candidate's realisation (the SPIN firmware runs
  only ``control_library_pr``, ``firmware/lib/pr_controller``);
- a resonator coefficient (``server_b0``... ``client_a1``) does not follow
  from Ts, f0 and φ′ (:func:`simbaflow.design.realisations.pr_coefficients`), or a
  gain has no finite non-zero float32 the firmware can run.

Otherwise it prints old → new, writes the header into a staging copy of the
firmware tree (every value from the derivation, the date from the selection's
provenance, so promoting twice changes nothing), runs
:func:`simbaflow.promote.pr_check.run_ac_check` there, and only then renames it
into place: a failed check or a kill leaves the previous header as it was.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from simbaflow.design import realisations
from simbaflow.promote.pr_header import read_ac_gains_header, render_ac_gains_header
from simbaflow.promote.pr_check import AC_HEADER_PATH, ROLES, run_ac_check
from simbaflow.promote.pi_header import diff_fields
from simbaflow.promote.derive import derive_selection
from simbaflow.promote.pipeline import (
    PromotionRefused, PromotionResult, load_selection_object, project_dir_of, read_previous, stage_then_check,
)

#: What each target runs of an AC study: name -> (realisations, description).
AC_TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "spin": (("control_library_pr",), "OwnTech SPIN (STM32G474) on a TWIST, firmware/lib/pr_controller"),
    "fpga": ((), "FPGA state-space plant model"),
}

#: Candidate keys an AC selection must carry.
AC_CANDIDATE_KEYS = tuple(f"{r}_{k}" for r in ROLES for k in ("kp", "kr", "phi_prime_rad", "b0", "b1", "a1")) + (
    "k_gain", "discretisation")

#: Relative tolerance when re-deriving b0, b1, a1 (JSON round trip of doubles).
COEFFICIENT_RTOL = 1e-9

#: What the AC firmware check reads of the firmware tree (copied into the staging directory).
AC_CHECK_PARTS = ("lib", "host_check", "include")


def check_ac_keys(selection: dict, source: str) -> None:
    """Refuse a selection without the keys an AC promotion reads."""
    for key in ("study", "spec_path", "spec_sha256", "candidate_id", "candidate"):
        if key not in selection:
            raise PromotionRefused(f"{source}: key {key!r} is missing; "
                                   "expected a selection written by `simbaflow sweep`")
    for key in AC_CANDIDATE_KEYS:
        if key not in selection["candidate"]:
            raise PromotionRefused(f"{source}: candidate.{key} is missing; expected an AC selection written by "
                                   "`simbaflow sweep`")


def check_ac_target(selection: dict, source: str, target: str) -> None:
    """Refuse when ``target`` does not run the candidate's PR discretisation."""
    if target not in AC_TARGETS:
        raise PromotionRefused(f"--target {target}: unknown target; expected one of {', '.join(AC_TARGETS)}")
    cand = selection["candidate"]
    realisation = cand["discretisation"]
    recorded = selection.get("realisation", realisation)
    if recorded != realisation:
        raise PromotionRefused(f"{source}: realisation: {recorded!r} but candidate.discretisation is "
                               f"{realisation!r}; expected them equal")
    runs, what = AC_TARGETS[target]
    if realisation not in runs or cand.get("firmware_pr") is False:
        expected = f"expected one of {', '.join(runs)}" if runs else "it runs no PR controller"
        raise PromotionRefused(f"{source}: candidate.discretisation: {realisation!r} is not run by target "
                               f"{target} ({what}); {expected}")


def check_ac_coefficients(selection: dict, spec: dict, source: str) -> None:
    """Refuse coefficients that do not follow from Ts, f0 and φ′, and gains the firmware cannot hold."""
    cand, ac = selection["candidate"], spec["ac"]
    ts_s, w0 = float(ac["ts_s"]), 2.0 * math.pi * float(ac["f0_hz"])
    for role in ROLES:
        for key in ("kp", "kr", "phi_prime_rad"):
            value = cand[f"{role}_{key}"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(np.float32(value)):
                raise PromotionRefused(f"{source}: candidate.{role}_{key}: {value!r} has no finite float32 value")
        if np.float32(cand[f"{role}_kr"]) == 0:
            # pr_controller_init refuses Kr = 0 (its back-calculation divides by Kr).
            raise PromotionRefused(f"{source}: candidate.{role}_kr: 0; the firmware PR needs Kr != 0")
        c = realisations.pr_coefficients(ts_s, w0, float(cand[f"{role}_phi_prime_rad"]))
        for name, want in (("b0", c["b"][0]), ("b1", c["b"][1]), ("a1", c["a"][1])):
            got = cand[f"{role}_{name}"]
            if got is None or not math.isclose(float(got), want, rel_tol=COEFFICIENT_RTOL, abs_tol=1e-15):
                raise PromotionRefused(
                    f"{source}: candidate.{role}_{name}: {got!r} does not follow from ts_s={ts_s}, "
                    f"f0_hz={ac['f0_hz']}, phi_prime_rad={cand[f'{role}_phi_prime_rad']} (control_library Pr); expected {want!r}"
                )


def ac_header_text(selection: dict, spec: dict) -> str:
    """``ac_gains.h`` for the selection: every value, the date included, from the selection."""
    spec = {**spec, "_path": selection["spec_path"]}
    prov = {"simbaflow_version": "unknown", "git_commit": "unknown", "created_utc": "unknown",
            **selection.get("provenance", {}), "spec_sha256": selection["spec_sha256"]}
    cand = {**selection["candidate"], "candidate_id": selection["candidate_id"]}
    cand.update({k: math.nan for k in ("settling_time_s", "phase_error_deg", "voltage_amplitude_error_pct",
                                       "server_phase_margin_deg", "server_gain_margin_db",
                                       "client_phase_margin_deg", "client_gain_margin_db")
                 if cand.get(k) is None})
    return render_ac_gains_header(spec, cand, prov, engine=str(selection.get("engine") or "analytic"),
                                  regenerate=f"simbaflow promote results/{selection['study']}/selection.json")


def promote_ac(selection_path: str | Path, firmware_dir: str | Path = "firmware", target: str = "spin",
               dry_run: bool = False, *, kind) -> PromotionResult:
    """Derive an AC selection, stage ``ac_gains.h``, prove it with the AC firmware check, rename it into place.

    Parameters
    ----------
    selection_path : path
        ``results/<study>/selection.json`` (read, never trusted; its directory gives the project).
    firmware_dir : path
        The header goes to ``<firmware_dir>/include/ac_gains.h``.
    target : str
        A key of :data:`AC_TARGETS`.
    dry_run : bool
        Validate and diff only.
    kind
        The study kind (:data:`simbaflow.kinds.client_server.KIND`), whose
        ``expand``/``evaluate``/``columns`` re-derive the candidate.

    Raises
    ------
    PromotionRefused
        For every refusal in the module docstring.
    FirmwareCheckError
        When the check fails; the previous header (or none) is left as it was.
    """
    source = str(selection_path)
    if target not in AC_TARGETS:
        raise PromotionRefused(f"--target {target}: unknown target; expected one of {', '.join(AC_TARGETS)}")
    project_dir = project_dir_of(selection_path)
    selection, spec = derive_selection(load_selection_object(selection_path), source, project_dir, kind)
    check_ac_keys(selection, source)
    check_ac_target(selection, source, target)
    check_ac_coefficients(selection, spec, source)
    try:
        new_text = ac_header_text(selection, spec)
    except ValueError as exc:
        raise PromotionRefused(f"{source}: candidate: {exc}") from None

    firmware_dir = Path(firmware_dir)
    header = firmware_dir / AC_HEADER_PATH
    old_text = read_previous(header)
    changed = old_text != new_text
    old_fields = read_ac_gains_header(old_text) if old_text is not None else None
    result = PromotionResult(header=header, diff=diff_fields(old_fields, read_ac_gains_header(new_text)),
                             changed=changed, written=False)
    if dry_run:
        return result
    return stage_then_check(result, firmware_dir, AC_HEADER_PATH, new_text, AC_CHECK_PARTS,
                            lambda staged: run_ac_check(staged, project_dir, selection=selection))

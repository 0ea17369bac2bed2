"""Promote a study's selection into the firmware: validate, diff, write atomically, check.

Promotion refuses, with one sentence naming the file and key, when

- the selection breaks one of its own constraints (re-checked here from the
  candidate's metrics, not taken from ``constraints_met``);
- the spec file's SHA-256 no longer matches the one the selection recorded;
- the target does not run the candidate's realisation;
- a coefficient or bound overflows the fixed-point format, or the recorded
  fixed-point integers / recurrence coefficients disagree with the gains.

Otherwise it prints old → new, writes the header atomically and runs the
firmware check; if the check fails the previous header is put back.

An AC client/server selection goes to :func:`simbaflow.promote.pr_promote.promote_ac`
instead (``ac_gains.h`` for both roles, the same refusals); the study kind
(:mod:`simbaflow.kinds`) decides which.

A state-space study (seed 003) goes to the ``fpga`` target instead:
:func:`promote_statespace` writes ``$readmemh`` files and a VHDL package and
reads them back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simbaflow import __version__

from simbaflow.design import discretisation, realisations
from simbaflow.core.atomic import write_text
from simbaflow.core.errors import SimbaflowError
from simbaflow.promote.pi_header import (
    HEADER_PATH, REALISATION_IDS, diff_fields, header_fields, read_gains_header, render_gains_header,
)
from simbaflow.promote.pi_check import run_check
from simbaflow.promote.toolchain import FirmwareCheckError
from simbaflow.core.fixedpoint import FixedPointOverflow, QFormat, to_fixed
from simbaflow.select.ranking import broken_constraints
from simbaflow.core.spec import spec_sha256

#: What each target runs: name -> (realisations, description).
TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "spin": (("pi_recurrence", "control_library_pid"), "OwnTech SPIN (STM32G474) on a TWIST leg"),
    "fpga": (("statespace",), "FPGA state-space plant model ($readmemh words + VHDL package)"),
}
DEFAULT_TARGET = "spin"

#: Where the FPGA target writes, relative to the firmware directory.
FPGA_DIR = "fpga"

#: Relative tolerance when re-deriving a0, a1 from kp, ki, ts_s (JSON round trip of doubles).
COEFFICIENT_RTOL = 1e-9


class PromotionRefused(SimbaflowError):
    """The selection cannot be promoted as it stands."""

    exit_code = 6


@dataclass
class PromotionResult:
    """What promote did: the diff, whether the header changed, the check's report."""

    header: Path
    diff: list[str]
    changed: bool
    written: bool
    check_lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_selection_object(path: str | Path) -> dict[str, Any]:
    """Read ``selection.json`` as a JSON object; refuse when it is missing or is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PromotionRefused(f"{path}: no such selection file (run `make sweep` first)") from None
    except json.JSONDecodeError as exc:
        raise PromotionRefused(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise PromotionRefused(f"{path}: expected a JSON object at the top level")
    return data


def load_selection(path: str | Path) -> dict[str, Any]:
    """Read a DC ``selection.json``; refuse when it is missing, not JSON or lacks a key."""
    data = load_selection_object(path)
    for key in ("study", "spec_path", "spec_sha256", "candidate_id", "candidate", "fixed_point", "controller"):
        if key not in data:
            raise PromotionRefused(f"{path}: key {key!r} is missing; expected a selection written by `simbaflow sweep`")
    for key in ("kp", "ki", "ts_s", "a0", "a1", "method", "realisation"):
        if key not in data["candidate"]:
            raise PromotionRefused(f"{path}: candidate.{key} is missing; expected a selection written by `simbaflow sweep`")
    return data


def project_dir_of(selection_path: str | Path) -> Path:
    """The project holding ``results/<study>/selection.json`` (else the current directory)."""
    p = Path(selection_path).resolve()
    if len(p.parents) >= 3 and p.parents[1].name == "results":
        return p.parents[2]
    return Path.cwd()


def check_constraints(selection: dict, source: str) -> None:
    """Refuse when the candidate breaks a constraint, is unstable or did not evaluate."""
    cand = selection["candidate"]
    broken = broken_constraints(cand, selection.get("constraints", {}))
    broken += [f"constraints_met.{name} = false" for name, ok in selection.get("constraints_met", {}).items() if not ok]
    if cand.get("stable") is False and not any(b.startswith("stable") for b in broken):
        broken.append("stable = False")
    if broken:
        raise PromotionRefused(
            f"{source}: candidate {selection['candidate_id']} violates its constraints ({'; '.join(broken)}); "
            "expected a selection meeting every constraint"
        )


def check_spec_hash(selection: dict, source: str, project_dir: Path) -> None:
    """Refuse when the spec changed (or vanished) since the sweep."""
    spec = Path(selection["spec_path"])
    spec = spec if spec.is_absolute() else project_dir / spec
    if not spec.exists():
        raise PromotionRefused(f"{source}: spec_path: {spec} does not exist; expected the spec the sweep ran")
    actual = spec_sha256(spec)
    for key, recorded in (("spec_sha256", selection["spec_sha256"]),
                          ("provenance.spec_sha256", selection.get("provenance", {}).get("spec_sha256"))):
        if recorded is not None and recorded != actual:
            raise PromotionRefused(
                f"{source}: {key}: {recorded[:12]}… does not match {spec} (now {actual[:12]}…); "
                "the spec changed since the sweep: re-run `make sweep`"
            )


def check_target(selection: dict, source: str, target: str) -> None:
    """Refuse when ``target`` does not run the candidate's realisation."""
    if target not in TARGETS:
        raise PromotionRefused(f"--target {target}: unknown target; expected one of {', '.join(TARGETS)}")
    realisation = selection["candidate"].get("realisation")
    runs, what = TARGETS[target]
    if realisation not in runs or realisation not in REALISATION_IDS:
        raise PromotionRefused(
            f"{source}: candidate.realisation: {realisation!r} is not run by target {target} ({what}); "
            f"expected one of {', '.join(runs)}"
        )
    cand = selection["candidate"]
    if realisation == "control_library_pid" and (cand["kp"] == 0 or cand["ki"] == 0):
        raise PromotionRefused(f"{source}: candidate: control_library_pid needs kp != 0 and ki != 0 (Ti = kp/ki)")


def check_coefficients(selection: dict, source: str, project_dir: Path) -> None:
    """Refuse when a0, a1 do not follow from kp, ki, ts_s and the method, or overflow the Q format."""
    cand = selection["candidate"]
    kp, ki, ts_s = float(cand["kp"]), float(cand["ki"]), float(cand["ts_s"])
    if not (ts_s > 0 and math.isclose(ts_s * float(cand.get("fs_hz", 1.0 / ts_s)), 1.0, rel_tol=1e-9)):
        raise PromotionRefused(f"{source}: candidate.ts_s: {ts_s} is not 1/fs_hz ({cand.get('fs_hz')})")
    if cand["realisation"] == "control_library_pid":
        expected = realisations.control_library_pid_recurrence(kp, ki, ts_s)
    else:
        # As the sweep does: tustin_prewarp warps at sweep.prewarp_rad_s, else at ωn.
        prewarp = None
        if cand["method"] == "tustin_prewarp":
            from simbaflow.core.spec import load_spec

            prewarp = load_spec(project_dir / selection["spec_path"])["sweep"].get("prewarp_rad_s") or cand.get("wn_rad_s")
        try:
            expected = discretisation.pi_recurrence(kp, ki, ts_s, cand["method"], prewarp_rad_s=prewarp)
        except ValueError as exc:
            raise PromotionRefused(f"{source}: candidate.method: {exc}") from None
    for name, want in zip(("a0", "a1"), expected):
        got = float(cand[name])
        if not math.isclose(got, want, rel_tol=COEFFICIENT_RTOL, abs_tol=1e-15):
            raise PromotionRefused(
                f"{source}: candidate.{name}: {got!r} does not follow from kp={kp}, ki={ki}, ts_s={ts_s} "
                f"with {cand['method']} ({cand['realisation']}); expected {want!r}"
            )
    fp = selection["fixed_point"]
    try:
        fmt = QFormat(int(fp["word_bits"]), int(fp["frac_bits"]))
    except SimbaflowError as exc:
        raise PromotionRefused(f"{source}: fixed_point: {exc}") from None
    if fmt.word_bits != 32:
        raise PromotionRefused(f"{source}: fixed_point.word_bits: {fmt.word_bits}; the firmware's fixed-point PI uses 32")
    ctrl = selection["controller"]
    values = {"candidate.a0": cand["a0"], "candidate.a1": cand["a1"],
              "controller.output_min": ctrl["output_min"], "controller.output_max": ctrl["output_max"]}
    for key, value in values.items():
        try:
            q = to_fixed(float(value), fmt, key)
        except FixedPointOverflow as exc:
            raise PromotionRefused(f"{source}: {exc}; choose a Q format with more integer bits") from None
        recorded = cand.get(key.split(".")[1] + "_fixed") if key.startswith("candidate.") else None
        if recorded is not None and int(recorded) != q:
            raise PromotionRefused(f"{source}: {key}_fixed: {recorded} but {value!r} in {fmt.name} is {q}")
    if float(ctrl["output_min"]) >= float(ctrl["output_max"]):
        raise PromotionRefused(f"{source}: controller.output_min must be < output_max")


def target_warnings(selection: dict) -> list[str]:
    """Facts the board build will enforce, surfaced at promote time."""
    ts_ns = round(float(selection["candidate"]["ts_s"]) * 1e9)
    if ts_ns % 1000:
        return [f"Ts = {ts_ns / 1000:g} µs is not a whole number of µs: OwnTech TaskAPI cannot schedule it, "
                "so the board build stops with #error until the study uses such a sample rate "
                "(the host check and cross-compile still run)"]
    return []


def promote(selection_path: str | Path, firmware_dir: str | Path = "firmware", target: str = DEFAULT_TARGET,
            dry_run: bool = False) -> PromotionResult:
    """Validate ``selection_path``, write ``controller_gains.h`` and prove it with the firmware check.

    Parameters
    ----------
    selection_path : path
        ``results/<study>/selection.json``.
    firmware_dir : path
        The firmware tree; the header goes to ``<firmware_dir>/include/controller_gains.h``.
    target : str
        A key of :data:`TARGETS`.
    dry_run : bool
        Validate and diff only: nothing written, no check run.

    Raises
    ------
    PromotionRefused
        For every refusal listed in the module docstring.
    FirmwareCheckError
        When the check fails; the previous header (or none) is restored first.
    """
    source = str(selection_path)
    selection = load_selection(selection_path)
    project_dir = project_dir_of(selection_path)
    check_target(selection, source, target)
    check_constraints(selection, source)
    check_spec_hash(selection, source, project_dir)
    check_coefficients(selection, source, project_dir)

    firmware_dir = Path(firmware_dir)
    header = firmware_dir / HEADER_PATH
    new_fields = header_fields(selection)
    new_text = render_gains_header(new_fields)
    old_text = header.read_text() if header.exists() else None
    changed = old_text != new_text
    result = PromotionResult(
        header=header,
        diff=diff_fields(read_gains_header(old_text) if old_text is not None else None, new_fields),
        changed=changed, written=False, warnings=target_warnings(selection),
    )
    if dry_run:
        return result
    return write_then_check(result, new_text, old_text, lambda: run_check(firmware_dir, project_dir, selection=selection))


def write_then_check(result: "PromotionResult", new_text: str, old_text: str | None, check) -> "PromotionResult":
    """Write ``result.header`` atomically, run ``check()``; on any failure put the previous header back.

    ``check`` returns a report with ``lines``; a :class:`FirmwareCheckError` it
    raises is re-raised saying what happened to the header.
    """
    header = result.header
    if result.changed:
        write_text(header, new_text)
        result.written = True
    try:
        report = check()
    except BaseException as exc:
        if result.changed:
            if old_text is None:
                header.unlink(missing_ok=True)
            else:
                write_text(header, old_text)
        if isinstance(exc, FirmwareCheckError):
            raise FirmwareCheckError(
                f"{exc}; {header} was restored to its previous content" if old_text is not None
                else f"{exc}; {header} was removed (there was none before)"
            ) from None
        raise
    result.check_lines = list(report.lines)
    return result


def statespace_files(spec_path: str | Path, firmware_dir: Path) -> tuple[dict[Path, str], dict, list[str]]:
    """The FPGA files of a state-space spec: ``{path: text}``, the study numbers, warnings.

    Raises
    ------
    PromotionRefused
        When the spec has no ``statespace`` section or a matrix overflows its Q format.
    """
    from simbaflow.promote import fpga
    from simbaflow.select.ranking import git_commit
    from simbaflow.core.spec import load_spec
    from simbaflow.design.statespace import statespace_study

    spec = load_spec(spec_path)
    if "statespace" not in spec:
        raise PromotionRefused(f"{spec_path}: statespace: missing; target fpga promotes state-space studies")
    try:
        out = statespace_study(spec)
    except FixedPointOverflow as exc:
        raise PromotionRefused(f"{spec_path}: {exc}; choose a Q format with more integer bits") from None
    provenance = {
        "study": out["study"], "spec": str(spec_path), "spec_sha256": spec["_sha256"],
        "engine": f"scipy.signal.cont2discrete ({out['method']}, Ts = {out['ts_s']} s)",
        "simbaflow_version": __version__, "git_commit": git_commit(Path(spec_path).resolve().parent),
        "q_format": out["q_format"],
    }
    name = out["study"]
    base = firmware_dir / FPGA_DIR
    files = {
        base / f"{name}_ad.mem": fpga.readmemh(out["ad_hex"], provenance, "Ad"),
        base / f"{name}_bd.mem": fpga.readmemh(out["bd_hex"], provenance, "Bd"),
        base / f"{name}_pkg.vhd": fpga.vhdl_package(
            name, {"AD": (out["ad_fixed"], out["ad_hex"]), "BD": (out["bd_fixed"], out["bd_hex"])},
            out["word_bits"], out["frac_bits"], out["q_format"], out["ts_s"], provenance),
    }
    return files, out, statespace_warnings(out)


def statespace_warnings(out: dict) -> list[str]:
    """What quantisation did to the model: lost coefficients, a spectral radius of 1 or more."""
    warnings = []
    scale = 1 << out["frac_bits"]
    for key in ("ad", "bd"):
        real, fixed = np.array(out[key]), np.array(out[f"{key}_fixed"])
        for (i, j), v in np.ndenumerate(real):
            if v != 0 and fixed[i, j] == 0:
                warnings.append(f"{key}[{i},{j}] = {v:.3g} quantises to 0 in {out['q_format']}: that term vanishes")
    radius = float(max(abs(np.linalg.eigvals(np.array(out["ad_fixed"]) / scale))))
    if radius >= 1.0:
        warnings.append(f"quantised Ad has spectral radius {radius:.9g} (>= 1): the fixed-point model does not decay")
    return warnings


def promote_statespace(spec_path: str | Path, firmware_dir: str | Path = "firmware", target: str = "fpga",
                       dry_run: bool = False) -> PromotionResult:
    """Write a state-space study's Ad, Bd as ``$readmemh`` files and a VHDL package, then read them back.

    The read-back compares every word with the study's integers; on a mismatch
    the previous files are restored and :class:`FirmwareCheckError` is raised.
    """
    from simbaflow.promote import fpga

    if target not in TARGETS or "statespace" not in TARGETS[target][0]:
        raise PromotionRefused(
            f"{spec_path}: a state-space study is not run by target {target}; expected --target fpga"
        )
    firmware_dir = Path(firmware_dir)
    files, out, warnings = statespace_files(spec_path, firmware_dir)
    old = {path: path.read_text() if path.exists() else None for path in files}
    diff = [f"{path.name}: {'(none) -> new' if old[path] is None else 'changed'}"
            for path, text in files.items() if old[path] != text]
    diff += _matrix_diff(old, out, firmware_dir)
    changed = any(old[p] != t for p, t in files.items())
    package = _fpga_path(firmware_dir, out, "pkg.vhd")
    result = PromotionResult(header=package, diff=diff, changed=changed, written=False, warnings=warnings)
    if dry_run:
        return result
    if changed:
        for path, text in files.items():
            write_text(path, text)
        result.written = True
    try:
        shapes = {"ad": np.shape(out["ad_fixed"]), "bd": np.shape(out["bd_fixed"])}
        for key in ("ad", "bd"):
            mem = fpga.read_readmemh(_fpga_path(firmware_dir, out, f"{key}.mem").read_text(),
                                     out["word_bits"], shapes[key])
            vhd = fpga.read_vhdl_matrix(package.read_text(), key.upper(), out["word_bits"])
            if not (np.array_equal(mem, out[f"{key}_fixed"]) and np.array_equal(vhd, out[f"{key}_fixed"])):
                raise FirmwareCheckError(f"{key.upper()} read back from {FPGA_DIR}/ differs from the study's integers")
    except (FirmwareCheckError, ValueError) as exc:
        if changed:
            for path, text in old.items():
                if text is None:
                    path.unlink(missing_ok=True)
                else:
                    write_text(path, text)
        raise FirmwareCheckError(f"{exc}; the previous FPGA files were restored") from None
    result.check_lines = [f"read back {p.name}: every word equals the study's {out['q_format']} integers"
                          for p in files]
    return result


def _fpga_path(firmware_dir: Path, out: dict, suffix: str) -> Path:
    return firmware_dir / FPGA_DIR / f"{out['study']}_{suffix}"


def _matrix_diff(old: dict[Path, str | None], out: dict, firmware_dir: Path) -> list[str]:
    """``ad[i,j]: old -> new`` for every word that changed since the last promotion."""
    from simbaflow.promote import fpga

    lines = []
    for key in ("ad", "bd"):
        text = old[_fpga_path(firmware_dir, out, f"{key}.mem")]
        if text is None:
            continue
        try:
            before = fpga.read_readmemh(text, out["word_bits"], np.shape(out[f"{key}_fixed"]))
        except ValueError:
            continue  # a different shape: the file-level line above says "changed"
        after = np.array(out[f"{key}_fixed"])
        for (i, j) in zip(*np.nonzero(before != after)):
            lines.append(f"{key}[{i},{j}]: {before[i, j]} -> {after[i, j]}")
    return lines

"""Promote a study's selection into the firmware: derive, validate, diff, stage, check, rename.

Nothing in ``selection.json`` is trusted: :func:`simbaflow.promote.derive.derive_selection`
re-derives the candidate from the spec and the study's tables (hash-checked),
re-applies the spec's constraints and objective, re-evaluates the winner, and
refuses, with one sentence naming the file and key, a selection that disagrees.
Then promotion refuses when

- the target does not run the candidate's realisation;
- a coefficient or bound overflows the fixed-point format, or the recorded
  fixed-point integers / recurrence coefficients disagree with the gains;
- a text that reaches the header cannot go into a C comment.

Otherwise it prints old → new, writes the header into a staging copy of the
firmware tree, runs the firmware check there, and only then renames the header
into place (:mod:`simbaflow.promote.staging`): a failed check, or a kill at any
instant, leaves the previous header as it was.

An AC client/server selection goes to :func:`simbaflow.promote.pr_promote.promote_ac`
instead (``ac_gains.h`` for both roles, the same derivation); the study kind
(:mod:`simbaflow.kinds`) decides which.

A state-space study (seed 003) goes to the ``fpga`` target instead:
:func:`promote_statespace` derives everything from the spec, writes
``$readmemh`` files and a VHDL package into a staging copy, reads them back and
puts the three in place as one set.
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
from simbaflow.core.errors import SimbaflowError
from simbaflow.promote.pi_header import (
    HEADER_PATH, REALISATION_IDS, diff_fields, header_fields, read_gains_header, render_gains_header,
)
from simbaflow.promote.pi_check import run_check
from simbaflow.promote import staging
from simbaflow.promote.derive import PromotionRefused, derive_selection
from simbaflow.promote.toolchain import FirmwareCheckError
from simbaflow.core.fixedpoint import FixedPointOverflow, QFormat, to_fixed

#: What each target runs: name -> (realisations, description).
TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "spin": (("pi_recurrence", "control_library_pid"), "OwnTech SPIN (STM32G474) on a TWIST leg"),
    "fpga": (("statespace",), "FPGA state-space plant model ($readmemh words + VHDL package)"),
}
DEFAULT_TARGET = "spin"

#: Where the FPGA target writes, relative to the firmware directory.
FPGA_DIR = "fpga"

#: What the DC firmware check reads of the firmware tree (copied into the staging directory).
DC_CHECK_PARTS = ("lib", "sil", "host_check", "include")

#: Relative tolerance when re-deriving a0, a1 from kp, ki, ts_s (JSON round trip of doubles).
COEFFICIENT_RTOL = 1e-9


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
    except (OSError, UnicodeDecodeError) as exc:
        raise PromotionRefused(f"{path}: cannot read the selection ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict):
        raise PromotionRefused(f"{path}: expected a JSON object at the top level")
    return data


def project_dir_of(selection_path: str | Path) -> Path:
    """The project holding ``results/<study>/selection.json`` (else the current directory)."""
    p = Path(selection_path).resolve()
    if len(p.parents) >= 3 and p.parents[1].name == "results":
        return p.parents[2]
    return Path.cwd()


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


def check_coefficients(selection: dict, source: str, spec: dict) -> None:
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
            prewarp = spec["sweep"].get("prewarp_rad_s") or cand.get("wn_rad_s")
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
            dry_run: bool = False, *, kind) -> PromotionResult:
    """Derive the selection, stage ``controller_gains.h``, prove it with the firmware check, rename it into place.

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
    kind
        The study kind (:data:`simbaflow.kinds.dc_current_loop.KIND`), whose
        ``expand``/``evaluate``/``columns`` re-derive the candidate.

    Raises
    ------
    PromotionRefused
        For every refusal listed in the module docstring.
    FirmwareCheckError
        When the check fails; the previous header (or none) is left as it was.
    """
    source = str(selection_path)
    if target not in TARGETS:
        raise PromotionRefused(f"--target {target}: unknown target; expected one of {', '.join(TARGETS)}")
    project_dir = project_dir_of(selection_path)
    selection, spec = derive_selection(load_selection_object(selection_path), source, project_dir, kind)
    check_target(selection, source, target)
    check_coefficients(selection, source, spec)

    firmware_dir = Path(firmware_dir)
    header = firmware_dir / HEADER_PATH
    try:
        new_fields = header_fields(selection)
        new_text = render_gains_header(new_fields)
    except ValueError as exc:
        raise PromotionRefused(f"{source}: {exc}") from None
    old_text = read_previous(header)
    changed = old_text != new_text
    result = PromotionResult(
        header=header,
        diff=diff_fields(read_gains_header(old_text) if old_text is not None else None, new_fields),
        changed=changed, written=False, warnings=target_warnings(selection),
    )
    if dry_run:
        return result
    return stage_then_check(result, firmware_dir, HEADER_PATH, new_text, DC_CHECK_PARTS,
                            lambda staged: run_check(staged, project_dir, selection=selection))


def read_previous(path: Path) -> str | None:
    """The text of a file promote would replace, None when there is none."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise staging.FirmwareNotWritable(f"{path}: cannot read the current file "
                                          f"({getattr(exc, 'strerror', None) or exc})") from None


def stage_then_check(result: PromotionResult, firmware_dir: Path, relative: str, new_text: str,
                     parts: tuple[str, ...], check) -> PromotionResult:
    """Write ``new_text`` at ``relative`` in a staging copy of ``parts``, run ``check(staged)``, then rename.

    ``check`` takes the staging copy as its firmware directory and returns a
    report with ``lines``. The real file is replaced (one ``os.replace``) only
    after the check passed and only when the text changed; a failed check or
    a SIGTERM/SIGINT/SIGHUP before that leaves it as it was.

    Raises
    ------
    FirmwareCheckError
        When the check fails (the message says the header was left as it was).
    simbaflow.promote.staging.PromotionInterrupted
        When a signal stopped the promotion (the message says which file is in place).
    """
    header = result.header
    kept = f"{header} was left as it was" if header.exists() else f"no {header} was written"
    if result.changed:
        staging.check_writable(header.parent)
    with staging.interrupts_as_errors():
        try:
            with staging.staging_tree(firmware_dir, parts) as staged:
                staged_header = staged / relative
                staging.write_staged(staged_header, new_text)
                report = check(staged)
                if result.changed:
                    staging.replace_file(staged_header, header)
                    result.written = True
        except FirmwareCheckError as exc:
            raise FirmwareCheckError(f"{exc}; {kept}") from None
        except staging.PromotionInterrupted as exc:
            what = (f"{header} had already been replaced by the new, checked header" if result.written
                    else kept)
            raise staging.PromotionInterrupted(f"promote {exc}; {what}", exc.signum) from None
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
    from simbaflow.core.provenance import git_commit
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
    try:
        files = {
            base / f"{name}_ad.mem": fpga.readmemh(out["ad_hex"], provenance, "Ad"),
            base / f"{name}_bd.mem": fpga.readmemh(out["bd_hex"], provenance, "Bd"),
            base / f"{name}_pkg.vhd": fpga.vhdl_package(
                name, {"AD": (out["ad_fixed"], out["ad_hex"]), "BD": (out["bd_fixed"], out["bd_hex"])},
                out["word_bits"], out["frac_bits"], out["q_format"], out["ts_s"], provenance),
        }
    except ValueError as exc:
        raise PromotionRefused(f"{spec_path}: {exc}") from None
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

    The files are written into a staging copy of ``fpga/`` and read back
    there (every word against the study's integers); only then does the copy
    replace ``fpga/`` as one set (:func:`simbaflow.promote.staging.replace_directory`).
    On a mismatch :class:`FirmwareCheckError` is raised and nothing was replaced.
    """
    if target not in TARGETS or "statespace" not in TARGETS[target][0]:
        raise PromotionRefused(
            f"{spec_path}: a state-space study is not run by target {target}; expected --target fpga"
        )
    firmware_dir = Path(firmware_dir)
    files, out, warnings = statespace_files(spec_path, firmware_dir)
    old = {path: read_previous(path) for path in files}
    diff = [f"{path.name}: {'(none) -> new' if old[path] is None else 'changed'}"
            for path, text in files.items() if old[path] != text]
    diff += _matrix_diff(old, out, firmware_dir)
    changed = any(old[p] != t for p, t in files.items())
    package = _fpga_path(firmware_dir, out, "pkg.vhd")
    result = PromotionResult(header=package, diff=diff, changed=changed, written=False, warnings=warnings)
    if dry_run:
        return result
    target_dir = firmware_dir / FPGA_DIR
    kept = "the previous FPGA files were left as they were"
    if changed:
        # The staged directory is renamed in: fpga/ and the firmware directory holding it must take it.
        staging.check_writable(firmware_dir)
        if target_dir.exists():
            staging.check_writable(target_dir)
    with staging.interrupts_as_errors():
        try:
            # The staged fpga/ is a copy of the real one with the new files: it replaces it as one set.
            with staging.staging_tree(firmware_dir, (FPGA_DIR,)) as staged:
                staged_dir = staged / FPGA_DIR
                for path, text in files.items():
                    staging.write_staged(staged_dir / path.name, text)
                _read_back(staged_dir, out)
                if changed:
                    staging.replace_directory(staged_dir, target_dir, [p.name for p in files])
                    result.written = True
        except FirmwareCheckError as exc:
            raise FirmwareCheckError(f"{exc}; {kept}") from None
        except staging.PromotionInterrupted as exc:
            what = "the new, read-back FPGA files were already in place" if result.written else kept
            raise staging.PromotionInterrupted(f"promote {exc}; {what}", exc.signum) from None
    result.check_lines = [f"read back {p.name}: every word equals the study's {out['q_format']} integers"
                          for p in files]
    return result


def _read_back(fpga_dir: Path, out: dict) -> None:
    """Raise :class:`FirmwareCheckError` unless the files in ``fpga_dir`` hold the study's integers."""
    from simbaflow.promote import fpga

    shapes = {"ad": np.shape(out["ad_fixed"]), "bd": np.shape(out["bd_fixed"])}
    package = (fpga_dir / f"{out['study']}_pkg.vhd").read_text()
    for key in ("ad", "bd"):
        try:
            mem = fpga.read_readmemh((fpga_dir / f"{out['study']}_{key}.mem").read_text(), out["word_bits"],
                                     shapes[key])
            vhd = fpga.read_vhdl_matrix(package, key.upper(), out["word_bits"])
        except ValueError as exc:
            raise FirmwareCheckError(f"{key.upper()} read back from {FPGA_DIR}/: {exc}") from None
        if not (np.array_equal(mem, out[f"{key}_fixed"]) and np.array_equal(vhd, out[f"{key}_fixed"])):
            raise FirmwareCheckError(f"{key.upper()} read back from {FPGA_DIR}/ differs from the study's integers")


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

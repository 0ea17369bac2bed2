"""What a promotion ships is derived from the spec and the study's tables, never taken from ``selection.json``.

``selection.json`` is a report a person (or a script) can edit; the firmware
must only ever get the candidate the study's own rules choose. So
:func:`derive_selection`:

1. reads the spec the selection names (inside the project, SHA-256 as recorded,
   of the promoting kind, same study);
2. reads ``results/<study>/candidates.csv`` (and ``metrics.csv`` when the spec
   simulates) and refuses them unless their SHA-256 is the one the select step
   recorded (``tables_sha256``): the simulated metrics cannot be re-derived
   without the runs, so they are trusted only as the bytes selected from;
3. applies the spec's constraints and objective to those rows
   (:func:`simbaflow.select.ranking.select`), as the select step does;
4. re-evaluates the winner from the spec (the kind's ``expand`` and
   ``evaluate``) and refuses a ``candidates.csv`` row that differs;
5. refuses a selection whose every derived key (candidate id, candidate row,
   constraints, objective, controller, fixed point, plant, engine...) is not
   exactly what was derived, naming the first key that differs.

What is returned is the derived document: the header is rendered from it.
Only ``spec_path`` and ``provenance`` (version, commit, date) are taken from
the selection, and only in the forms the select step writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from simbaflow.core.errors import SimbaflowError
from simbaflow.core.tables import jsonable, read_candidates

#: Relative tolerance between a re-evaluated row and its ``candidates.csv`` cells.
REEVALUATION_RTOL = 1e-9

#: Forms of the provenance the select step writes (``simbaflow.core.provenance.provenance``).
PROVENANCE_FORMS = {
    "simbaflow_version": re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}"),
    "git_commit": re.compile(r"[0-9a-f]{7,64}|unknown"),
    "created_utc": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"),
}

_SHA256 = re.compile(r"[0-9a-f]{64}")


class PromotionRefused(SimbaflowError):
    """The selection cannot be promoted as it stands."""

    exit_code = 6


def _refused(message: str) -> SimbaflowError:
    return PromotionRefused(message)


def study_spec(selection: dict, source: str, project_dir: Path, kind) -> tuple[dict, Path]:
    """The spec the selection names, checked: inside the project, hash as recorded, of ``kind``, same study.

    Returns
    -------
    spec, spec_file
    """
    from simbaflow.core.spec import load_spec, spec_sha256

    spec_path = selection.get("spec_path")
    if not isinstance(spec_path, str) or not spec_path:
        raise _refused(f"{source}: spec_path: {spec_path!r}; expected the path of the study spec the sweep ran")
    spec_file = Path(spec_path) if Path(spec_path).is_absolute() else project_dir / spec_path
    # A spec outside the project is no study of it: an edited spec_path cannot bring its own constraints.
    root = project_dir.resolve()
    if root not in spec_file.resolve().parents:
        raise _refused(f"{source}: spec_path: {spec_path!r} is outside the project {root}; "
                       "expected a spec of this project (e.g. design/<study>.yaml)")
    if not spec_file.is_file():
        raise _refused(f"{source}: spec_path: {spec_file} does not exist; expected the spec the sweep ran")
    actual = spec_sha256(spec_file)
    prov = selection.get("provenance")
    for key, recorded in (("spec_sha256", selection.get("spec_sha256")),
                          ("provenance.spec_sha256", prov.get("spec_sha256") if isinstance(prov, dict) else None)):
        if recorded != actual:
            shown = f"{recorded[:12]}…" if isinstance(recorded, str) else repr(recorded)
            raise _refused(f"{source}: {key}: {shown} does not match {spec_file} (now {actual[:12]}…); "
                           "the spec changed since the sweep: re-run `make sweep`")
    try:
        spec = load_spec(spec_file)
    except SimbaflowError as exc:
        raise _refused(f"{source}: spec_path: {exc}") from None
    if kind.section not in spec:
        raise _refused(f"{source}: spec_path: {spec_file} has no {kind.section} section; "
                       f"expected the spec of a {kind.name} study")
    return spec, spec_file


def table_bytes(path: Path, selection: dict, name: str, source: str) -> bytes:
    """The bytes of a study table whose SHA-256 the selection recorded under ``tables_sha256.<name>``."""
    hashes = selection.get("tables_sha256")
    recorded = hashes.get(name) if isinstance(hashes, dict) else None
    if not isinstance(recorded, str) or not _SHA256.fullmatch(recorded):
        raise _refused(f"{source}: tables_sha256.{name}: {_short(recorded)}; expected the SHA-256 the select step "
                       f"records (for a selection made before it did: remove {source} and re-run `simbaflow sweep`)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _refused(f"{source}: tables_sha256.{name}: cannot read {path} ({exc.strerror}); "
                       "expected the table the selection was made from") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise _refused(f"{source}: tables_sha256.{name}: {recorded[:12]}… does not match {path} (now {actual[:12]}…); "
                       "the table changed since the selection: re-run `simbaflow sweep`")
    return data


def _same(a: Any, b: Any, rtol: float = 0.0) -> bool:
    """Equal JSON values; bools only equal bools; numbers within ``rtol``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (rtol > 0 and math.isclose(a, b, rel_tol=rtol, abs_tol=1e-300))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rtol) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def first_difference(got: Any, want: Any, path: str) -> tuple[str, Any, Any] | None:
    """``(key path, got, want)`` of the first place ``got`` differs from ``want``, else None."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in list(want) + [k for k in got if k not in want]:
            if key not in got:
                return f"{path}.{key}", "(missing)", want[key]
            if key not in want:
                return f"{path}.{key}", got[key], "(no such key)"
            diff = first_difference(got[key], want[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(want, list) and isinstance(got, list) and len(got) == len(want):
        for i, (g, w) in enumerate(zip(got, want)):
            diff = first_difference(g, w, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if _same(got, want) else (path, got, want)


def _short(value: Any) -> str:
    # As JSON, the selection's language: null, "abc", 0.07.
    text = value if value in ("(missing)", "(no such key)") else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _cell(value: Any) -> Any:
    # candidates.csv cannot tell an empty text from a missing one.
    value = jsonable(value)
    return None if value == "" else value


def reevaluate(kind, spec: dict, row: dict, table: Path, source: str) -> dict:
    """The winner re-evaluated from the spec; refuse a ``candidates.csv`` row that says otherwise."""
    cid = row["candidate_id"]
    cands = {c["candidate_id"]: c for c in kind.expand(spec)}
    if cid not in cands:
        raise _refused(f"{table}: candidate {cid!r} is not in the sweep of {spec['_path']}; "
                       "re-run `simbaflow sweep`")
    fresh = kind.evaluate(spec, cands[cid])
    for column in kind.columns():
        got, want = _cell(row.get(column)), _cell(fresh.get(column))
        if not _same(got, want, REEVALUATION_RTOL):
            raise _refused(f"{source}: {table}: {cid}.{column}: {_short(got)} but re-evaluating the candidate "
                           f"from {spec['_path']} gives {_short(want)}; re-run `simbaflow sweep`")
    return fresh


def derive_selection(selection: dict, source: str, project_dir: Path, kind) -> tuple[dict, dict]:
    """The selection promote ships: derived from the spec and the study's tables; refuse any disagreement.

    Parameters
    ----------
    selection : dict
        ``selection.json`` as read (never trusted).
    source : str
        Its path, for messages.
    project_dir : Path
        Where the spec and ``results/`` are.
    kind
        The study kind (:class:`simbaflow.kinds.base.StudyKind`): ``name``,
        ``section``, ``expand``, ``evaluate``, ``columns``.

    Returns
    -------
    selection : dict
        The document the select step writes for this study, with the
        selection's ``spec_path`` and (checked) ``provenance``.
    spec : dict
        The loaded spec.

    Raises
    ------
    PromotionRefused
        One sentence naming the file and key that disagree.
    """
    import pandas as pd

    from simbaflow.select.gather import merge_simulated
    from simbaflow.select.document import selection_document
    from simbaflow.select.ranking import broken_constraints

    spec, spec_file = study_spec(selection, source, project_dir, kind)
    results = project_dir / "results" / spec["study"]
    candidates_csv = results / "candidates.csv"
    data = table_bytes(candidates_csv, selection, "candidates.csv", source)
    try:
        rows = read_candidates(io.BytesIO(data))
    except (ValueError, pd.errors.ParserError) as exc:
        raise _refused(f"{candidates_csv}: not a candidates table ({exc})") from None
    columns = kind.columns()
    engine = "analytic"
    tables = {"candidates.csv": hashlib.sha256(data).hexdigest()}
    if spec.get("simulate"):
        # The workflow's select rule reads metrics.csv whenever the spec simulates.
        metrics_csv = results / "metrics.csv"
        mdata = table_bytes(metrics_csv, selection, "metrics.csv", source)
        try:
            rows, added = merge_simulated(rows, io.BytesIO(mdata))
            engines = sorted(set(pd.read_csv(io.BytesIO(mdata), dtype={"engine": str})["engine"].dropna()))
        except (KeyError, ValueError, pd.errors.ParserError) as exc:
            raise _refused(f"{metrics_csv}: not a metrics table ({exc})") from None
        columns += added
        engine = ",".join(engines) or "none"
        tables["metrics.csv"] = hashlib.sha256(mdata).hexdigest()
    missing = [c for c in kind.columns() if rows and c not in rows[0]]
    if missing:
        raise _refused(f"{candidates_csv}: columns {', '.join(missing)} are missing; re-run `simbaflow sweep`")
    plant = spec[kind.section]["plant"] if kind.section != "sweep" else spec["plant"]
    try:
        derived = selection_document(spec, kind.name, plant, kind.corners(spec), rows, columns, engine, tables,
                                     str(spec_file))
    except SimbaflowError as exc:
        raise _refused(f"{source}: the study's tables select nothing to promote: {exc}") from None
    best = derived["candidate"]
    fresh = reevaluate(kind, spec, best, candidates_csv, source)
    # Belt and braces: the analytic constraints on the re-evaluated row itself.
    broken = broken_constraints({**best, **{c: fresh.get(c) for c in kind.columns()}}, spec["selection"]["constraints"])
    if broken:
        raise _refused(f"{source}: candidate {best['candidate_id']} re-evaluated from {spec_file} breaks "
                       f"{'; '.join(broken)}")

    for key, want in derived.items():
        if key not in selection:
            raise _refused(f"{source}: key {key!r} is missing; expected a selection written by `simbaflow sweep`")
        diff = first_difference(selection[key], want, key)
        if diff:
            where, got, expected = diff
            raise _refused(f"{source}: {where}: {_short(got)} but the spec and the study's tables give "
                           f"{_short(expected)}; expected the selection the select step wrote (re-run `simbaflow sweep`)")
    derived["spec_path"] = selection["spec_path"]
    derived["provenance"] = checked_provenance(selection, source)
    return derived, spec


def checked_provenance(selection: dict, source: str) -> dict[str, str]:
    """The selection's provenance, refused unless in the forms the select step writes (it reaches the header)."""
    prov = selection.get("provenance")
    if not isinstance(prov, dict):
        raise _refused(f"{source}: provenance: {_short(prov)}; expected the object the select step writes")
    out = {"spec_sha256": prov["spec_sha256"]}
    for key, form in PROVENANCE_FORMS.items():
        value = prov.get(key)
        if not isinstance(value, str) or not form.fullmatch(value):
            raise _refused(f"{source}: provenance.{key}: {_short(value)} does not match {form.pattern}")
        out[key] = value
    return out

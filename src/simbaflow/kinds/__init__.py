"""Study kinds: the one place that knows which kinds exist and which a spec is.

>>> kind_of(load_spec("design/dc_current_loop.yaml")).name
'dc_current_loop'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simbaflow.core.errors import SpecError
from simbaflow.kinds import client_server, dc_current_loop, statespace
from simbaflow.kinds.base import StudyKind

#: Every kind, in the order their sections are looked for in a spec.
KINDS: dict[str, StudyKind] = {k.name: k for k in (dc_current_loop.KIND, client_server.KIND, statespace.KIND)}


def kind_of(spec: dict) -> StudyKind:
    """The kind of a validated spec: the first kind whose section it has."""
    for kind in KINDS.values():
        if kind.section in spec:
            return kind
    raise SpecError(f"{spec.get('_path', '<spec>')}: expected one of the sections "
                    f"{', '.join(k.section for k in KINDS.values())}")


def kind_named(name: str, source: str = "<selection>") -> StudyKind:
    """The kind recorded as ``name`` (e.g. in ``selection.json``)."""
    if name not in KINDS:
        raise SpecError(f"{source}: kind: {name!r} is not one of {', '.join(KINDS)}")
    return KINDS[name]


#: Most candidates a study may have unless ``SIMBAFLOW_MAX_CANDIDATES`` allows more.
MAX_CANDIDATES = 10_000


def max_candidates() -> int:
    """The candidate bound in force (``SIMBAFLOW_MAX_CANDIDATES``, else :data:`MAX_CANDIDATES`)."""
    text = os.environ.get("SIMBAFLOW_MAX_CANDIDATES", "")
    if not text:
        return MAX_CANDIDATES
    try:
        value = int(text)
    except ValueError:
        raise SpecError(f"SIMBAFLOW_MAX_CANDIDATES={text!r}: expected a whole number of candidates") from None
    if value < 1:
        raise SpecError(f"SIMBAFLOW_MAX_CANDIDATES={text!r}: expected at least 1")
    return value


def check_size(spec: dict) -> int:
    """The study's candidate count, refused beyond :func:`max_candidates` before anything is expanded."""
    kind = kind_of(spec)
    n, limit = kind.count(spec), max_candidates()
    if n > limit:
        raise SpecError(f"{spec.get('_path', '<spec>')}: {kind.section}: {n} candidates; at most {limit} are "
                        "evaluated (set SIMBAFLOW_MAX_CANDIDATES to allow more)")
    return n


def expand_candidates(spec: dict) -> list[dict[str, Any]]:
    """The candidates of the study, in sweep order (none for a kind that does not sweep)."""
    kind = kind_of(spec)
    if not kind.sweeps:
        return []
    check_size(spec)
    return kind.expand(spec)


def candidate_ids(spec: dict) -> list[str]:
    """Every candidate id of the study, in sweep order."""
    return [c["candidate_id"] for c in expand_candidates(spec)]


def kind_of_selection(selection_path: str | Path) -> StudyKind:
    """The kind a ``selection.json`` records (``kind``), else that of the spec it names.

    A file that cannot be read as a selection is given to the DC loader, whose
    refusal says what is wrong with it.
    """
    from simbaflow.core.spec import load_spec
    from simbaflow.promote.pipeline import project_dir_of

    try:
        data = json.loads(Path(selection_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return dc_current_loop.KIND
    if not isinstance(data, dict):
        return dc_current_loop.KIND
    if "kind" in data:
        return kind_named(str(data["kind"]), str(selection_path))
    spec = project_dir_of(selection_path) / str(data.get("spec_path", ""))
    if spec.is_file() and spec.suffix in (".yaml", ".yml"):
        return kind_of(load_spec(spec))
    return dc_current_loop.KIND


def promote(source: str | Path, firmware_dir: str | Path = "firmware", target: str | None = None,
            dry_run: bool = False):
    """``simbaflow promote``: a selection, or the spec of a kind without candidates, through its kind's export."""
    if Path(source).suffix in (".yaml", ".yml"):
        from simbaflow.core.spec import load_spec

        kind = kind_of(load_spec(source))
        if kind.sweeps:
            from simbaflow.core.errors import SpecError

            raise SpecError(f"{source}: a {kind.name} study is promoted from its selection; run "
                            f"`simbaflow sweep {source}`, then `simbaflow promote results/<study>/selection.json`")
    else:
        kind = kind_of_selection(source)
    return kind.export(source, firmware_dir, target or kind.default_target, dry_run)

"""The package's structure: stages in data-flow order, no import cycles, one public API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "simbaflow"


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "lint-imports (import-linter) is not installed; `make setup` installs it"
    return exe


def test_layers_contract_holds():
    res = subprocess.run([_lint_imports()], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_tarjan_finds_a_planted_cycle():
    # The detector itself: a -> b -> c -> a is one component; d hangs off it.
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycles_anywhere():
    graph = grimp.build_graph("simbaflow")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    # A package's __init__ importing its own modules is how packages work, not a cycle between modules.
    for module in edges:
        edges[module] = {m for m in edges[module] if not module.startswith(m + ".")}
    assert _strongly_connected(edges) == []


def test_no_twin_modules_and_no_flat_command_modules():
    names = [p.stem for p in PACKAGE.rglob("*.py")]
    assert not [n for n in names if n.startswith("ac_")]
    assert not [n for n in names if n.startswith("commands_")]


def test_public_api_is_importable_from_the_root():
    import simbaflow
    from simbaflow import compile_design, get_design, load_project, read_run_parquet

    assert {f.__name__ for f in (compile_design, get_design, load_project, read_run_parquet)} == {
        "compile_design", "get_design", "load_project", "read_run_parquet"}
    with pytest.raises(AttributeError):
        simbaflow.no_such_name  # noqa: B018

"""Benchmark: the default study end to end (`simbaflow sweep`, report included), cold, in a fresh directory.

Figures, medians over RUNS runs (default 3; `bench_sweep.py RUNS [KIND ...]` to pick kinds):
- analytic: design/dc_current_loop.yaml without its simulate section (80 candidates on 5 plant
  corners); target ≤ 30 s;
- full: the default study with its transient jobs (feasible candidates on every corner) on the
  embedded engine; target ≤ 120 s;
- nominal: the same study on its nominal plant only (plant_variations removed), the reference
  the cost of the corners is quoted against (ratio full / nominal, same run).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def analytic_only(spec: dict) -> dict:
    spec = {k: v for k, v in spec.items() if k != "simulate"}
    sel = spec["selection"]
    sel["constraints"] = {k: v for k, v in sel["constraints"].items() if "." not in k}
    if "." in next(iter(sel["objective"].values())):
        sel["objective"] = {"minimize": "settling_time_s"}
    return spec


def one_run(kind: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "design", work / "design")
        shutil.copytree(REPO / "simba_projects", work / "simba_projects")
        spec_path = work / "design" / "dc_current_loop.yaml"
        if kind == "analytic":
            spec_path.write_text(yaml.safe_dump(analytic_only(yaml.safe_load(spec_path.read_text()))))
        elif kind == "nominal":
            spec = yaml.safe_load(spec_path.read_text())
            spec.pop("plant_variations", None)
            spec_path.write_text(yaml.safe_dump(spec))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "simbaflow", "sweep", "design/dc_current_loop.yaml", "--cores", "2"],
                       cwd=work, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    kinds = sys.argv[2:] or ["analytic", "full", "nominal"]
    targets = {"analytic": 30, "full": 120, "nominal": 120}
    medians = {}
    for kind in kinds:
        times = []
        for i in range(RUNS):
            times.append(one_run(kind))
            print(f"{kind} run {i + 1}: {times[-1]:.2f} s", flush=True)
        medians[kind] = statistics.median(times)
        print(f"{kind} sweep of the default study: median {medians[kind]:.2f} s over {RUNS} runs "
              f"(target ≤ {targets[kind]} s)", flush=True)
    if "full" in medians and "nominal" in medians:
        print(f"plant corners cost: full / nominal = {medians['full'] / medians['nominal']:.2f}", flush=True)


if __name__ == "__main__":
    main()

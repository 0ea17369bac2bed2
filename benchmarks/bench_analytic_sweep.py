"""Benchmark: the default analytic study end to end (`simbaflow sweep`), cold, in a fresh directory.

Target: ≤ 30 s on 2 cores. Prints each run and the median.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def one_run() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(REPO / "design", Path(tmp) / "design")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "simbaflow", "sweep", "design/dc_current_loop.yaml", "--cores", "2"],
                       cwd=tmp, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    times = []
    for i in range(RUNS):
        t = one_run()
        times.append(t)
        print(f"run {i + 1}: {t:.2f} s")
    print(f"analytic sweep (default study, 64 candidates, report included): median {statistics.median(times):.2f} s "
          f"over {RUNS} runs (target ≤ 30 s)")


if __name__ == "__main__":
    main()

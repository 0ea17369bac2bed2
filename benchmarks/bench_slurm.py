"""Wall time of a small study swept locally and through the SLURM profile on this machine's cluster.

Run as root with the private cluster (``make bench-slurm`` brings it up). Prints each sweep's wall
time and the medians; the local profile is the reference, timed in the same run. Also times what a
SIMBA batch pays once instead of once per run: a job process starting and importing aesim.simba
(which loads .NET; opening a project needs a licence, so that part is not timed here).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_simulate_stage import make_spec  # noqa: E402  (the study the SLURM test sweeps)

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
CLUSTER_DIR = Path(os.environ.get("SIMBAFLOW_SLURM_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "simbaflow-slurm")


def sweep_s(profile: Path | None, env: dict) -> float:
    spec = make_spec("benchslurm", methods=("tustin", "backward_euler"), xi=(1.1, 1.4), end_time_s=0.012, batch_size=4)
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        work = Path(tmp)
        (work / "simba_projects").mkdir()
        shutil.copy(REPO / "simba_projects" / "dc_current_loop.jsimba", work / "simba_projects")
        (work / "s.yaml").write_text(yaml.safe_dump(spec))
        args = [sys.executable, "-m", "simbaflow", "sweep", "s.yaml", "--no-report"]
        args += ["--profile", str(profile)] if profile else []
        started = time.monotonic()
        res = subprocess.run(args, cwd=work, env={**os.environ, **env}, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if res.returncode != 0:
            raise SystemExit(f"sweep failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        return elapsed


def simba_process_start_s() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import aesim.simba"], check=True, capture_output=True,
                   env={**os.environ, "SIMBA_OFFLINE_MODE": "1"})
    return time.monotonic() - started


def main() -> None:
    env = {"PATH": f"{CLUSTER_DIR / 'bin'}:{os.environ['PATH']}", "SIMBAFLOW_SLURM_STATUS": "squeue"}
    local, slurm = [], []
    for _ in range(REPEATS):
        local.append(sweep_s(None, {}))
        slurm.append(sweep_s(REPO / "workflows" / "profiles" / "slurm", env))
    print("small study (4 candidates, 10 runs of 12 ms, 4 SLURM jobs), --no-report:")
    print("  local profile  : " + ", ".join(f"{t:.1f}" for t in local) + f" s, median {statistics.median(local):.1f} s")
    print("  SLURM profile  : " + ", ".join(f"{t:.1f}" for t in slurm) + f" s, median {statistics.median(slurm):.1f} s")
    print(f"  ratio SLURM / local (medians): {statistics.median(slurm) / statistics.median(local):.2f}")
    starts = [simba_process_start_s() for _ in range(5)]
    median = statistics.median(starts)
    print(f"SIMBA job process start-up (python + import aesim.simba): median {median:.2f} s of 5; "
          f"a batch of 8 runs pays it once ({median:.2f} s) instead of 8 times ({8 * median:.2f} s)")


if __name__ == "__main__":
    main()

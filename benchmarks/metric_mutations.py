"""Hand mutations of the waveform metrics: does some test fail when a metric is wrong?

Each metric's value is replaced by 0, then multiplied by 1.01, one at a time,
and the metric tests are run against the mutant (benchmarks/mutation_plugin.py).
Prints one row per metric: ``caught`` (some test failed) or ``SURVIVED``.

    .venv/bin/python benchmarks/metric_mutations.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Fastest first: a mutant stops at its first failing test (-x).
TESTS = ["tests/test_step_waveforms.py", "tests/test_metrics.py", "tests/test_ac_metrics.py"]

SW = "simbaflow.select.step_waveforms"
DM = "simbaflow.design.metrics"
AC = "simbaflow.select.sine_waveforms"
GA = "simbaflow.select.gather"
#: (module, function, key or "-" for the returned value itself)
TARGETS = [
    *[(SW, "run_metrics", k) for k in ("overshoot_pct", "rise_time_s", "settling_time_s", "peak",
                                       "steady_state_error", "ripple_pp", "iae", "itae", "duty_saturation_s",
                                       "tracking_error_pct")],
    *[(GA, "measure_step_run", k) for k in ("power_error_pct", "power_overshoot_pct")],
    *[(DM, "step_metrics", k) for k in ("overshoot_pct", "rise_time_s", "settling_time_s", "peak", "peak_time_s")],
    (DM, "iae", "-"), (DM, "itae", "-"),
    *[(AC, "client_server_metrics", k) for k in ("voltage_amplitude_error_pct", "voltage_phase_error_deg",
                                                 "voltage_thd_pct", "client_tracking_error_pct", "phase_error_deg",
                                                 "phase_error_abs_deg")],
    *[(AC, "transient_metrics", k) for k in ("startup_settling_s", "client_startup_settling_s",
                                             "kgain_step_settling_s")],
    (AC, "harmonics", "-"), (AC, "fundamental", "-"), (AC, "thd_pct", "-"), (AC, "settling_after", "-"),
]
MODES = ("zero", "scale")


def run(target, mode) -> tuple[bool, str]:
    env = dict(os.environ, SIMBAFLOW_MUTATION=":".join((*target, mode)),
               PYTHONPATH=os.pathsep.join([str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "mutation_plugin", "-p",
                          "no:cacheprovider", *TESTS], cwd=REPO, env=env, capture_output=True, text=True)
    last = (res.stdout.strip().splitlines() or [""])[-1]
    print(f"{':'.join(target[1:])} {mode}: {last}", file=sys.stderr, flush=True)
    return res.returncode != 0, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=REPO,
                         capture_output=True, text=True)
    if res.returncode != 0:
        print("the metric tests fail without any mutation:", res.stdout[-2000:])
        return 1
    started = time.perf_counter()
    jobs = [(t, m) for t in TARGETS for m in MODES]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(jobs, pool.map(lambda j: run(*j), jobs)))
    print(f"{'metric':66s} {'= 0':>10s} {'x 1.01':>10s}")
    survived = 0
    for target in TARGETS:
        cells = []
        for mode in MODES:
            caught, _ = results[(target, mode)]
            survived += not caught
            cells.append("caught" if caught else "SURVIVED")
        name = f"{target[0].rsplit('.', 1)[1]}.{target[1]}" + ("" if target[2] == "-" else f"[{target[2]}]")
        print(f"{name:66s} {cells[0]:>10s} {cells[1]:>10s}")
    print(f"{len(jobs) - survived}/{len(jobs)} mutants caught by {', '.join(TESTS)} "
          f"in {time.perf_counter() - started:.0f} s")
    return 0 if survived == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the embedded engine on the seed design ``continuous_pi`` (20 ms, 16 kHz PWM).

Prints:
- warm run time in one process (median of several runs of a compiled design);
- cold time of the whole ``simbaflow simulate ... --engine embedded`` command, and
  the import time of the engine alone;
- peak memory of the CLI command and of a 100-run in-process sweep;
- ngspice on the same closed loop (behavioural PI, same switches) at several
  maximum steps: its error and run time against ours.

Errors are RMS inductor-current differences (1 us grid) from ngspice at the finest
step; the comparison step is the finest whose error is still no smaller than ours.

Run: ``.venv/bin/python benchmarks/bench_embedded.py [--quick]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"
DESIGN = "continuous_pi"
END_S = 20e-3
SIMBAFLOW = Path(sys.executable).parent / "simbaflow"

NGSPICE_DECK = """* continuous_pi: 600 V leg, 6 mH + 30 ohm, PI on the inductor current, 16 kHz
VE e 0 DC 600
VREF ref 0 PULSE(14 6 {half:.12g} 1n 1n {half_pw:.12g} {ref_period:.12g})
S1 e sw duty tri SMOD
S2 sw 0 tri duty SMOD
VSENSE sw n0 DC 0
L1 n0 n1 6m IC=0
R1 n1 0 30
BERR err 0 V = V(ref) - I(VSENSE)
BINT 0 int I = {ki} * V(err)
CINT int 0 1 IC=0
BDUTY duty 0 V = max(0, min(1, {kp} * V(err) + V(int) + V(n1) / 600))
VTRI tri 0 PULSE(0 1 0 {rise:.12g} {rise:.12g} 1p {period:.12g})
.model SMOD SW(VT=0 VH=0 RON={ron} ROFF={roff})
.options noacct
.tran {step} {end} 0 {step} UIC
"""


def warm_runs(n: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``n`` runs of the compiled design (after one warm-up run)."""
    from simbaflow.simulate import jsimba
    from simbaflow.simulate.engines.embedded import compile_design

    compiled = compile_design(jsimba.get_design(jsimba.load_project(PROJECT), DESIGN))
    compiled.run()
    wall, cpu = [], []
    for _ in range(n):
        started, started_cpu = time.perf_counter(), time.process_time()
        compiled.run()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def cold_cli(n: int, out: Path) -> tuple[list[float], int]:
    times, peak_kb = [], 0
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(
            [str(SIMBAFLOW), "simulate", str(PROJECT), "--design", DESIGN, "--engine", "embedded", "--out", str(out)],
            check=True, capture_output=True,
        )
        times.append(time.perf_counter() - started)
        peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return times, peak_kb


def import_time(n: int) -> list[float]:
    code = "import time; t = time.perf_counter(); import simbaflow.simulate.engines.embedded; print(time.perf_counter() - t)"
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(n)]


def sweep_memory(n_runs: int) -> tuple[float, float]:
    """Peak RSS (MB) of this process after a sweep of ``n_runs`` kept results, and its duration."""
    from simbaflow.simulate import jsimba
    from simbaflow.simulate.engines.embedded import compile_design

    compiled = compile_design(jsimba.get_design(jsimba.load_project(PROJECT), DESIGN))
    kept = []
    started = time.perf_counter()
    for kp in np.linspace(0.05, 0.3, n_runs):
        kept.append(compiled.run({"PI": {"Kp": float(kp)}}))
    duration = time.perf_counter() - started
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, duration


def ngspice_comparison(steps: list[float], ours_t: np.ndarray, ours_il: np.ndarray, ours_s: float) -> None:
    from simbaflow.simulate.engines.embedded.circuit import R_OFF_OHM, R_ON_MIN_OHM
    from simbaflow.simulate.engines.embedded.ngspice import ngspice_available, run_ngspice

    if not ngspice_available():
        print("ngspice: not installed, comparison skipped")
        return
    grid = np.arange(0.0, END_S, 1e-6)
    runs = {}
    for step in steps:
        deck = NGSPICE_DECK.format(half=5e-3, half_pw=5e-3 - 1e-9, ref_period=10e-3, ki=250, kp=0.14,
                                   rise=31.25e-6, period=62.5e-6, ron=R_ON_MIN_OHM, roff=R_OFF_OHM,
                                   step=step, end=END_S)
        started = time.perf_counter()
        t, values = run_ngspice(deck, ["i(vsense)"])
        elapsed = time.perf_counter() - started
        runs[step] = (elapsed, np.interp(grid, t, values["i(vsense)"]))
    finest = min(steps)
    truth = runs[finest][1]
    ours_error = float(np.sqrt(np.mean((np.interp(grid, ours_t, ours_il) - truth) ** 2)))
    print(f"ngspice reference: max step {finest:.0e} s; our iL RMS difference from it {ours_error:.3e} A")
    chosen = None
    for step in sorted(steps):
        if step == finest:
            continue
        elapsed, il = runs[step]
        error = float(np.sqrt(np.mean((il - truth) ** 2)))
        print(f"  ngspice max step {step:.0e} s: {elapsed:.2f} s, iL RMS error {error:.3e} A")
        if chosen is None and error >= ours_error:
            chosen = (step, elapsed, error)
    if chosen is None:
        print("  no ngspice step coarser than the reference has an error as large as ours")
        return
    step, elapsed, error = chosen
    print(f"ngspice at {step:.0e} s (error {error:.2e} A >= ours): {elapsed:.2f} s; "
          f"embedded warm {ours_s * 1e3:.1f} ms -> {elapsed / ours_s:.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no ngspice")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9

    warm, cpu = warm_runs(repeats)
    print(f"warm run ({DESIGN}, {END_S * 1e3:.0f} ms): median {statistics.median(warm) * 1e3:.1f} ms wall, "
          f"{statistics.median(cpu) * 1e3:.1f} ms CPU (min {min(warm) * 1e3:.1f}, max {max(warm) * 1e3:.1f}, n={len(warm)})")
    imports = import_time(repeats)
    print(f"import simbaflow.simulate.engines.embedded: median {statistics.median(imports) * 1e3:.0f} ms")
    out = Path("/tmp") / "simbaflow-bench-embedded.parquet"
    cold, peak_kb = cold_cli(max(3, repeats // 2), out)
    print(f"cold CLI 'simbaflow simulate --engine embedded': median {statistics.median(cold):.2f} s; "
          f"peak RSS {peak_kb / 1024:.0f} MB")
    peak_mb, duration = sweep_memory(100)
    print(f"100-run in-process sweep (compile once): {duration:.1f} s, peak RSS {peak_mb:.0f} MB")
    if not args.quick:
        from simbaflow.simulate import jsimba
        from simbaflow.simulate.engines.embedded import compile_design

        compiled = compile_design(jsimba.get_design(jsimba.load_project(PROJECT), DESIGN))
        # On a 1 us grid: the exact solution at each point, not a chord between events.
        ours_t, values, _ = compiled.run(signals=["L1 - Current"], output_step_s=1e-6)
        ngspice_comparison([5e-9, 10e-9, 20e-9, 50e-9, 100e-9, 200e-9, 1e-6], ours_t, values["L1 - Current"],
                           statistics.median(warm))


if __name__ == "__main__":
    main()

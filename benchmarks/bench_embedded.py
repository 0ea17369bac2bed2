"""Benchmark of the embedded engine, with its targets (issue 13) and ngspice timed in the same run.

Prints (medians; the machine's speed drifts, so ratios matter most):
- warm run of ``continuous_pi`` (20 ms of the seed's 16 kHz current loop) in one
  process: the same parameters again, and new gains every run (a sweep);
- import time of the engine, cold ``simbaflow simulate`` of the reference
  project's design 1 (and of ours), peak memory of that process;
- peak memory and duration of a 100-run in-process sweep;
- the AC client/server design, 0.2 s at TWIST's 200 kHz carriers, new k_gain
  every run, and the peak memory of one CLI run of it;
- ngspice on the same closed loop (behavioural PI, same switches) at 50 ns
  maximum step, timed in pairs with our warm run (ratio per pair); then, without
  ``--quick``, the accuracy comparison at several steps;
- with ``--studies``: ``simbaflow sweep`` of the default study and of the AC
  study from scratch (their ``results/<study>/`` are removed first), 2 cores.

Errors are RMS inductor-current differences (1 us grid) from ngspice at the finest
step; the comparison step is the finest whose error is still no smaller than ours.

Run: ``.venv/bin/python benchmarks/bench_embedded.py [--quick] [--studies]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"
DESIGN = "continuous_pi"
REFERENCE = ROOT.parent / "shared" / "reference" / "direct_current_power_flow_control.jsimba"
REFERENCE_DESIGN = "1-direct_current_continuous_controller"
AC_PROJECT = ROOT / "simba_projects" / "ac_client_server.jsimba"
AC_DESIGN = "client_server"
END_S = 20e-3
SIMBAFLOW = Path(sys.executable).parent / "simbaflow"
#: Issue 13's targets: (figure, limit, "max" or "min").
TARGETS = {
    "warm continuous_pi 20 ms [ms]": (5.0, "max"),
    "cold simbaflow simulate, reference design 1 [s]": (0.7, "max"),
    "warm run vs ngspice 50 ns, paired [x]": (200.0, "min"),
    "AC client_server 0.2 s at 200 kHz [s]": (3.0, "max"),
    "AC study end to end, 2 cores [s]": (180.0, "max"),
    "default make sweep [s]": (30.0, "max"),
    "peak memory of one run process [MB]": (150.0, "max"),
}

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


def _compiled(project: Path, design: str):
    from simbaflow.simulate import jsimba
    from simbaflow.simulate.engines.embedded import compile_design

    return compile_design(jsimba.get_design(jsimba.load_project(project), design))


def warm_runs(n: int, new_gains: bool = False) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``n`` runs of the compiled design (after one warm-up run)."""
    compiled = _compiled(PROJECT, DESIGN)
    compiled.run()
    wall, cpu = [], []
    for k in range(n):
        values = {"PI": {"Kp": 0.1 + 0.01 * k, "Ki": 250.0 + k}} if new_gains else None
        started, started_cpu = time.perf_counter(), time.process_time()
        compiled.run(values)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def cold_cli(n: int, project: Path, design: str, out: Path) -> tuple[list[float], float]:
    """Wall seconds of ``n`` CLI runs and the largest peak RSS (MB) of one of them."""
    times, peak_mb = [], 0.0
    for _ in range(n):
        command = [str(SIMBAFLOW), "simulate", str(project), "--design", design, "--engine", "embedded", "--out", str(out)]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN is a running maximum).
        _, status, usage = os.wait4(child.pid, 0)
        times.append(time.perf_counter() - started)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed")
        peak_mb = max(peak_mb, usage.ru_maxrss / 1024)
    return times, peak_mb


def import_time(n: int) -> list[float]:
    code = "import time; t = time.perf_counter(); import simbaflow.simulate.engines.embedded; print(time.perf_counter() - t)"
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(n)]


def sweep_memory(n_runs: int) -> tuple[float, float]:
    """Peak RSS (MB) of this process after a sweep of ``n_runs`` kept results, and its duration."""
    compiled = _compiled(PROJECT, DESIGN)
    kept = []
    started = time.perf_counter()
    for kp in np.linspace(0.05, 0.3, n_runs):
        kept.append(compiled.run({"PI": {"Kp": float(kp)}}))
    duration = time.perf_counter() - started
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, duration


def ac_runs(n: int) -> tuple[list[float], dict]:
    """Seconds of ``n`` runs of the AC design at its file's 200 kHz carriers, k_gain new each run."""
    compiled = _compiled(AC_PROJECT, AC_DESIGN)
    times, stats = [], {}
    for k in range(n):
        started = time.perf_counter()
        _, _, stats = compiled.run({"k_gain": {"Value": 1.0 - 0.01 * k}})
        times.append(time.perf_counter() - started)
    return times, stats


def _deck(step: float) -> str:
    from simbaflow.simulate.engines.embedded.circuit import R_OFF_OHM, R_ON_MIN_OHM

    return NGSPICE_DECK.format(half=5e-3, half_pw=5e-3 - 1e-9, ref_period=10e-3, ki=250, kp=0.14,
                               rise=31.25e-6, period=62.5e-6, ron=R_ON_MIN_OHM, roff=R_OFF_OHM, step=step, end=END_S)


def paired_ngspice(n_pairs: int, step: float = 50e-9) -> list[float] | None:
    """Ratios ngspice time / our warm time, each pair timed back to back."""
    from simbaflow.simulate.engines.embedded.ngspice import ngspice_available, run_ngspice

    if not ngspice_available():
        return None
    compiled = _compiled(PROJECT, DESIGN)
    compiled.run()
    ratios = []
    for _ in range(n_pairs):
        started = time.perf_counter()
        run_ngspice(_deck(step), ["i(vsense)"])
        spice_s = time.perf_counter() - started
        ours = []
        for _ in range(5):
            started = time.perf_counter()
            compiled.run()
            ours.append(time.perf_counter() - started)
        ratios.append(spice_s / statistics.median(ours))
        print(f"  pair: ngspice {step:.0e} s step {spice_s:.2f} s, ours {statistics.median(ours) * 1e3:.2f} ms", flush=True)
    return ratios


def study_time(spec: str, study: str) -> float:
    """Seconds of ``simbaflow sweep SPEC --cores 2`` from scratch (``results/<study>/`` removed)."""
    shutil.rmtree(ROOT / "results" / study, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([str(SIMBAFLOW), "sweep", spec, "--cores", "2"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def ngspice_comparison(steps: list[float], ours_t: np.ndarray, ours_il: np.ndarray, ours_s: float) -> None:
    from simbaflow.simulate.engines.embedded.ngspice import ngspice_available, run_ngspice

    if not ngspice_available():
        print("ngspice: not installed, comparison skipped")
        return
    grid = np.arange(0.0, END_S, 1e-6)
    runs = {}
    for step in steps:
        deck = _deck(step)
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


def _report(figures: dict[str, float]) -> None:
    print("\ntargets (issue 13):")
    for name, (limit, sense) in TARGETS.items():
        if name not in figures:
            print(f"  {name}: not measured")
            continue
        value = figures[name]
        met = value <= limit if sense == "max" else value >= limit
        print(f"  {name}: {value:.3g} ({'<=' if sense == 'max' else '>='} {limit:g}: {'met' if met else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no ngspice accuracy sweep")
    parser.add_argument("--studies", action="store_true", help="also time both studies end to end (rewrites results/)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    figures: dict[str, float] = {}

    warm, cpu = warm_runs(repeats)
    print(f"warm run ({DESIGN}, {END_S * 1e3:.0f} ms), same parameters: median {statistics.median(warm) * 1e3:.2f} ms "
          f"wall, {statistics.median(cpu) * 1e3:.2f} ms CPU (min {min(warm) * 1e3:.2f}, max {max(warm) * 1e3:.2f}, "
          f"n={len(warm)})", flush=True)
    figures["warm continuous_pi 20 ms [ms]"] = statistics.median(warm) * 1e3
    swept, _ = warm_runs(repeats, new_gains=True)
    print(f"warm run, new gains every run: median {statistics.median(swept) * 1e3:.2f} ms", flush=True)
    imports = import_time(repeats)
    print(f"import simbaflow.simulate.engines.embedded: median {statistics.median(imports) * 1e3:.0f} ms", flush=True)
    out = Path("/tmp") / "simbaflow-bench-embedded.parquet"
    peaks = []
    for project, design in ((REFERENCE, REFERENCE_DESIGN), (PROJECT, DESIGN)):
        if not project.exists():
            print(f"cold CLI: {project} not found, skipped")
            continue
        cold, peak_mb = cold_cli(max(3, repeats // 2), project, design, out)
        peaks.append(peak_mb)
        print(f"cold CLI 'simbaflow simulate {project.name} --design {design} --engine embedded': "
              f"median {statistics.median(cold):.2f} s; peak RSS {peak_mb:.0f} MB", flush=True)
        if project == REFERENCE:
            figures["cold simbaflow simulate, reference design 1 [s]"] = statistics.median(cold)
    peak_mb, duration = sweep_memory(100)
    print(f"100-run in-process sweep (compile once): {duration:.2f} s, peak RSS {peak_mb:.0f} MB", flush=True)
    ac, stats = ac_runs(3)
    print(f"AC {AC_DESIGN} 0.2 s at 200 kHz carriers, new k_gain each run: median {statistics.median(ac):.2f} s "
          f"({stats.get('events')} events)", flush=True)
    figures["AC client_server 0.2 s at 200 kHz [s]"] = statistics.median(ac)
    _, ac_peak_mb = cold_cli(1, AC_PROJECT, AC_DESIGN, out)
    peaks.append(ac_peak_mb)
    print(f"cold CLI of the AC design (200 kHz, 0.2 s, every event recorded): peak RSS {ac_peak_mb:.0f} MB", flush=True)
    figures["peak memory of one run process [MB]"] = max(peaks)
    ratios = paired_ngspice(3)
    if ratios is None:
        print("ngspice: not installed, comparison skipped")
    else:
        print(f"warm run vs ngspice 50 ns max step, paired: median {statistics.median(ratios):.0f}x", flush=True)
        figures["warm run vs ngspice 50 ns, paired [x]"] = statistics.median(ratios)
    if not args.quick:
        compiled = _compiled(PROJECT, DESIGN)
        # On a 1 us grid: the exact solution at each point, not a chord between events.
        ours_t, values, _ = compiled.run(signals=["L1 - Current"], output_step_s=1e-6)
        ngspice_comparison([5e-9, 10e-9, 20e-9, 50e-9, 100e-9, 200e-9, 1e-6], ours_t, values["L1 - Current"],
                           statistics.median(warm))
    if args.studies:
        default_s = study_time("design/dc_current_loop.yaml", "dc_current_loop")
        print(f"default study (make sweep), from scratch: {default_s:.1f} s", flush=True)
        figures["default make sweep [s]"] = default_s
        ac_s = study_time("design/ac_client_server.yaml", "ac_client_server")
        print(f"AC study, from scratch: {ac_s:.1f} s", flush=True)
        figures["AC study end to end, 2 cores [s]"] = ac_s
    _report(figures)


if __name__ == "__main__":
    main()

"""The compiled kernel's failure paths: a crashing C Code block, a run past its time limit."""

import json

import numpy as np
import pytest

from embedded_designs import design, device
from simbaflow.simulate.engines.base import Overrides
from simbaflow.simulate.engines.embedded import EmbeddedEngine, compile_design
from simbaflow.core.errors import SimbaflowError

# Counts rising zero crossings of its input; writes through a null pointer at the fifth.
CRASHING = r"""
#include "simba_library.h"
static int rises;
void initialize() { rises = 0; }
void calculate_outputs(double *outputs, double *inputs, double time, double time_step) {
    if (inputs[0] == 1) rises += 1;
    if (rises == 5) *(volatile double *)0 = 1.0;
    outputs[0] = rises;
}
void terminate() {}
void *snapshot(snapshot_mode mode, void *ptr) { return 0; }
"""


def _clocked(code: str, end_s: float, name: str = "clocked") -> dict:
    # A 16 kHz square wave starting high (-0.5 + 1): it rises through zero at k / 16 kHz, k >= 1.
    devices = [
        device("Square Wave", "clock", 0, 0, Amplitude=1, Frequency="16k", DutyCycle=0.5, Offset=-0.5, PhaseShift=0),
        device("Zero-Crossing Detector", "ZX", 10, 0),
        device("C Code", "A", 20, 0, NumberOfInputs=1, NumberOfOutputs=1, SamplingTime="none", Code=code),
    ]
    return design(devices, [("clock.Out", "ZX.In"), ("ZX.Out", "A.inputs[0]")], end_s, ["A - outputs[0]"], name=name)


def test_a_crashing_c_code_block_fails_the_run_with_a_reason(tmp_path):
    project = tmp_path / "crash.jsimba"
    counting = CRASHING.replace("if (rises == 5) *(volatile double *)0 = 1.0;", "")
    project.write_text(json.dumps({"Designs": [_clocked(CRASHING, 1e-3, "crash"), _clocked(counting, 0.99e-3, "count")]}))
    engine = EmbeddedEngine()
    result = engine.run(project, "crash", Overrides(), ["A - outputs[0]"])
    assert result.status == "failed"
    # The fifth rise is at 5 / 16 kHz = 312.5 us.
    assert "C Code block 'A' crashed (SIGSEGV) at t = 0.0003125 s" in result.message
    # The process and the engine go on: the same block without the fault counts 15 rises by 0.99 ms.
    after = engine.run(project, "count", Overrides(), ["A - outputs[0]"])
    assert after.ok and after.signals["A - outputs[0]"][-1] == 15


def test_a_stack_overflow_in_c_code_fails_the_run():
    # Runaway recursion at the fifth rise: the fault handler runs on its own stack.
    code = CRASHING.replace("if (rises == 5) *(volatile double *)0 = 1.0;", "if (rises == 5) outputs[0] = deep(1e9);")
    code = code.replace(
        "void calculate_outputs",
        "double deep(double n) { volatile double x[64]; x[0] = n; return n > 0 ? deep(n - 1) + x[0] : 0; }\n"
        "void calculate_outputs",
    )
    with pytest.raises(SimbaflowError, match=r"C Code block 'A' crashed \(SIGSEGV\) at t = 0.0003125 s"):
        compile_design(_clocked(code, 1e-3)).run()


def test_a_crash_in_initialize_is_an_error_naming_the_block():
    code = CRASHING.replace("void initialize() { rises = 0; }", "void initialize() { *(volatile int *)0 = 1; }")
    with pytest.raises(SimbaflowError, match=r"C Code block 'A': initialize\(\) crashed"):
        compile_design(_clocked(code, 1e-3)).run()


def test_the_time_limit_stops_a_run_inside_the_kernel():
    from simbaflow.simulate.batch import RunTimeout, time_limit

    # 100 s of a 16 kHz clock: millions of events, far past a 0.3 s limit.
    compiled = compile_design(_clocked(CRASHING.replace("if (rises == 5) *(volatile double *)0 = 1.0;", ""), 100.0))
    with pytest.raises(RunTimeout, match="time limit of 0.3 s"):
        with time_limit(0.3):
            compiled.run()
    # The compiled design stays usable.
    time_s, values, _ = compiled.run(end_time_s=0.99e-3)
    assert values["A - outputs[0]"][-1] == 15 and np.isclose(time_s[-1], 0.99e-3)

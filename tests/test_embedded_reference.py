"""The SIMBA-authored reference project and our own projects run on the embedded engine.

SIMBA's published results for the reference (aesim-tech simba-python-examples,
example 08): the inductor current follows a 100 Hz square-wave reference, 14 A
then 6 A, and the power-flow design's estimated power follows its
piecewise-linear reference.
"""

from pathlib import Path

import numpy as np
import pytest

from simbaflow.simulate import jsimba
from simbaflow.simulate.engines.base import Overrides
from simbaflow.simulate.engines.select import select_engine
from simbaflow.core.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "direct_current_power_flow_control.jsimba"
OURS = ROOT / "simba_projects" / "dc_current_loop.jsimba"

needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference project not available")


def _window_mean(time_s, values, start_s, end_s):
    window = (time_s >= start_s) & (time_s <= end_s)
    t, v = time_s[window], values[window]
    return np.trapezoid(v, t) / (t[-1] - t[0])


@pytest.fixture(scope="module")
def engine():
    return select_engine("embedded")[0]


@needs_reference
@pytest.mark.parametrize("design", ["1-direct_current_continuous_controller", "2-direct_current_discrete_controller"])
def test_reference_current_loops_follow_the_square_wave(engine, design):
    result = engine.run(REFERENCE, design, Overrides(), [])
    assert result.ok, result.message
    assert set(result.signals) == {"L1 - Current", "duty_cycle - Out"}
    il = result.signals["L1 - Current"]
    for k in range(4):
        # Last millisecond of each 5 ms half period of the 100 Hz reference: 14 A high, 6 A low.
        target = 14.0 if k % 2 == 0 else 6.0
        assert _window_mean(result.time_s, il, (k + 1) * 5e-3 - 1e-3, (k + 1) * 5e-3) == pytest.approx(target, rel=0.02)
    duty = result.signals["duty_cycle - Out"]
    assert duty.min() >= -1e-12 and duty.max() <= 1.0 + 1e-12  # the limiter, up to round-off at its corners


@needs_reference
def test_reference_power_flow_tracks_the_power_reference(engine):
    result = engine.run(REFERENCE, "3-direct_current_power_flow_control", Overrides(), [])
    assert result.ok, result.message
    time_s = result.time_s
    reference = result.signals["PowerRef - Out"]
    estimated = result.signals["PowerEstimated - Out"]
    # Plateaus of the file's PowerRef: 450 W, 5 kW, 2 kW, -600 W, 600 W; check each one's last ms.
    for end_s, power_w in [(5e-3, 450.0), (8e-3, 5e3), (12e-3, 2e3), (16e-3, -600.0), (20e-3, 600.0)]:
        assert _window_mean(time_s, reference, end_s - 1e-3, end_s) == pytest.approx(power_w, rel=1e-9)
        assert _window_mean(time_s, estimated, end_s - 1e-3, end_s) == pytest.approx(power_w, rel=0.03, abs=10.0)
    # Power_K = Vb_left Vb_right / (Vb_left + Vb_right) with 600 V and 540 V buses.
    power_k = 600.0 * 540.0 / 1140.0
    np.testing.assert_allclose(result.signals["iL_ref - Out"], reference / power_k, rtol=1e-9)


@needs_reference
def test_reference_overrides_and_end_time(engine):
    # Doubling Ki changes the transient; a shorter end time ends the record there.
    base = engine.run(REFERENCE, "1-direct_current_continuous_controller", Overrides(), ["L1 - Current"], 2e-3)
    faster = engine.run(REFERENCE, "1-direct_current_continuous_controller",
                        Overrides(parameters={"PI": {"Ki": 500}}), ["L1 - Current"], 2e-3)
    assert base.time_s[-1] == pytest.approx(2e-3)
    assert faster.time_s[-1] == pytest.approx(2e-3)
    # The stiffer integrator reaches 14 A sooner: more charge by 2 ms.
    charge_base = np.trapezoid(base.signals["L1 - Current"], base.time_s)
    charge_faster = np.trapezoid(faster.signals["L1 - Current"], faster.time_s)
    assert charge_faster > charge_base * 1.001


@needs_reference
def test_unknown_override_is_a_clear_error(engine):
    with pytest.raises(SpecError, match="no parameter 'Kz'"):
        engine.run(REFERENCE, "1-direct_current_continuous_controller", Overrides(parameters={"PI": {"Kz": 1}}), [])


@pytest.mark.skipif(not OURS.exists(), reason="simba_projects/dc_current_loop.jsimba not built yet")
def test_every_design_of_our_projects_runs(engine):
    project = jsimba.load_project(OURS)
    for name in jsimba.design_names(project):
        result = engine.run(OURS, name, Overrides(), [], 5e-3)
        assert result.ok, (name, result.message)
        il = result.signals.get("L1 - Current")
        assert il is not None and np.all(np.isfinite(il)) and np.abs(il).max() > 1.0, name


@needs_reference
def test_cli_simulate_with_the_embedded_engine(tmp_path):
    from simbaflow.cli import main
    from simbaflow.simulate.runio import read_run_parquet

    out = tmp_path / "run.parquet"
    main(["simulate", str(REFERENCE), "--design", "2-direct_current_discrete_controller", "--engine", "embedded",
          "--end-time", "0.006", "--set", "a1.Value=0.2", "--out", str(out)])
    frame, _ = read_run_parquet(out)
    assert frame["time_s"].iloc[-1] == pytest.approx(0.006)
    assert frame["L1 - Current"].max() > 10.0


def test_cli_unsupported_device_is_one_line_and_exit_2(tmp_path, capsys):
    import json

    from embedded_designs import design, device
    from simbaflow.cli import main

    project = tmp_path / "thyristor.jsimba"
    devices = [device("Thyristor", "TH1", 0, 0), device("Ground", "GND", 10, 10)]
    project.write_text(json.dumps({"Designs": [design(devices, [], 1e-3, [], name="d")]}))
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", str(project), "--design", "d", "--engine", "embedded", "--out", str(tmp_path / "r.parquet")])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "device 'TH1' (Thyristor) is not supported by the embedded engine; supported devices:" in message

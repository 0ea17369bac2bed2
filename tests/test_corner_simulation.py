"""Simulated plant corners: each corner run through the designs' plant maps, against the corner's analysis."""

import json

import pandas as pd
import pytest
import yaml

from cli_helpers import run_cli
from test_simulate_stage import DESIGN_CFG, make_spec, workdir
from simbaflow.core.errors import SpecError
from simbaflow.workflow.steps import evaluate_batch, plan_simulations

PLANT_MAP = {"l_h": "L1.Value", "e_v": ["DC1.Voltage", "1/Vs_E.Value"]}


def _corner_spec(study, plant_map=PLANT_MAP):
    spec = make_spec(study, methods=("tustin",))
    spec["simulate"]["designs"] = {"discrete_pi": json.loads(json.dumps(DESIGN_CFG["discrete_pi"]))}
    spec["simulate"]["plant_map"] = plant_map
    spec["plant_variations"] = {"l_h": {"pct": 20}, "e_v": {"pct": 10}}
    spec["selection"] = {"constraints": {"discrete_pi.worst.overshoot_pct": {"max": 15}},
                         "objective": {"minimize": "discrete_pi.worst.settling_time_s"}}
    return spec


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    work = workdir(tmp_path_factory.mktemp("corners"), _corner_spec("cornerstudy"))
    res = run_cli("sweep", "s.yaml", "--no-report", cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work / "results" / "cornerstudy"


def test_every_corner_is_simulated_and_matches_its_analytic_prediction(swept):
    m = pd.read_csv(swept / "metrics.csv")
    assert sorted(m.corner) == ["c0", "c1", "c2", "c3", "c4"]
    assert (m.status == "ok").all()
    assert sorted(m.run_id) == sorted(["xi1p4-wn2500-fs16000-tustin-d0"]
                                      + [f"xi1p4-wn2500-fs16000-tustin-d0--c{i}" for i in range(1, 5)])
    corners = pd.read_csv(swept / "corners.csv").set_index("corner")
    m = m.set_index("corner")
    # The prediction of a corner run is that corner's analysis (checked independently in test_corners).
    for corner in m.index:
        assert m.loc[corner, "analytic_overshoot_pct"] == pytest.approx(corners.loc[corner, "overshoot_pct"])
    # The same tolerances as the nominal runs (test_simulate_stage): 1.5 points of overshoot, 15 % of settling.
    assert (m.overshoot_pct - m.analytic_overshoot_pct).abs().max() < 1.5
    assert (m.settling_time_s / m.analytic_settling_time_s - 1).abs().max() < 0.15
    # The corners differ by more than those tolerances, so a run left on the nominal plant would fail.
    assert m.analytic_overshoot_pct.max() - m.analytic_overshoot_pct.min() > 3.0
    assert m.overshoot_pct.idxmax() == m.analytic_overshoot_pct.idxmax()


def test_worst_case_simulated_metrics_are_selectable(swept):
    m = pd.read_csv(swept / "metrics.csv")
    sel = json.loads((swept / "selection.json").read_text())
    cand = sel["candidate"]
    assert cand["discrete_pi.worst.overshoot_pct"] == pytest.approx(m.overshoot_pct.max())
    assert cand["discrete_pi.worst.overshoot_pct_corner"] == m.loc[m.overshoot_pct.idxmax(), "corner"]
    assert cand["discrete_pi.overshoot_pct"] == pytest.approx(m[m.corner == "c0"].overshoot_pct.iloc[0])
    assert sel["binding_corners"]["discrete_pi.worst.overshoot_pct"]["corner"] == m.loc[m.overshoot_pct.idxmax(),
                                                                                         "corner"]


@pytest.mark.parametrize("plant_map, message", [
    ({"l_h": "L9.Value", "e_v": "DC1.Voltage"}, "simulate.plant_map.l_h: design 'discrete_pi': no device named 'L9'"),
    ({"l_h": "L1.Henry", "e_v": "DC1.Voltage"}, "device 'L1' (Inductor) has no parameter 'Henry'"),
    ({"l_h": "L1.Value"}, "simulate.plant_map: does not map the varied plant parameter(s) e_v of design discrete_pi"),
    ({"l_h": "L1.Value", "e_v": "DC1.Voltage", "x": "R1.Value"}, "simulate.plant_map.x: not a plant parameter"),
])
def test_plant_map_is_checked_against_the_design(tmp_path, monkeypatch, plant_map, message):
    work = workdir(tmp_path, _corner_spec("bad", plant_map))
    monkeypatch.chdir(work)
    evaluate_batch("s.yaml", ["xi1p4-wn2500-fs16000-tustin-d0"], work / "b.json")
    with pytest.raises(SpecError) as err:
        plan_simulations("s.yaml", [work / "b.json"], work / "plan.json")
    assert message in str(err.value)

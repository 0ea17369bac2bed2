"""Plant tolerance corners: the expansion, and worst cases against an independent loop on each corner's plant."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from cli_helpers import run_cli
from simbaflow.core.errors import SpecError
from simbaflow.core.spec import validate_spec
from simbaflow.design.corners import expand_corners
from simbaflow.workflow.steps import evaluate_batch, gather_candidates

PLANT = {"model": "voltage_compensated_inductor", "l_h": 6e-3, "r_ohm": 30, "e_v": 600}
BASE = {
    "study": "corners",
    "plant": PLANT,
    "sweep": {"xi": [0.7, 1.4], "wn_rad_s": [2500], "fs_hz": [16000], "method": ["tustin"],
              "delay_samples": [0, 1]},
}


def _spec(variations):
    return validate_spec({**copy.deepcopy(BASE), "plant_variations": variations})


def test_factorial_corners_are_nominal_then_every_extreme_combination():
    corners = expand_corners(_spec({"l_h": {"pct": 20}, "e_v": {"pct": 10}}), PLANT)
    got = [(c.corner_id, c.plant["l_h"], c.plant["e_v"]) for c in corners]
    assert got == [("c0", 6e-3, 600), ("c1", 4.8e-3, 540), ("c2", 4.8e-3, 660), ("c3", 7.2e-3, 540),
                   ("c4", 7.2e-3, 660)]
    assert all(c.plant["r_ohm"] == 30 for c in corners)
    assert corners[3].describe(PLANT) == "c3 (l_h 0.0072 (+20 %), e_v 540 (-10 %))"


def test_explicit_levels_are_used_as_given_and_the_nominal_is_not_repeated():
    corners = expand_corners(_spec({"e_v": [540, 600, 660]}), PLANT)
    assert [c.plant["e_v"] for c in corners] == [600, 540, 660]


def test_latin_hypercube_beyond_three_parameters_is_balanced_bounded_and_seeded():
    nominal = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    spec = {"plant_variations": {"a": {"pct": 10}, "b": {"pct": 10}, "c": {"pct": 10}, "d": [3.0, 5.0],
                                 "samples": 8, "seed": 3}}
    corners = expand_corners(spec, nominal)
    assert len(corners) <= 1 + 8 < 2**4 + 1
    lhs = [c for c in corners if c.origin == "latin_hypercube"]
    # Each level of each parameter appears equally often (8 samples over 2 levels: 4 each),
    # unless two samples coincided and one was dropped.
    if len(lhs) == 8:
        for name in nominal:
            values = [c.plant[name] for c in lhs]
            assert sorted(set(values)) == sorted(set(values)) and all(values.count(v) == 4 for v in set(values))
    assert [c.plant for c in expand_corners(spec, nominal)] == [c.plant for c in corners]
    other = {"plant_variations": {**spec["plant_variations"], "seed": 4}}
    assert [c.plant for c in expand_corners(other, nominal)] != [c.plant for c in corners]


def test_monte_carlo_draws_are_seeded_and_spread_as_asked():
    spec = _spec({"l_h": {"normal": {"sd_pct": 5}}, "samples": 200, "seed": 1})
    draws = np.array([c.plant["l_h"] for c in expand_corners(spec, PLANT) if c.origin == "monte_carlo"])
    assert draws.size == 200
    assert np.std(draws / 6e-3 - 1.0) == pytest.approx(0.05, rel=0.2)
    assert np.all(np.abs(draws / 6e-3 - 1.0) <= 0.15 + 1e-12)  # clipped at 3 sd
    again = [c.plant["l_h"] for c in expand_corners(spec, PLANT) if c.origin == "monte_carlo"]
    assert list(draws) == again


def test_without_variations_the_only_corner_is_nominal():
    assert [c.corner_id for c in expand_corners(validate_spec(copy.deepcopy(BASE)), PLANT)] == ["c0"]


@pytest.mark.parametrize("variations, message", [
    ({"x_h": {"pct": 20}}, "plant_variations.x_h: not a numeric plant parameter; expected one of l_h, r_ohm, e_v"),
    ({"model": {"pct": 20}}, "plant_variations.model: not a numeric plant parameter"),
    ({"l_h": {"pct": -5}}, "plant_variations.l_h.pct: -5 must be > 0"),
    ({"l_h": [6e-3, -1e-3]}, "plant_variations.l_h[1]: gives -0.001; expected a positive finite plant value"),
    ({"l_h": {"normal": {"sd_pct": 50}}}, "plant_variations.l_h.normal.sd_pct: 50 must be ≤ 30"),
    ({"samples": 0}, "plant_variations.samples: 0 must be ≥ 1"),
])
def test_bad_variations_name_the_key(variations, message):
    with pytest.raises(SpecError) as err:
        expand_corners(_spec(variations), PLANT)
    assert message in str(err.value)


def test_design_command_prints_the_corners(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "plant_variations": {"l_h": {"pct": 20}, "e_v": {"pct": 10}}}, sort_keys=False))
    out = run_cli("design", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "plant corners (5)" in out.stdout
    assert "c4 (l_h 0.0072 (+20 %), e_v 660 (+10 %))  [factorial]" in out.stdout


# --- Worst case against an independent computation on each corner's plant ---------------------------

TS = 1 / 16000


def _gains(xi, wn, l_h=6e-3, e_v=600):
    """Pole placement on E/(L s) (seed 002) and the Tustin recurrence, written out by hand."""
    ki = l_h * wn**2 / e_v
    kp = 2 * xi * ki / wn
    return -kp + ki * TS / 2, kp + ki * TS / 2


def _step(a0, a1, delay, l_h, e_v, n=800):
    """The sampled loop step by step: recurrence, delay line, exact ZOH update of the inductor."""
    i, alpha, e_prev, queue, out = 0.0, 0.0, 0.0, [0.0] * delay, []
    for _ in range(n):
        out.append(i)
        e = 1.0 - i
        alpha += a1 * e + a0 * e_prev
        e_prev = e
        queue.append(alpha)
        i += e_v * TS / l_h * queue.pop(0)
    return np.array(out)


def _phase_margin_deg(a0, a1, delay, l_h, e_v):
    """Phase margin from L(z) = C(z)·P(z)·z^-d on a dense grid of the unit circle, refined by bisection."""
    def loop(w):
        z = np.exp(1j * w * TS)
        return (a1 * z + a0) / (z - 1) * (e_v * TS / l_h) / (z - 1) * z ** (-delay)

    w = np.linspace(1.0, math.pi / TS * 0.999, 200000)
    mag = np.abs(loop(w))
    k = int(np.nonzero(mag < 1.0)[0][0])
    lo, hi = w[k - 1], w[k]
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if abs(loop(mid)) > 1.0 else (lo, mid)
    return 180.0 + math.degrees(np.angle(loop(lo)))


def test_worst_case_columns_match_an_independent_loop_on_every_corner(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "plant_variations": {"l_h": {"pct": 20}, "e_v": {"pct": 10}}}, sort_keys=False))
    ids = ["xi0p7-wn2500-fs16000-tustin-d0", "xi1p4-wn2500-fs16000-tustin-d0", "xi1p4-wn2500-fs16000-tustin-d1"]
    evaluate_batch(path, ids, tmp_path / "b.json")
    gather_candidates(path, [tmp_path / "b.json"], tmp_path / "candidates.csv", tmp_path / "corners.csv")
    cands = pd.read_csv(tmp_path / "candidates.csv").set_index("candidate_id")
    corners = pd.read_csv(tmp_path / "corners.csv")
    assert len(corners) == 3 * 5
    plants = {"c0": (6e-3, 600), "c1": (4.8e-3, 540), "c2": (4.8e-3, 660), "c3": (7.2e-3, 540), "c4": (7.2e-3, 660)}
    for cid in ids:
        xi, delay = (0.7 if "xi0p7" in cid else 1.4), int(cid[-1])
        a0, a1 = _gains(xi, 2500)  # the nominal plant's gains on every corner
        overshoot, settling, pm = {}, {}, {}
        for corner, (l_h, e_v) in plants.items():
            y = _step(a0, a1, delay, l_h, e_v)
            overshoot[corner] = (y.max() - 1.0) * 100.0
            settling[corner] = (np.nonzero(np.abs(y - 1.0) > 0.02)[0][-1] + 1) * TS
            pm[corner] = _phase_margin_deg(a0, a1, delay, l_h, e_v)
            row = corners[(corners.candidate_id == cid) & (corners.corner == corner)].iloc[0]
            assert (row["plant.l_h"], row["plant.e_v"]) == pytest.approx((l_h, e_v))
            assert row["overshoot_pct"] == pytest.approx(overshoot[corner], abs=1e-6)
            assert row["settling_time_s"] == pytest.approx(settling[corner], abs=1e-9)
            assert row["phase_margin_deg"] == pytest.approx(pm[corner], abs=1e-4)
        worst = max(overshoot, key=overshoot.get)
        assert cands.loc[cid, "worst_overshoot_pct"] == pytest.approx(overshoot[worst], abs=1e-6)
        assert cands.loc[cid, "worst_overshoot_pct_corner"] == worst
        assert cands.loc[cid, "worst_settling_time_s"] == pytest.approx(max(settling.values()), abs=1e-9)
        weakest = min(pm, key=pm.get)
        assert cands.loc[cid, "worst_phase_margin_deg"] == pytest.approx(pm[weakest], abs=1e-4)
        assert cands.loc[cid, "worst_phase_margin_deg_corner"] == weakest
        assert bool(cands.loc[cid, "stable_all_corners"]) is True
        # The nominal columns are the c0 corner's.
        assert cands.loc[cid, "overshoot_pct"] == pytest.approx(overshoot["c0"], abs=1e-6)
    # L high and E low lower the loop gain E/L, hence the damping: ξ = 0.7 overshoots most there.
    assert cands.loc[ids[0], "worst_overshoot_pct_corner"] == "c3"

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
    lhs = [c for c in corners if c.origin == "latin_hypercube"]
    # 8 distinct points of the 16 level combinations (none is the nominal plant), plus c0.
    assert len(corners) == 1 + 8 and len({tuple(c.plant.values()) for c in lhs}) == 8
    # Each level of each parameter appears equally often: 8 samples over 2 levels, 4 each.
    expected = {"a": {0.9, 1.1}, "b": {1.8, 2.2}, "c": {2.7, 3.3}, "d": {3.0, 5.0}}
    for name in nominal:
        values = [c.plant[name] for c in lhs]
        assert {round(v, 9) for v in values} == expected[name]
        assert all(values.count(v) == 4 for v in set(values))
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


# --- AC client/server study: the coupled model on each corner against a sample-by-sample loop -------

def _ac_simulate(plant, gains, k_gain, n_steps, ts_s=1e-4, w0=2 * math.pi * 50):
    """Both PR loops stepped sample by sample on ``plant`` (matrix exponential over each hold)."""
    from scipy.linalg import expm

    from simbaflow.design.realisations import pr_coefficients

    l_h, c_f, r_load = 2 * plant["l_leg_h"], plant["c_leg_f"], plant["r_load_ohm"]
    a = np.array([[0, 0, -1 / l_h], [0, 0, -1 / l_h], [1 / c_f, 1 / c_f, -1 / (r_load * c_f)]])
    b = np.array([[1 / l_h, 0], [0, 1 / l_h], [0, 0]])
    m = expm(np.block([[a, b], [np.zeros((2, 5))]]) * ts_s)
    ad, bd = m[:3, :3], m[:3, 3:]
    c = pr_coefficients(ts_s, w0)
    b0, b1, a1 = c["b"][0], c["b"][1], c["a"][1]
    x, pr_v, pr_i, link = np.zeros(3), [0.0] * 3, [0.0] * 3, [(0.0, 0.0)]

    def step_pr(state, kp, kr, e):
        r = b0 * e + b1 * state[0] - a1 * state[1] - state[2]
        state[:] = [e, r, state[1]]
        return kp * e + kr * r

    i_s_out, i_c_out, v_out = [], [], []
    for k in range(n_steps):
        v_ref = 12.0 * math.sin(w0 * k * ts_s)
        i_s, i_c, v = x
        u_s = step_pr(pr_v, gains["server_kp"], gains["server_kr"], v_ref - v)
        iref, vff = link[0]
        u_c = vff + step_pr(pr_i, gains["client_kp"], gains["client_kr"], iref - i_c)
        link = [(k_gain * i_s, v_ref)]
        i_s_out.append(i_s)
        i_c_out.append(i_c)
        v_out.append(v)
        x = ad @ x + bd @ np.array([u_s, u_c])
    n = 1000  # the last five periods of 50 Hz
    k = np.arange(n_steps - n, n_steps)
    ph = lambda y: np.sum(np.asarray(y)[-n:] * np.exp(-1j * w0 * k * ts_s))  # noqa: E731
    # The transient is what changes from one period to the next; its envelope decays as ρ^k,
    # ρ the largest closed-loop pole magnitude.
    # (Periods 2 to 6: later, the transient is down to round-off.)
    d = np.abs(np.diff(np.reshape(v_out, (-1, 200)), axis=0)).max(axis=1)
    rho = (d[6] / d[2]) ** (1 / (4 * 200))
    return ph(i_c_out) / ph(i_s_out), rho


def test_ac_corners_match_an_independent_loop_on_each_corner_plant(tmp_path):
    plant = {"l_leg_h": 33.0e-6, "c_leg_f": 61.1e-6, "r_leg_ohm": 0.0, "v_bus_v": 40.0, "r_load_ohm": 30.0}
    spec = {
        "study": "ac_corners",
        "plant_variations": {"l_leg_h": {"pct": 20}, "r_load_ohm": {"pct": 50}},
        "ac": {"plant": plant, "f0_hz": 50.0, "ts_s": 1e-4, "link_delay_samples": 1,
               "sweep": {"server": {"kp": [0.04], "kr": [500]}, "client": {"kp": [0.3], "kr": [250]},
                         "k_gain": [0.5], "discretisation": ["control_library_pr"]}},
        "selection": {"constraints": {"stable_all_corners": True}, "objective": {"minimize": "worst_settling_time_s"}},
    }
    path = tmp_path / "ac.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    cid = "v0p04-500-0_i0p3-250-0_k0p5_clpr"
    evaluate_batch(path, [cid], tmp_path / "b.json")
    gather_candidates(path, [tmp_path / "b.json"], tmp_path / "candidates.csv", tmp_path / "corners.csv")
    corners = pd.read_csv(tmp_path / "corners.csv").set_index("corner")
    cand = pd.read_csv(tmp_path / "candidates.csv").iloc[0]
    assert list(corners.index) == ["c0", "c1", "c2", "c3", "c4"]
    assert sorted(set(corners["plant.r_load_ohm"])) == [15.0, 30.0, 45.0]
    phase = {}
    for corner, row in corners.iterrows():
        p = {**plant, "l_leg_h": row["plant.l_leg_h"], "r_load_ohm": row["plant.r_load_ohm"]}
        ratio, rho = _ac_simulate(p, {"server_kp": 0.04, "server_kr": 500, "client_kp": 0.3, "client_kr": 250},
                                  0.5, 8000)
        assert bool(row["stable"]) is True
        assert row["max_pole_magnitude"] == pytest.approx(rho, abs=1.5e-3)
        phase[corner] = math.degrees(np.angle(ratio))
        assert row["phase_error_deg"] == pytest.approx(phase[corner], abs=1e-3)
        assert row["client_tracking_error_pct"] == pytest.approx(100 * (abs(ratio) / 0.5 - 1), abs=1e-2)
        # Whatever the plant, a stable design lags by the one-period link delay at f0 (closed form).
        assert phase[corner] == pytest.approx(-math.degrees(2 * math.pi * 50 * 1e-4), abs=1e-3)
    assert cand["worst_phase_error_abs_deg"] == pytest.approx(max(abs(v) for v in phase.values()), abs=1e-3)
    assert bool(cand["stable_all_corners"]) is True and cand["n_corners"] == 5

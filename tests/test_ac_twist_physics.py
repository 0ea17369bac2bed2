"""TWIST losses and timing in the AC model: cited, checked against an independent simulation,
and the published gains' verdict.

The simulation here is written without simbaflow.design.coupled_inverters: the two boards'
differential-mode circuit (2L and 2r per board, ceramics on the load node, the
electrolytic behind its resistance) integrated exactly over each part of a
control period, the previous duty held for the PWM update delay, each PR run
as control_library's difference equation, and each current read as the ADC
reads it, offset·(Udc − v)/(2L) from its mean.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from cli_helpers import REPO
from simbaflow.design import coupled_inverters as ac_design, realisations
from simbaflow.core.spec import load_spec

SPEC_PATH = REPO / "design" / "ac_client_server.yaml"
SEED = {"server_kp": 0.02, "server_kr": 4000.0, "client_kp": 0.2, "client_kr": 3000.0}
STABLE = {"server_kp": 0.04, "server_kr": 500.0, "client_kp": 0.3, "client_kr": 250.0}


def _cand(gains: dict, k_gain: float) -> dict:
    return {"candidate_id": "c", "discretisation": "control_library_pr", "server_phi_prime_rad": 0.0,
            "client_phi_prime_rad": 0.0, "k_gain": k_gain, **gains}


def _simulate(spec: dict, gains: dict, k_gain: float, n_steps: int, extra_r_ohm: float = 0.0,
              v_ref_v: float = 12.0) -> dict:
    """Sample-by-sample run; with ``v_ref_v = 0`` the free response from 1 A in the server's inductor."""
    ac, plant = spec["ac"], spec["ac"]["plant"]
    ts, w0, tau = ac["ts_s"], 2 * math.pi * ac["f0_hz"], ac["pwm_update_delay_s"]
    lb = 2 * plant["l_leg_h"]
    rb = 2 * (plant["l_dcr_ohm"] + plant["rds_on_ohm"] + plant["r_leg_ohm"] + extra_r_ohm)
    c_el, esr = plant["c_electrolytic_f"], plant["esr_electrolytic_ohm"]
    c_node, g = plant["c_leg_f"] - c_el, 1 / plant["r_load_ohm"]
    # x = [i_s, i_c, v (load node), v_el]; inputs [u_s, u_c].
    a = np.array([[-rb / lb, 0, -1 / lb, 0], [0, -rb / lb, -1 / lb, 0],
                  [1 / c_node, 1 / c_node, -(g + 1 / esr) / c_node, 1 / (esr * c_node)],
                  [0, 0, 1 / (esr * c_el), -1 / (esr * c_el)]])
    b = np.array([[1 / lb, 0], [0, 1 / lb], [0, 0], [0, 0]])

    def step(t_s):
        m = expm(np.block([[a, b], [np.zeros((2, 6))]]) * t_s)
        return m[:4, :4], m[:4, 4:]

    (p1, g1), (p2, g2) = step(tau), step(ts - tau)
    offset, udc = plant["current_sample_offset_s"], plant["v_bus_v"]
    co = realisations.pr_coefficients(ts, w0)
    b0, b1, a1 = co["b"][0], co["b"][1], co["a"][1]

    def pr(state, kp, kr, e):
        r = b0 * e + b1 * state[0] - a1 * state[1] - state[2]
        state[:] = [e, r, state[1]]
        return kp * e + kr * r

    x, u_prev = np.zeros(4), np.zeros(2)
    if v_ref_v == 0.0:
        x[0] = 1.0
    pv, pi = [0.0] * 3, [0.0] * 3
    link = (0.0, 0.0)
    out = {"i_s": [], "i_c": [], "v": [], "norm": []}
    for k in range(n_steps):
        v_ref = v_ref_v * math.sin(w0 * k * ts)
        i_s, i_c, v = x[0], x[1], x[2]
        # The DC part of the ripple offset is left out: it does not reach the resonant loops.
        i_s_m, i_c_m = i_s - offset * v / lb, i_c - offset * v / lb
        u_s = pr(pv, gains["server_kp"], gains["server_kr"], v_ref - v)
        u_c = link[1] + pr(pi, gains["client_kp"], gains["client_kr"], link[0] - i_c_m)
        link = (k_gain * i_s_m, v_ref)
        for key, val in (("i_s", i_s_m), ("i_c", i_c_m), ("v", v), ("norm", np.abs(x).max())):
            out[key].append(val)
        u = np.array([u_s, u_c])
        x = p2 @ (p1 @ x + g1 @ u_prev) + g2 @ u  # last period's duties for tau, then these
        u_prev = u
    _ = udc  # the DC offset (offset·Udc/(2L)) is a constant the PRs' resonators ignore
    return {k: np.asarray(v) for k, v in out.items()}


def _phasor(y, ts, w0, n=1000):
    k = np.arange(len(y) - n, len(y))
    return 2.0 / n * np.sum(y[-n:] * np.exp(-1j * w0 * k * ts))


def _growth_per_step(norm: np.ndarray, window: int = 1000) -> float:
    """Largest-pole magnitude seen in a free response: growth of its peaks from one window to the next."""
    earlier, last = norm[-2 * window:-window].max(), norm[-window:].max()
    return float((last / earlier) ** (1.0 / window))


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_PATH)


def test_every_new_value_is_cited_or_labelled_assumed():
    text = SPEC_PATH.read_text()
    for source in ("IPD200N15N3", "R_DS(on) 16 mOhm typ.", "SRP1510CA-330M", "WE_Inductor_7443634700.pdf",
                   "EEE-FN2A470UL", "PwmHAL::enableAdcTrigger", "twist_v1_4_1.overlay", "ACS730",
                   "R218 20 kOhm || C221 20 pF", "preload", "SPEED_20M"):
        assert source in text, source
    assert text.count("ASSUMED") == 2  # the inductor's DCR and the electrolytic branch's resistance
    plant = load_spec(SPEC_PATH)["ac"]["plant"]
    # -0.41 us = ADC at 3 % of the 5 us period, less the sensor chain's 0.16 + 0.4 us.
    assert plant["current_sample_offset_s"] == pytest.approx(0.03 * 5e-6 - (1 / (2 * math.pi * 1e6)) - 20e3 * 20e-12,
                                                             abs=0.01e-6)


def test_analysis_agrees_with_the_independent_simulation(spec):
    row = ac_design.evaluate_ac_candidate(spec, _cand(STABLE, 0.5))
    assert row["stable"]
    sim = _simulate(spec, STABLE, 0.5, n_steps=8000)
    ts, w0 = spec["ac"]["ts_s"], 2 * math.pi * spec["ac"]["f0_hz"]
    ratio = _phasor(sim["i_c"], ts, w0) / _phasor(sim["i_s"], ts, w0)
    assert abs(ratio) == pytest.approx(row["current_ratio"], rel=1e-4)
    assert math.degrees(np.angle(ratio)) == pytest.approx(row["phase_error_deg"], abs=1e-3)
    assert abs(_phasor(sim["v"], ts, w0)) == pytest.approx(12.0, rel=1e-4)


@pytest.mark.parametrize("k_gain", [1.0, 0.5])
def test_published_gains_still_unstable_with_twist_physics(spec, k_gain):
    row = ac_design.evaluate_ac_candidate(spec, _cand(SEED, k_gain))
    assert row["stable"] is False
    sim = _simulate(spec, SEED, k_gain, n_steps=4000, v_ref_v=0.0)
    assert _growth_per_step(sim["norm"]) == pytest.approx(row["max_pole_magnitude"], rel=2e-3)
    assert row["max_pole_magnitude"] > 1.02


def test_series_resistance_that_would_stabilise_the_published_gains(spec):
    """The bisection's threshold, checked by the simulation on either side of it."""
    extra = ac_design.stabilising_series_resistance_ohm(spec, _cand(SEED, 1.0))
    plant = spec["ac"]["plant"]
    present = plant["l_dcr_ohm"] + plant["rds_on_ohm"]
    assert 0.03 < extra < 0.2  # more than the board's 28 mOhm per leg again
    above = _simulate(spec, SEED, 1.0, n_steps=6000, extra_r_ohm=1.1 * extra, v_ref_v=0.0)
    below = _simulate(spec, SEED, 1.0, n_steps=6000, extra_r_ohm=0.9 * extra, v_ref_v=0.0)
    assert _growth_per_step(above["norm"]) < 1.0 < _growth_per_step(below["norm"])
    assert present + extra > 3 * present


def test_pwm_update_delay_destabilises_and_losses_damp(spec):
    base = ac_design.evaluate_ac_candidate(spec, _cand(SEED, 1.0))["max_pole_magnitude"]
    no_delay = {**spec, "ac": {**spec["ac"], "pwm_update_delay_s": 0.0}}
    lossless = {**spec, "ac": {**spec["ac"], "plant": {**spec["ac"]["plant"], "l_dcr_ohm": 0.0, "rds_on_ohm": 0.0}}}
    assert ac_design.evaluate_ac_candidate(no_delay, _cand(SEED, 1.0))["max_pole_magnitude"] < base
    assert ac_design.evaluate_ac_candidate(lossless, _cand(SEED, 1.0))["max_pole_magnitude"] > base

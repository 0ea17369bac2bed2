"""AC client/server study: analytic model checked against closed forms and a time-domain simulation."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml
from scipy.linalg import expm

from cli_helpers import REPO, run_cli
from simbaflow.design import coupled_inverters as ac_design, realisations
from simbaflow.design.sweepspace import expand_pr_sweep
from simbaflow.core.errors import SpecError
from simbaflow.select.ranking import select
from simbaflow.core.spec import load_spec, validate_spec

SPEC_PATH = REPO / "design" / "ac_client_server.yaml"
TS_S, F0_HZ = 1.0e-4, 50.0
W0 = 2.0 * math.pi * F0_HZ
PLANT = {"l_leg_h": 33.0e-6, "c_leg_f": 61.1e-6, "r_leg_ohm": 0.0, "v_bus_v": 40.0, "r_load_ohm": 30.0}
#: A candidate the sweep finds stable with margins, and the seed's gains (unstable in this model).
STABLE = dict(server_kp=0.04, server_kr=500.0, client_kp=0.3, client_kr=250.0)
SEED = dict(server_kp=0.02, server_kr=4000.0, client_kp=0.2, client_kr=3000.0)


def _small_spec(link_delay_samples: int = 1, **sweep) -> dict:
    data = {
        "study": "ac_small",
        "ac": {"plant": dict(PLANT), "f0_hz": F0_HZ, "ts_s": TS_S, "link_delay_samples": link_delay_samples,
               "sweep": {"server": {"kp": [0.04], "kr": [500]}, "client": {"kp": [0.3], "kr": [250]},
                         "k_gain": [1.0], **sweep}},
        "selection": {"constraints": {"stable": True, "phase_error_abs_deg": {"max": 2}},
                      "objective": {"minimize": "settling_time_s"}},
    }
    return validate_spec(data, "small.yaml")


def _simulate(gains: dict, k_gain: float, n_steps: int, link_delay: int = 1) -> dict[str, np.ndarray]:
    """The client/server loops stepped sample by sample: Pr recurrences, plant by matrix exponential.

    Written independently of :mod:`simbaflow.design.coupled_inverters` (no python-control):
    the plant is integrated exactly over each hold interval and each PR runs
    control_library's difference equation without saturation.
    """
    l_h, c_f, r_load = 2 * PLANT["l_leg_h"], PLANT["c_leg_f"], PLANT["r_load_ohm"]
    a = np.array([[0, 0, -1 / l_h], [0, 0, -1 / l_h], [1 / c_f, 1 / c_f, -1 / (r_load * c_f)]])
    b = np.array([[1 / l_h, 0], [0, 1 / l_h], [0, 0]])
    m = expm(np.block([[a, b], [np.zeros((2, 5))]]) * TS_S)
    ad, bd = m[:3, :3], m[:3, 3:]
    c = realisations.pr_coefficients(TS_S, W0)
    b0, b1, a1 = c["b"][0], c["b"][1], c["a"][1]
    x = np.zeros(3)
    pr = {"v": [0.0, 0.0, 0.0], "i": [0.0, 0.0, 0.0]}  # e(k-1), r(k-1), r(k-2)

    def step_pr(state, kp, kr, e):
        r = b0 * e + b1 * state[0] - a1 * state[1] - state[2]
        state[:] = [e, r, state[1]]
        return kp * e + kr * r

    link = [(0.0, 0.0)] * link_delay
    out = {"v": [], "i_s": [], "i_c": [], "v_ref": []}
    for k in range(n_steps):
        v_ref = 12.0 * math.sin(W0 * k * TS_S)
        i_s, i_c, v = x
        u_s = step_pr(pr["v"], gains["server_kp"], gains["server_kr"], v_ref - v)
        iref, vff = link[0] if link_delay else (k_gain * i_s, v_ref)
        u_c = vff + step_pr(pr["i"], gains["client_kp"], gains["client_kr"], iref - i_c)
        if link_delay:
            link = link[1:] + [(k_gain * i_s, v_ref)]
        for key, val in (("v", v), ("i_s", i_s), ("i_c", i_c), ("v_ref", v_ref)):
            out[key].append(val)
        x = ad @ x + bd @ np.array([u_s, u_c])
    return {k: np.asarray(v) for k, v in out.items()}


def _phasor(y: np.ndarray, n_periods: int = 5) -> complex:
    """Fundamental phasor of the last ``n_periods`` whole periods of f0 (200 samples each)."""
    n = int(round(n_periods / (F0_HZ * TS_S)))
    k = np.arange(len(y) - n, len(y))
    return 2.0 / n * np.sum(y[-n:] * np.exp(-1j * W0 * k * TS_S))


def test_committed_spec_is_valid_and_cites_twist():
    spec = load_spec(SPEC_PATH)
    assert spec["ac"]["plant"]["l_leg_h"] == pytest.approx(33e-6)
    assert spec["ac"]["plant"]["c_leg_f"] == pytest.approx(47e-6 + 3 * 4.7e-6)
    text = SPEC_PATH.read_text()
    assert "owntech-foundation/TWIST" in text and "PowerLeg1.kicad_sch" in text


@pytest.mark.parametrize("link_delay", [0, 1, 2])
def test_phase_error_is_the_link_delay_at_f0(link_delay):
    # The resonators put poles on the unit circle at f0, so each loop tracks
    # its reference exactly there: the client current is k_gain times the
    # server current delayed by the link, i.e. −link·ω0·Ts radians.
    # (k_gain = 0.5: with two samples of link delay k_gain = 1 is unstable.)
    row = ac_design.evaluate_ac_study(_small_spec(link_delay_samples=link_delay, k_gain=[0.5]))[0]
    assert row["stable"] is True
    assert row["phase_error_deg"] == pytest.approx(-math.degrees(link_delay * W0 * TS_S), abs=1e-6)
    assert row["current_ratio"] == pytest.approx(0.5, abs=1e-9)
    assert row["voltage_amplitude_error_pct"] == pytest.approx(0.0, abs=1e-7)
    assert row["voltage_phase_error_deg"] == pytest.approx(0.0, abs=1e-7)


def test_time_domain_simulation_agrees_with_the_analysis():
    spec = _small_spec(k_gain=[0.5])
    row = ac_design.evaluate_ac_study(spec)[0]
    assert row["stable"]
    sim = _simulate(STABLE, 0.5, n_steps=8000)  # 0.8 s: ≫ the 28 ms envelope settling time
    ratio = _phasor(sim["i_c"]) / _phasor(sim["i_s"])
    assert abs(ratio) == pytest.approx(row["current_ratio"], rel=1e-4)
    assert math.degrees(np.angle(ratio)) == pytest.approx(row["phase_error_deg"], abs=1e-3)
    assert abs(_phasor(sim["v"])) == pytest.approx(12.0, rel=1e-4)
    # The boards' currents in phase with the voltage feed the 30 Ω load. (Their
    # quadrature part, the capacitor current, is not comparable: between
    # samples the held voltages add ripple that aliases onto f0 at the samples.)
    v = _phasor(sim["v"])
    in_phase = ((_phasor(sim["i_s"]) + _phasor(sim["i_c"])) * np.conj(v)).real / abs(v)
    assert in_phase == pytest.approx(12.0 / PLANT["r_load_ohm"], rel=1e-3)


def test_seed_gains_unstable_in_simulation_too():
    spec = _small_spec()
    spec["ac"]["sweep"]["server"] = {"kp": [SEED["server_kp"]], "kr": [SEED["server_kr"]], "phi_prime_rad": [0.0]}
    spec["ac"]["sweep"]["client"] = {"kp": [SEED["client_kp"]], "kr": [SEED["client_kr"]], "phi_prime_rad": [0.0]}
    row = ac_design.evaluate_ac_study(spec)[0]
    # README ("Seed gains"): the coupled loops' largest pole is 1.13.
    assert row["stable"] is False and row["max_pole_magnitude"] == pytest.approx(1.13, abs=5e-3)
    sim = _simulate(SEED, 1.0, n_steps=2000)
    # A pole of magnitude ρ grows ρ^n: after 2000 steps nothing bounded stays near 12 V.
    assert np.max(np.abs(sim["v"][-200:])) > 1e3


def test_settling_time_closed_form():
    poles = np.array([0.5, 0.9 * np.exp(0.3j), 0.9 * np.exp(-0.3j)])
    assert ac_design.settling_time_from_poles(poles, 1e-4) == pytest.approx(math.log(50) * 1e-4 / -math.log(0.9))
    assert ac_design.settling_time_from_poles(np.array([1.01]), 1e-4) == math.inf


def test_tustin_alternative_and_phi_prime_expansion():
    spec = _small_spec(discretisation=["control_library_pr", "tustin_prewarp"])
    spec["ac"]["sweep"]["client"]["phi_prime_rad"] = [0.0, 0.0314159]
    cands = expand_pr_sweep(spec)
    # Tustin has no φ′: its φ′ ≠ 0 combination is skipped.
    assert [c["discretisation"] for c in cands] == ["control_library_pr", "control_library_pr", "tustin_prewarp"]
    rows = ac_design.evaluate_ac_study(spec)
    assert [r["firmware_pr"] for r in rows] == [True, True, False]
    assert len({r["candidate_id"] for r in rows}) == 3
    # Both discretisations are exact at f0 (prewarped Tustin keeps its poles there).
    assert all(r["phase_error_deg"] == pytest.approx(-1.8, abs=1e-6) for r in rows)
    # Pr coefficients of the row are control_library's.
    c = realisations.pr_coefficients(TS_S, W0, 0.0314159)
    assert rows[1]["client_b1"] == pytest.approx(c["b"][1]) and rows[1]["client_a1"] == pytest.approx(-2 * math.cos(W0 * TS_S))


def test_selection_rejects_seed_and_unstable():
    spec = _small_spec()
    spec["ac"]["sweep"]["server"]["kr"] = [500, 4000]
    spec["ac"]["sweep"]["client"]["kr"] = [250, 3000]
    rows = ac_design.evaluate_ac_study(spec)
    choice = select(rows, spec["selection"])
    assert choice["candidate"]["candidate_id"] == "v0p04-500-0_i0p3-250-0_k1_clpr"
    assert all(r["stable"] for r in [choice["candidate"], *choice["runners_up"]])
    assert any("stable" in b for r in choice["rejected"] for b in r["broken"])


def test_bad_ac_spec_names_key():
    data = yaml.safe_load(SPEC_PATH.read_text())
    bad = copy.deepcopy(data)
    bad["ac"]["sweep"]["client"]["kr"] = [0]
    with pytest.raises(SpecError, match=r"ac\.sweep\.client\.kr\[0\]: 0 must be > 0"):
        validate_spec(bad, "x.yaml")
    bad = copy.deepcopy(data)
    bad["ac"]["plant"]["l_h"] = 1
    with pytest.raises(SpecError, match=r"ac\.plant: unknown key 'l_h'"):
        validate_spec(bad, "x.yaml")


def test_cli_ac_design_csv(tmp_path):
    spec = _small_spec()
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in spec.items() if not k.startswith("_")}))
    out = run_cli("ac-design", str(path), "--format", "csv")
    assert out.returncode == 0, out.stderr
    header, line = out.stdout.strip().splitlines()
    assert header.split(",")[: len(ac_design.COLUMNS)] == ac_design.COLUMNS  # then the worst-case columns
    assert line.startswith("v0p04-500-0_i0p3-250-0_k1_clpr,control_library_pr,True,")
    table = run_cli("ac-design", str(path))
    assert "selected: v0p04-500-0_i0p3-250-0_k1_clpr" in table.stdout

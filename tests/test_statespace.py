"""Seed 003: LCL filter, Euler at 500 ns, Q16.16 matrices and hex words."""

import json

import numpy as np
import pytest
from scipy.signal import cont2discrete

from simbaflow.core.spec import load_spec
from simbaflow.design.statespace import discretise_statespace, lcl_matrices, statespace_study
from cli_helpers import run_cli

SEED_AD_FIXED = [[65536, 0, 0, -298, 0], [0, 65536, 0, 39, -39], [0, 0, 65536, 0, 0],
                 [218, -218, -218, 65449, 87], [0, 1311, 0, 524, 65012]]
SEED_BD_FIXED = [[298, 0], [0, 0], [0, 0], [0, 0], [0, 0]]
SEED_AD_HEX = [["00010000", "00000000", "00000000", "FFFFFED6", "00000000"],
               ["00000000", "00010000", "00000000", "00000027", "FFFFFFD9"],
               ["00000000", "00000000", "00010000", "00000000", "00000000"],
               ["000000DA", "FFFFFF26", "FFFFFF26", "0000FFA9", "00000057"],
               ["00000000", "0000051F", "00000000", "0000020C", "0000FDF4"]]


def test_seed_matrices(repo):
    spec = load_spec(repo / "design/lcl_filter.yaml")
    l2 = 34.5e3**2 / (8.33 * 4.42e6 * 2 * np.pi * 60)
    assert spec["statespace"]["params"]["l2_h"] == pytest.approx(l2, rel=1e-15)
    a, b = lcl_matrices(spec["statespace"]["params"])
    assert a[0, 3] == pytest.approx(-9090.909, rel=1e-6)
    assert a[4, 1] == pytest.approx(40000)
    assert b[2, 1] == pytest.approx(-11.66165528, rel=1e-8)
    out = statespace_study(spec)
    assert out["ad_fixed"] == SEED_AD_FIXED
    assert out["bd_fixed"] == SEED_BD_FIXED
    assert out["ad_hex"] == SEED_AD_HEX
    assert out["bd_hex"][0] == ["0000012A", "00000000"]


@pytest.mark.parametrize("method", ["zoh", "tustin"])
def test_other_methods_match_scipy(method):
    a, b = lcl_matrices({"r1_ohm": 1e-6, "l1_h": 110e-6, "cf_f": 150e-6, "cd_f": 25e-6, "rd_ohm": 2.5,
                         "ld_h": 850e-6, "l2_h": 0.0857, "r2_ohm": 0.1})
    ad, bd = discretise_statespace(a, b, 5e-7, method)
    ref = cont2discrete((a, b, np.eye(5), np.zeros((5, 2))), 5e-7, method=method)
    assert ad == pytest.approx(ref[0])
    assert bd == pytest.approx(ref[1])
    # Euler is the first-order truncation of the exact (zoh) map.
    ad_e, _ = discretise_statespace(a, b, 5e-7, "euler")
    assert ad_e == pytest.approx(np.eye(5) + a * 5e-7)


def test_cli_json_keys(repo):
    res = run_cli("statespace", "design/lcl_filter.yaml", "--format", "json", cwd=repo)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in ("ad", "bd", "ad_fixed", "bd_fixed", "ad_hex", "bd_hex"):
        assert key in out
    assert out["ad_fixed"] == SEED_AD_FIXED
    assert out["ad"][0][3] == pytest.approx(-0.00454545, rel=1e-5)

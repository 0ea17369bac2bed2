"""SIMBA parameter strings to numbers."""

import math

import numpy as np
import pytest

from simbaflow.core.errors import SpecError
from simbaflow.simulate.simba_values import (
    design_variables,
    is_none,
    parse_matrix,
    parse_optional,
    parse_value,
    parse_vector,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("6m", 6e-3),
        ("16k", 16e3),
        ("1E-09", 1e-9),
        ("5.01m", 5.01e-3),
        (" 1 / 600", 1 / 600),
        ("1e-2", 0.01),
        ("30", 30.0),
        ("100u", 100e-6),
        ("2.052u", 2.052e-6),
        ("1.95k", 1950.0),
        ("10p", 10e-12),
        ("3Meg", 3e6),
        ("-0.1321875", -0.1321875),
        ("230 * sqrt(2)", 230 * math.sqrt(2)),
        ("1500/60*2*pi", 1500 / 60 * 2 * math.pi),
        ("2^3", 8.0),
        ("-inf", -math.inf),
        (0.25, 0.25),
    ],
)
def test_scalars(text, expected):
    assert parse_value(text) == pytest.approx(expected, rel=1e-15)


def test_design_variables_chain():
    circuit = {"Variables": [{"Name": "Vo", "Value": "500"}, {"Name": "vnorm", "Value": "1/(Vo/2)"},
                             {"Name": "fsw", "Value": "1.95k"}]}
    values = design_variables(circuit)
    assert values == {"Vo": 500.0, "vnorm": 1 / 250, "fsw": 1950.0}
    assert parse_value("Vo / 2 + fsw", values) == 2200.0


def test_vectors_and_matrices():
    np.testing.assert_array_equal(parse_vector("[1 -1]"), [1.0, -1.0])
    np.testing.assert_array_equal(parse_vector("[-1 1]"), [-1.0, 1.0])
    matrix = parse_matrix("[0 450; 5m 450; 5.01m 5e3; 20m 600]")
    np.testing.assert_allclose(matrix, [[0, 450], [5e-3, 450], [5.01e-3, 5e3], [20e-3, 600]], rtol=1e-15)
    assert parse_matrix("[100u -80u; -80u 100u]").shape == (2, 2)


def test_none():
    assert is_none("none") and is_none(" None ")
    assert parse_optional("none") is None
    assert parse_optional("1 / 16k") == pytest.approx(62.5e-6)


@pytest.mark.parametrize("bad", ["6q", "abc", "1 +", "__import__('os')", "5mohm", "[1 2; 3]", True, ""])
def test_bad_strings_name_device_and_parameter(bad):
    with pytest.raises(SpecError, match="device 'L1' parameter 'Value'"):
        if isinstance(bad, str) and bad.startswith("["):
            parse_matrix(bad, device="L1", parameter="Value")
        else:
            parse_value(bad, device="L1", parameter="Value")

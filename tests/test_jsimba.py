"""Reading .jsimba projects and applying overrides (license-free, no aesim import)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simbaflow.simulate import jsimba
from simbaflow.simulate.engines.base import Overrides
from simbaflow.core.errors import SpecError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference" / "direct_current_power_flow_control.jsimba"
OURS = Path(__file__).resolve().parents[1] / "simba_projects" / "dc_current_loop.jsimba"
CONTINUOUS_REF = "1-direct_current_continuous_controller"

needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not available")


@pytest.fixture(scope="module")
def reference():
    return jsimba.load_project(REFERENCE)


@pytest.fixture(scope="module")
def ours():
    return jsimba.load_project(OURS)


@needs_reference
def test_reference_designs_devices_and_scopes(reference):
    assert jsimba.design_names(reference) == [
        "1-direct_current_continuous_controller",
        "2-direct_current_discrete_controller",
        "3-direct_current_power_flow_control",
    ]
    design = jsimba.get_design(reference, CONTINUOUS_REF)
    pi = jsimba.device_by_name(design, "PI")
    assert pi["LibraryName"] == "PID"
    assert jsimba.device_parameters(pi) == {"Kp": "0.1414", "Kd": "0", "Ki": "250", "SamplingTime": "none"}
    # SIMBA keeps value strings exactly as typed, leading space included.
    assert jsimba.device_by_name(design, "Vs_E")["Parameters"]["Value"] == " 1 / 600"
    assert jsimba.scoped_signals(design) == ["L1 - Current", "duty_cycle - Out"]
    flow = jsimba.get_design(reference, "3-direct_current_power_flow_control")
    assert {"PowerRef - Out", "PowerEstimated - Out", "L1 - Current"} <= set(jsimba.scoped_signals(flow))
    assert jsimba.transient_settings(design)["EndTime"] == "0.02"


@needs_reference
def test_device_by_name_skips_connector_labels(reference):
    # The reference names a current probe and two connector labels "iL".
    design = jsimba.get_design(reference, CONTINUOUS_REF)
    assert [d["LibraryName"] for d in jsimba.devices(design) if d["Name"] == "iL"].count("Current Probe") == 1
    assert jsimba.device_by_name(design, "iL")["LibraryName"] == "Current Probe"


def test_load_accepts_utf8_bom(tmp_path):
    path = tmp_path / "bom.jsimba"
    project = {"Designs": [{"Name": "d", "Circuit": {"Devices": [], "Connectors": []}}]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(project).encode())
    assert jsimba.design_names(jsimba.load_project(path)) == ["d"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such SIMBA project file"),
        (b"{not json", "line 1 column 2: invalid JSON"),
        (b'{"Libraries": []}', "top-level key 'Designs'"),
        (b'{"Designs": [{"Circuit": {}}]}', "Designs[0] has no 'Name'"),
        (b'{"Designs": [{"Name": "x"}]}', "design 'x' has no 'Circuit.Devices'"),
    ],
)
def test_load_errors_name_the_file_and_the_expectation(tmp_path, content, expected):
    path = tmp_path / "p.jsimba"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        jsimba.load_project(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_unknown_design_lists_valid_names(ours):
    with pytest.raises(SpecError, match=r"x\.jsimba: no design named 'nope'; valid designs: continuous_pi, discrete_pi, power_flow"):
        jsimba.get_design(ours, "nope", "x.jsimba")


def test_apply_overrides_copies_and_formats(ours):
    design = jsimba.get_design(ours, "continuous_pi")
    changed = jsimba.apply_overrides(
        design,
        Overrides(
            parameters={"PI": {"Kp": 0.123456789012345, "Ki": 300}, "L1": {"Value": "5m"}},
            transient={"EndTime": 0.01, "FixedTimeStep": "true", "TimeStep": "1u"},
        ),
    )
    pi = jsimba.device_by_name(changed, "PI")["Parameters"]
    assert pi["Kp"] == "0.123456789012345" and float(pi["Kp"]) == 0.123456789012345
    assert pi["Ki"] == "300"
    assert jsimba.device_by_name(changed, "L1")["Parameters"]["Value"] == "5m"
    assert changed["TransientAnalysis"]["EndTime"] == "0.01"
    assert changed["TransientAnalysis"]["FixedTimeStep"] is True
    assert changed["TransientAnalysis"]["TimeStep"] == "1u"
    # The original design is untouched.
    assert jsimba.device_by_name(design, "PI")["Parameters"]["Kp"] == "0.14"
    assert design["TransientAnalysis"]["EndTime"] == "0.02"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            Overrides(parameters={"PX": {"Kp": 1}}),
            "design 'continuous_pi': no device named 'PX'; valid devices: COMP1, DC1, Ground1, L1, NOT1, PI,",
        ),
        (
            Overrides(parameters={"PI": {"Kx": 1}}),
            "design 'continuous_pi': device 'PI' (PID) has no parameter 'Kx'; valid parameters: ",
        ),
        (Overrides(parameters={"PI": {"Name": "PI2"}}), "has no parameter 'Name'"),
        (
            Overrides(transient={"StopTime": 0.1}),
            "design 'continuous_pi': 'StopTime' is not a transient setting that can be overridden; "
            "valid settings: EndTime, TimeStep, FixedTimeStep",
        ),
        (Overrides(parameters={"PI": {"Kp": float("nan")}}), "PI.Kp: parameter value nan is not finite"),
        (Overrides(parameters={"PI": {"Kp": True}}), "PI.Kp: parameter value True is a boolean"),
        (Overrides(parameters={"PI": {"Kp": [1, 2]}}), "PI.Kp: parameter value [1, 2] is a list"),
        (Overrides(transient={"FixedTimeStep": "maybe"}), "FixedTimeStep = 'maybe'; expected true or false"),
        (Overrides(parameters={"PI": 0.2}), "overrides for device 'PI' must map parameter names to values, got float"),
        (Overrides(transient={"EndTime": float("inf")}), "EndTime: parameter value inf is not finite"),
    ],
)
def test_each_override_mistake_is_a_clear_error(ours, overrides, expected):
    design = jsimba.get_design(ours, "continuous_pi")
    with pytest.raises(SpecError) as info:
        jsimba.apply_overrides(design, overrides)
    assert expected in str(info.value)


def test_valid_parameter_listing_is_complete(ours):
    design = jsimba.get_design(ours, "continuous_pi")
    with pytest.raises(SpecError) as info:
        jsimba.apply_overrides(design, Overrides(parameters={"L1": {"L": "1m"}}))
    assert str(info.value).endswith("valid parameters: Iinit, Value")


@pytest.mark.parametrize("value", [0.1414, 1e-9, 1 / 3, -0.1321875, 2.5e-300, 16000.0, 0.1 + 0.2])
def test_format_value_is_exact_for_floats(value):
    text = jsimba.format_value(value)
    assert float(text) == value
    assert text == repr(value)


def test_format_value_ints_and_strings():
    import numpy as np

    assert jsimba.format_value(600) == "600"
    assert jsimba.format_value(np.int64(-3)) == "-3"
    assert jsimba.format_value(np.float64(0.25)) == "0.25"
    assert jsimba.format_value(" 1 / 600") == " 1 / 600"
    assert jsimba.format_value("16k") == "16k"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PI.Kp=0.2", ("PI", "Kp", "0.2")),
        ("L1.Value = 5m", ("L1", "Value", "5m")),
        ("my.dev.Value=1e-3", ("my.dev", "Value", "1e-3")),
    ],
)
def test_parse_assignment(text, expected):
    assert jsimba.parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["PI.Kp", "PIKp=1", "PI.=1", ".Kp=1", "PI.Kp="])
def test_parse_assignment_errors(text):
    with pytest.raises(SpecError, match=r"expected DEVICE\.PARAM=VALUE"):
        jsimba.parse_assignment(text)


def test_signals_accept_legacy_names(ours):
    design = jsimba.get_design(ours, "continuous_pi")
    assert jsimba.canonical_signal_name("L1 - Instantaneous Current") == "L1 - Current"
    assert jsimba.resolve_signals(design, ["L1 - Instantaneous Current"]) == ["L1 - Current"]
    assert jsimba.resolve_signals(design, []) == ["L1 - Current", "iRef - Out", "duty_cycle - Out"]
    with pytest.raises(SpecError, match="no scoped signal 'R1 - Voltage'; scoped signals: L1 - Current, iRef - Out, duty_cycle - Out"):
        jsimba.resolve_signals(design, ["R1 - Voltage"])

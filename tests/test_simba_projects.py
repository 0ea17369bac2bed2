"""simba_projects/dc_current_loop.jsimba: deterministic build, nets by pin position, firmware code.

Pin positions come from aesim.simba itself (``Circuit.Deserialize``, license-free),
so the nets checked here are the nets SIMBA will see.
"""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import pytest

from simbaflow.simulate import jsimba
from simbaflow.simulate.sil import BLOCK_SOURCES, block_code

pytest.importorskip("aesim.simba")

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"


def _load_builder():
    spec = importlib.util.spec_from_file_location("simba_projects_build", ROOT / "simba_projects" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder():
    return _load_builder()


@pytest.fixture(scope="module")
def sheets(builder):
    return builder.build_sheets()


@pytest.fixture(scope="module")
def project():
    return jsimba.load_project(PROJECT)


def test_rebuild_is_byte_identical(builder, sheets, tmp_path):
    out = tmp_path / "rebuilt.jsimba"
    assert builder.main(["build.py", str(out)]) == 0
    assert out.read_bytes() == PROJECT.read_bytes()
    # A second drawing of the designs gives the same text again.
    assert builder.project_text(sheets) == PROJECT.read_text(encoding="utf-8")


def test_designs_and_scoped_signals(project):
    assert jsimba.design_names(project) == ["continuous_pi", "discrete_pi", "power_flow"]
    for name in ("continuous_pi", "discrete_pi"):
        assert jsimba.scoped_signals(jsimba.get_design(project, name)) == ["L1 - Current", "iRef - Out", "duty_cycle - Out"]
    flow = jsimba.scoped_signals(jsimba.get_design(project, "power_flow"))
    assert {"L1 - Current", "PowerRef - Out", "PowerEstimated - Out", "duty_cycle_left - Out"} <= set(flow)
    for design in project["Designs"]:
        assert design["TransientAnalysis"]["EndTime"] == "0.02"
        assert design["TransientAnalysis"]["FixedTimeStep"] is False


def _params(design, name):
    return jsimba.device_parameters(jsimba.device_by_name(design, name))


def test_study_devices_have_the_seed_values(project):
    for name in ("continuous_pi", "discrete_pi"):
        design = jsimba.get_design(project, name)
        assert jsimba.device_by_name(design, "L1")["LibraryName"] == "Inductor"
        assert _params(design, "L1")["Value"] == "6m"
        assert _params(design, "R1")["Value"] == "30"
        assert _params(design, "DC1")["Voltage"] == "600"
        assert _params(design, "Vs_E")["Value"] == "1 / 600"
        assert _params(design, "duty_cycle") == {"LowLimit": "0", "HighLimit": "1", "SamplingTime": "none"}
        ref = _params(design, "iRef")
        # Square wave: Offset when low, Offset + Amplitude when high: 6 A <-> 14 A at 100 Hz.
        assert (ref["Offset"], ref["Amplitude"], ref["Frequency"], ref["DutyCycle"]) == ("6", "8", "100", "0.5")
        assert _params(design, "TRI1")["Frequency"] == "16k"
        libraries = sorted(d["LibraryName"] for d in jsimba.devices(design))
        assert libraries.count("Ideal MOSFET with Diode") == 2
        assert {"Comparator", "Not", "Triangular Wave"} <= set(libraries)
    continuous = jsimba.get_design(project, "continuous_pi")
    assert jsimba.device_by_name(continuous, "PI")["LibraryName"] == "PID"
    assert _params(continuous, "PI")["Kd"] == "0"
    flow = jsimba.get_design(project, "power_flow")
    assert sorted(_params(flow, n)["Voltage"] for n in ("DC1", "DC2")) == ["540", "600"]
    assert jsimba.device_by_name(flow, "PowerRef")["LibraryName"] == "Piecewise Linear"
    assert jsimba.device_by_name(flow, "PowerEstimated")["LibraryName"] == "Product"


def test_a0_a1_are_the_tustin_form_of_the_continuous_pi(project):
    pi = _params(jsimba.get_design(project, "continuous_pi"), "PI")
    kp, ki, ts = Fraction(pi["Kp"]), Fraction(pi["Ki"]), Fraction(1, 16000)
    for name in ("discrete_pi", "power_flow"):
        design = jsimba.get_design(project, name)
        assert Fraction(_params(design, "a0")["Value"]) == -kp + ki * ts / 2
        assert Fraction(_params(design, "a1")["Value"]) == kp + ki * ts / 2
        assert jsimba.device_by_name(design, "a0")["LibraryName"] == "Constant"


def test_c_code_block_is_the_firmware_source_byte_for_byte(project):
    expected = b"".join((ROOT / "firmware" / relative).read_bytes() for relative in BLOCK_SOURCES)
    assert block_code().encode("utf-8") == expected
    for name in ("discrete_pi", "power_flow"):
        design = jsimba.get_design(project, name)
        block = jsimba.device_by_name(design, "pi_controller")
        assert block["LibraryName"] == "C Code"
        assert block["Parameters"]["Code"].encode("utf-8") == expected
        assert (block["Parameters"]["NumberOfInputs"], block["Parameters"]["NumberOfOutputs"]) == ("5", "1")


def test_firmware_check_compiles_the_text_the_jsimba_carries(project):
    from simbaflow.promote.pi_check import simba_block_source

    design = jsimba.get_design(project, "discrete_pi")
    carried = jsimba.device_by_name(design, "pi_controller")["Parameters"]["Code"]
    assert simba_block_source(ROOT / "firmware") == carried


def test_delay_constant_feeds_the_blocks_fifth_input(project):
    for name in ("discrete_pi", "power_flow"):
        design = jsimba.get_design(project, name)
        assert jsimba.device_by_name(design, "delay")["LibraryName"] == "Constant"
        assert _params(design, "delay")["Value"] == "0"   # no delay unless a study sets it
        nets, _ = nets_by_position(design["Circuit"])
        assert _net_of(nets, "pi_controller.inputs[4]") == {"delay.Out", "pi_controller.inputs[4]"}
        assert _net_of(nets, "pi_controller.inputs[3]") == {"a1.Out", "pi_controller.inputs[3]"}


# --- nets from pin positions -------------------------------------------------


def _pins(circuit_json):
    """[(device json, [(pin name, (x, y))])] with positions reported by aesim."""
    from aesim.simba import Circuit

    copy = Circuit.Deserialize("Circuit:" + json.dumps(circuit_json))
    circuit = copy.__implementation__
    devices = list(circuit.Devices)
    assert [str(d.Name) for d in devices] == [d["Name"] for d in circuit_json["Devices"]]
    return [
        (device_json, [(pin.Name, (pin.Position.X, pin.Position.Y)) for pin in device.Pins])
        for device_json, device in zip(circuit_json["Devices"], devices)
    ]


def _on_segment(point, segment):
    x, y = point
    x0, y0, x1, y1 = segment["StartX"], segment["StartY"], segment["EndX"], segment["EndY"]
    if x0 == x1 == x:
        return min(y0, y1) <= y <= max(y0, y1)
    if y0 == y1 == y:
        return min(x0, x1) <= x <= max(x0, x1)
    return False


def nets_by_position(circuit_json):
    """Nets as sets of ``"device.pin"`` and a list of wiring problems.

    A connector is one net; a pin is on it when a segment end lies on the pin;
    connector labels join nets by name. Problems: loose wire ends, wires
    running over a pin, wire ends touching another wire, pins on no net.
    """
    positions = _pins(circuit_json)
    parent = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            a = parent[a]
        return a

    def union(a, b):
        parent[find(a)] = find(b)

    pins_at = {}
    for index, (_, pins) in enumerate(positions):
        for name, point in pins:
            pins_at.setdefault(point, []).append((index, name))
            union(("pin", index, name), ("point", point))
    problems = []
    connectors = circuit_json["Connectors"]
    for connector in connectors:
        segments = connector["Segments"]
        ends = [(s["StartX"], s["StartY"]) for s in segments] + [(s["EndX"], s["EndY"]) for s in segments]
        for segment in segments:
            if segment["StartX"] != segment["EndX"] and segment["StartY"] != segment["EndY"]:
                problems.append(f"{connector['Name']}: diagonal segment")
        for point in ends:
            union(("connector", connector["Name"]), ("point", point))
            if point not in pins_at and ends.count(point) < 2:
                problems.append(f"{connector['Name']}: loose end at {point}")
        for point, pins in pins_at.items():
            if point not in ends and any(_on_segment(point, s) for s in segments):
                problems.append(f"{connector['Name']} runs over pin {pins} at {point}")
        for other in connectors:
            if other is not connector:
                for point in set(ends) - set(pins_at):
                    if any(_on_segment(point, s) for s in other["Segments"]):
                        problems.append(f"{connector['Name']} end {point} touches {other['Name']}")
    for index, (device, pins) in enumerate(positions):
        if device["LibraryName"] in jsimba.CONNECTOR_LABELS:
            union(("pin", index, pins[0][0]), ("label", device["Name"]))
    groups = {}
    for index, (device, pins) in enumerate(positions):
        for name, _ in pins:
            groups.setdefault(find(("pin", index, name)), []).append((device, name))
    nets = []
    for members in groups.values():
        if len(members) < 2:
            problems.append(f"pin {members[0][0]['Name']}.{members[0][1]} is on no net")
        named = {f"{d['Name']}.{pin}" for d, pin in members if d["LibraryName"] not in jsimba.CONNECTOR_LABELS}
        if named:
            nets.append(frozenset(named))
    return nets, problems


def _merged(declared):
    nets = []
    for net in map(set, declared):
        for other in [n for n in nets if n & net]:
            nets.remove(other)
            net |= other
        nets.append(net)
    return {frozenset(n) for n in nets}


@pytest.mark.parametrize("name", ["continuous_pi", "discrete_pi", "power_flow"])
def test_every_net_lands_on_the_pins_it_should(project, sheets, name):
    design = jsimba.get_design(project, name)
    nets, problems = nets_by_position(design["Circuit"])
    assert problems == []
    sheet = next(s for s in sheets if s.name == name)
    assert set(nets) == _merged(sheet.nets)


def _net_of(nets, pin):
    (net,) = [n for n in nets if pin in n]
    return net


def test_single_leg_topology(project):
    for name, controller_out in (("continuous_pi", "PI.Out"), ("discrete_pi", "pi_controller.outputs[0]")):
        nets, _ = nets_by_position(jsimba.get_design(project, name)["Circuit"])
        assert _net_of(nets, "DC1.P") == {"DC1.P", "T1H.Drain"}
        assert _net_of(nets, "T1H.Source") == {"T1H.Source", "T1L.Drain", "iL.P"}
        assert _net_of(nets, "L1.P") == {"iL.N", "L1.P"}
        assert _net_of(nets, "L1.N") == {"L1.N", "R1.P", "Vs.P"}
        assert _net_of(nets, "DC1.N") == {"DC1.N", "Ground1.G", "T1L.Source", "R1.N"}
        assert _net_of(nets, "SUM1.inputs[1]") == {"iL.Out", "SUM1.inputs[1]"}
        assert _net_of(nets, "COMP1.Out") == {"COMP1.Out", "T1H.Gate", "NOT1.In"}
        assert _net_of(nets, "T1L.Gate") == {"NOT1.Out", "T1L.Gate"}
        assert _net_of(nets, "SUM2.inputs[0]") == {controller_out, "SUM2.inputs[0]"}
        assert _net_of(nets, "Vs_E.In") == {"Vs.Out", "Vs_E.In"}
        assert _net_of(nets, "duty_cycle.Out") == {"duty_cycle.Out", "COMP1.In1"}


def test_power_flow_topology(project):
    nets, _ = nets_by_position(jsimba.get_design(project, "power_flow")["Circuit"])
    assert _net_of(nets, "DC1.P") == {"DC1.P", "T1H.Drain", "Vb_left.P"}
    assert _net_of(nets, "DC2.P") == {"DC2.P", "T2H.Drain", "Vb_right.P"}
    assert _net_of(nets, "DC1.N") == {"DC1.N", "DC2.N", "Ground1.G", "T1L.Source", "T2L.Source"}
    assert _net_of(nets, "R1.N") == {"R1.N", "T2H.Source", "T2L.Drain"}
    assert _net_of(nets, "iL.Out") == {"iL.Out", "SUM1.inputs[1]", "PowerEstimated.In1"}
    assert _net_of(nets, "Power_K.Out") == {"Power_K.Out", "iL_ref.In2", "PowerEstimated.In2"}
    assert _net_of(nets, "PowerRef.Out") == {"PowerRef.Out", "iL_ref.In1"}


def test_net_check_catches_a_wire_end_off_its_pin(project):
    import copy

    circuit = copy.deepcopy(jsimba.get_design(project, "continuous_pi")["Circuit"])
    _, problems = nets_by_position(circuit)
    assert problems == []
    segment = circuit["Connectors"][0]["Segments"][0]
    segment["StartX"] += 1 if segment["StartY"] == segment["EndY"] else 0
    segment["StartY"] += 1 if segment["StartX"] == segment["EndX"] else 0
    _, problems = nets_by_position(circuit)
    assert any("loose end" in p or "on no net" in p for p in problems)

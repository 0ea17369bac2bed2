"""Pin geometry and nets, checked against aesim.simba and the SIMBA-authored reference."""

import json
import os
import random
from pathlib import Path

import pytest

from simbaflow.core.errors import SpecError
from simbaflow.simulate.netlist import build_netlist, pin_positions

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "direct_current_power_flow_control.jsimba"

SAMPLE = [
    ("Ideal MOSFET with Diode", {}),
    ("Resistor", {}),
    ("Inductor", {}),
    ("DC Voltage Source", {}),
    ("Voltage Probe", {}),
    ("Current Probe", {}),
    ("PID", {}),
    ("Comparator", {}),
    ("Ground", {}),
    ("Control Input Connector Label", {}),
    ("Sum", {"NumberOfInputs": 3}),
    ("C Code", {"NumberOfInputs": 4, "NumberOfOutputs": 2}),
]


def _simba_positions(library, counts):
    """Place the device in every orientation with aesim.simba and read its pins back."""
    os.environ.setdefault("SIMBA_OFFLINE_MODE", "1")
    simba = pytest.importorskip("aesim.simba")
    circuit = simba.Design().Circuit
    device = circuit.AddDevice(library, 0, 0, 0)
    assert device is not None, library
    for key, value in counts.items():
        setattr(device, key, value)
    base = json.loads(circuit.Serialize()[len("Circuit:"):])
    rng = random.Random(library)
    placed = []
    for i, (angle, hf, vf) in enumerate((a, h, v) for a in (0, 90, 180, 270) for h in (False, True) for v in (False, True)):
        placed.append(dict(base["Devices"][0], Top=rng.randint(-40, 40), Left=rng.randint(-40, 40), Angle=angle,
                           HF=hf, VF=vf, Name=f"X{i}", ID=f"{i:08d}-0000-0000-0000-000000000000"))
    result = simba.Circuit.Deserialize("Circuit:" + json.dumps(dict(base, Devices=placed))).__implementation__
    return [(d, {str(p.Name): (int(p.Position.X), int(p.Position.Y)) for p in dev.Pins})
            for d, dev in zip(placed, result.Devices)]


@pytest.mark.parametrize("library, counts", SAMPLE, ids=[s[0] for s in SAMPLE])
def test_pin_positions_match_aesim_simba(library, counts):
    for device, expected in _simba_positions(library, counts):
        assert pin_positions(device) == expected, (device["Angle"], device["HF"], device["VF"])


def test_unknown_library_item_is_a_clear_error():
    with pytest.raises(SpecError, match="'Flux Capacitor' has no pin geometry"):
        pin_positions({"LibraryName": "Flux Capacitor", "Name": "F1"})


def _nets(design):
    netlist = build_netlist(design["Circuit"])
    named = {}
    for (index, pin), net in netlist.pins.items():
        device = netlist.devices[index]
        named.setdefault(net, set()).add((device["LibraryName"], device["Name"], pin))
    return list(named.values())


def _net_of(nets, library, name, pin):
    return next(n for n in nets if (library, name, pin) in n)


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.exists():
        pytest.skip("shared reference project not available")
    return json.loads(REFERENCE.read_bytes().decode("utf-8-sig"))


def test_reference_continuous_design_nets(reference):
    nets = _nets(reference["Designs"][0])
    mid = _net_of(nets, "Ideal MOSFET with Diode", "T1", "Source")
    assert ("Ideal MOSFET with Diode", "T2", "Drain") in mid
    assert ("Current Probe", "iL", "P") in mid
    # The probe's output reaches the error Sum's second input through the "iL" labels.
    assert ("Sum", "SUM1", "inputs[1]") in _net_of(nets, "Current Probe", "iL", "Out")
    # The comparator compares the duty cycle (In1) with the carrier (In2) and drives T1 and the Not.
    assert ("Limiter", "duty_cycle", "Out") in _net_of(nets, "Comparator", "COMP1", "In1")
    assert ("Triangular Wave", "TRI1", "Out") in _net_of(nets, "Comparator", "COMP1", "In2")
    gate = _net_of(nets, "Comparator", "COMP1", "Out")
    assert {("Ideal MOSFET with Diode", "T1", "Gate"), ("Not", "", "In")} <= gate
    ground = _net_of(nets, "Ground", "Ground1", "G")
    assert {("DC Voltage Source", "DC1", "N"), ("Resistor", "R1", "N"), ("Ideal MOSFET with Diode", "T2", "Source")} <= ground
    assert ("Inductor", "L1", "P") not in ground


def test_reference_power_flow_pins_touching_without_wire(reference):
    nets = _nets(reference["Designs"][2])
    assert ("Ideal MOSFET with Diode", "T4", "Gate") in _net_of(nets, "Not", "NOT1", "Out")
    assert ("Resistor", "R1", "P") in _net_of(nets, "Inductor", "L1", "N")
    # Same-named control labels join across the sheet: the left probe feeds three blocks.
    vb_left = _net_of(nets, "Control Input Connector Label", "Vb_left", "P")
    assert {("Division", "Div2", "In1"), ("Sum", "SUM3", "inputs[0]"), ("Product", "Product1", "In1")} <= vb_left
    assert ("Product", "Product1", "In2") not in vb_left


def test_t_junction_and_separate_wires():
    circuit = {
        "Devices": [
            {"LibraryName": "Resistor", "Name": "R1", "Top": 0, "Left": 0, "Angle": 0, "HF": False, "VF": False},
            {"LibraryName": "Resistor", "Name": "R2", "Top": 10, "Left": 0, "Angle": 0, "HF": False, "VF": False},
            {"LibraryName": "Resistor", "Name": "R3", "Top": 20, "Left": 0, "Angle": 0, "HF": False, "VF": False},
        ],
        # R1.N (6,1) to R2.N (6,11) by one wire; a second wire ends on its middle (T) and
        # runs to R3.N (6,21)... via (10,5); R3.P (0,21) is on a wire that only crosses it.
        "Connectors": [
            {"Segments": [{"StartX": 6, "StartY": 1, "EndX": 6, "EndY": 11}]},
            {"Segments": [{"StartX": 6, "StartY": 5, "EndX": 10, "EndY": 5},
                          {"StartX": 10, "StartY": 5, "EndX": 10, "EndY": 21},
                          {"StartX": 10, "StartY": 21, "EndX": 6, "EndY": 21}]},
            {"Segments": [{"StartX": -3, "StartY": 21, "EndX": 3, "EndY": 21}]},
        ],
    }
    netlist = build_netlist(circuit)
    assert netlist.net(0, "N") == netlist.net(1, "N") == netlist.net(2, "N")
    assert len({netlist.net(0, "P"), netlist.net(1, "P"), netlist.net(2, "P")}) == 3


def test_electrical_labels_join_by_name_and_not_with_control_labels():
    def place(library, name, left, top):
        return {"LibraryName": library, "Name": name, "Top": top, "Left": left, "Angle": 0, "HF": False, "VF": False}

    devices = [place("Resistor", "R1", 0, 0), place("Resistor", "R2", 0, 20),
               place("Electrical Connector Label", "X", 10, 0), place("Electrical Connector Label", "X", 10, 20),
               place("Control Input Connector Label", "X", 10, 40)]
    positions = [pin_positions(d) for d in devices]
    # Wire each resistor's N pin to its label's pin.
    connectors = [{"Segments": [{"StartX": positions[i]["N"][0], "StartY": positions[i]["N"][1],
                                 "EndX": positions[j]["P"][0], "EndY": positions[j]["P"][1]}]} for i, j in ((0, 2), (1, 3))]
    netlist = build_netlist({"Devices": devices, "Connectors": connectors})
    assert netlist.net(0, "N") == netlist.net(1, "N")
    assert netlist.net(4, "P") != netlist.net(0, "N")

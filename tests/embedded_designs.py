"""Build small ``.jsimba`` designs in tests: devices on a grid, wires between pins.

Wires are single segments from pin to pin (the netlist only looks at segment
ends), so a test states its circuit as a list of connections.
"""

from __future__ import annotations

from simbaflow.simulate.netlist import pin_positions


def device(library: str, name: str, left: int, top: int, angle: int = 0, **parameters) -> dict:
    """One device dict as SIMBA writes it, parameters given as SIMBA strings."""
    return {
        "LibraryName": library,
        "Name": name,
        "ID": f"{name}-id",
        "Top": top,
        "Left": left,
        "Angle": angle,
        "HF": False,
        "VF": False,
        "Disabled": False,
        "Parameters": {key: str(value) for key, value in parameters.items()},
        "EnabledScopes": [],
    }


def design(devices: list[dict], wires: list[tuple[str, str]], end_time_s: float, scopes: list[str], name: str = "test") -> dict:
    """A design joining ``"device.pin"`` pairs by wires and enabling ``"device - scope"`` signals."""
    by_name = {d["Name"]: d for d in devices}
    connectors = []
    for a, b in wires:
        (da, pa), (db, pb) = a.rsplit(".", 1), b.rsplit(".", 1)
        xa, ya = pin_positions(by_name[da])[pa]
        xb, yb = pin_positions(by_name[db])[pb]
        connectors.append({"Name": f"{a}-{b}", "Segments": [{"StartX": xa, "StartY": ya, "EndX": xb, "EndY": yb}]})
    for signal in scopes:
        dev, scope = signal.split(" - ")
        by_name[dev]["EnabledScopes"].append(scope)
    return {
        "Name": name,
        "Circuit": {"Devices": devices, "Connectors": connectors, "Variables": []},
        "TransientAnalysis": {"EndTime": repr(end_time_s), "TimeStep": "1E-09", "FixedTimeStep": False},
    }


def open_loop_leg(duty: float, e_v: float, r_ohm: float, l_h: float, f_hz: float, end_time_s: float,
                  synchronous: bool = True, c_f: float | None = None, iinit_a: float = 0.0,
                  vinit_v: float = 0.0) -> dict:
    """A buck leg at a fixed duty: comparator (duty vs 0..1 carrier) drives the high side.

    ``synchronous``: low side is an Ideal MOSFET driven by the inverted PWM;
    otherwise a freewheeling Ideal Diode. ``c_f`` adds an output capacitor
    across the load.
    """
    devices = [
        device("DC Voltage Source", "E", 0, 0, Voltage=e_v),
        device("Ground", "GND", 1, 20),
        device("Ideal MOSFET", "TH", 10, 0),
        device("Inductor", "L1", 20, 10, Value=l_h, Iinit=iinit_a),
        device("Resistor", "R1", 30, 10, Value=r_ohm),
        device("Constant", "D", 0, 40, Value=duty),
        device("Triangular Wave", "CARRIER", 0, 50, Amplitude=1, Frequency=f_hz, DutyCycle=0.5, Offset=0, PhaseShift=0),
        device("Comparator", "COMP", 10, 44),
    ]
    wires = [
        ("E.P", "TH.P"), ("TH.N", "L1.P"), ("L1.N", "R1.P"), ("R1.N", "GND.G"), ("E.N", "GND.G"),
        ("D.Out", "COMP.In1"), ("CARRIER.Out", "COMP.In2"), ("COMP.Out", "TH.In"),
    ]
    if synchronous:
        devices += [device("Ideal MOSFET", "TL", 10, 10), device("Not", "NOT", 20, 44)]
        wires += [("TL.P", "TH.N"), ("TL.N", "GND.G"), ("COMP.Out", "NOT.In"), ("NOT.Out", "TL.In")]
    else:
        devices += [device("Ideal Diode", "DF", 10, 10, Rd=0, Vf=0)]
        wires += [("DF.Cathode", "TH.N"), ("DF.Anode", "GND.G")]
    if c_f is not None:
        devices += [device("Capacitor", "C1", 30, 20, Value=c_f, Vinit=vinit_v)]
        wires += [("C1.P", "R1.P"), ("C1.N", "GND.G")]
    return design(devices, wires, end_time_s, ["L1 - Current", "R1 - Voltage"], name="open_loop_leg")

"""Build ``simba_projects/dc_current_loop.jsimba``: the study's three SIMBA designs.

Run ``python simba_projects/build.py [OUT.jsimba]``. Devices are placed and
wired through aesim.simba's license-free API (``Circuit.AddDevice``,
``Circuit.AddConnection``, ``Circuit.Serialize``), so every wire end sits on a
pin where SIMBA itself puts it. Parameter values and the C Code text are then
written into the serialised JSON directly: aesim's attribute setters escape
control characters in strings, which would corrupt the C source. Random IDs
are replaced by uuid5 of design, position and name, so a rebuild is
byte-identical.

Designs (signals are SIMBA's ``"<device> - <scope>"``):

- ``continuous_pi``: 600 V half-bridge leg of two Ideal MOSFET with Diode,
  ``L1`` 6 mH into ``R1`` 30 ohm, SIMBA PID block ``PI`` (Kd = 0) plus the
  output-voltage compensation ``Vs_E`` = 1/600, ``duty_cycle`` limiter 0..1,
  16 kHz triangular carrier and comparator, ``iRef`` square wave 6 A <-> 14 A
  at 100 Hz.
- ``discrete_pi``: the same leg; the controller is a C Code block
  (``pi_controller``, the firmware source, see :func:`simbaflow.simulate.sil.block_code`)
  sampled by a 16 kHz ``clock`` through a zero-crossing detector, with
  coefficients from the constants ``a0`` and ``a1`` and the computation delay
  (samples, 0 or 1) from the constant ``delay``.
- ``power_flow``: two legs on 600 V and 540 V buses joined by ``L1`` (10 mOhm
  ``R1``); the discrete current loop drives the differential duty, the
  current reference is ``PowerRef`` / ``Power_K`` with
  ``Power_K`` = Vb_left Vb_right / (Vb_left + Vb_right), and
  ``PowerEstimated`` = iL Power_K.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from aesim.simba import Design

from simbaflow.core.atomic import write_bytes
from simbaflow.simulate.sil import block_code

#: Output file, next to this script.
PROJECT_PATH = Path(__file__).resolve().parent / "dc_current_loop.jsimba"

#: Namespace of the stable IDs (uuid5 of a fixed URL).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "simbaflow/simba_projects/dc_current_loop")

#: Transient settings: 20 ms like the seed study; SIMBA's variable-step solver
#: with 1 ns as its minimum step, every point kept (no scope compression).
TRANSIENT = {
    "EndTime": "0.02",
    "FixedTimeStep": False,
    "SaveInitialPoint": True,
    "CompressScopes": False,
    "StopAtSteadyState": False,
    "TimeStep": "1E-09",
    "BaseFrequencyParameterEnabled": False,
    "NumberOfBasePeriodsSavedParameterEnabled": False,
    "BaseFrequency": "60",
    "NumberOfBasePeriodsSaved": "1",
}

_INPUT_LABEL = "Control Input Connector Label"
_OUTPUT_LABEL = "Control Output Connector Label"
# Label rotation putting its pin on the side facing the device pin, and the
# label origin relative to that pin (measured from aesim's pin positions).
_LABEL_PLACEMENT = {
    # side of the device pin: (input-label angle, output-label angle, dx, dy)
    "right": (0, 180, 2, -1),
    "left": (180, 0, -6, -1),
    "down": (90, 270, -2, 3),
    "up": (270, 90, -2, -5),
}


class _Sheet:
    """One design being drawn: devices, wires and the nets they are meant to make."""

    def __init__(self, name: str):
        self.name = name
        self.design = Design()
        self.design.Name = name
        self.circuit = self.design.Circuit
        self.devices: dict[str, object] = {}
        self.parameters: dict[str, dict[str, str]] = {}
        self.scopes: dict[str, list[str]] = {}
        self.nets: list[set[str]] = []

    def add(self, library, name, x, y, angle=0, hflip=False, vflip=False, params=None, scopes=()):
        device = self.circuit.AddDevice(library, x, y, angle, hflip, vflip)
        if device is None:
            # AddDevice returns None for an unknown name or an overlapping footprint.
            raise RuntimeError(f"{self.name}: cannot place {library!r} {name!r} at ({x}, {y})")
        device.Name = name
        if name in self.devices:
            raise RuntimeError(f"{self.name}: device name {name!r} used twice")
        self.devices[name] = device
        self.parameters[name] = dict(params or {})
        available = [scope.Name for scope in device.Scopes]
        missing = [scope for scope in scopes if scope not in available]
        if missing:
            raise RuntimeError(f"{self.name}: {name} has no scope {missing}; it has {available}")
        self.scopes[name] = list(scopes)
        return device

    def pin(self, ref: str):
        device_name, _, pin_name = ref.partition(".")
        for pin in self.devices[device_name].Pins:
            if pin.Name == pin_name:
                return pin
        raise RuntimeError(f"{self.name}: {device_name} has no pin {pin_name!r}")

    def wire(self, *refs: str) -> None:
        """Join pins with wires, each to the next."""
        for a, b in zip(refs, refs[1:]):
            if self.circuit.AddConnection(self.pin(a), self.pin(b)) is None:
                raise RuntimeError(f"{self.name}: cannot wire {a} to {b}")
        self.nets.append(set(refs))

    def signal(self, net: str, source: str, *sinks: str) -> None:
        """Carry a control signal by connector labels named ``net``: one beside each pin."""
        for index, ref in enumerate((source, *sinks)):
            pin = self.pin(ref)
            side = self._side(ref)
            in_angle, out_angle, dx, dy = _LABEL_PLACEMENT[side]
            library, angle = (_INPUT_LABEL, in_angle) if index == 0 else (_OUTPUT_LABEL, out_angle)
            label = self.circuit.AddDevice(library, pin.Position.X + dx, pin.Position.Y + dy, angle)
            if label is None:
                raise RuntimeError(f"{self.name}: no room for the {net!r} label beside {ref}")
            label.Name = net
            if self.circuit.AddConnection(pin, label.Pins[0]) is None:
                raise RuntimeError(f"{self.name}: cannot wire {ref} to its {net!r} label")
        self.nets.append({source, *sinks})

    def _side(self, ref: str) -> str:
        device = self.devices[ref.partition(".")[0]]
        pin, box = self.pin(ref), device.Footprint
        if pin.Position.X <= box.Left:
            return "left"
        if pin.Position.X >= box.Right:
            return "right"
        return "up" if pin.Position.Y <= box.Top else "down"

    def to_json(self) -> dict:
        """The design as SIMBA writes it in a project, with stable IDs and our values."""
        circuit = json.loads(self.circuit.Serialize().removeprefix("Circuit:"))
        circuit["Id"] = str(uuid.uuid5(ID_NAMESPACE, f"{self.name}/circuit"))
        # Project files SIMBA writes carry no circuit symbol for a top circuit.
        circuit.pop("Symbol", None)
        for index, device in enumerate(circuit["Devices"]):
            name = device["Name"]
            device["ID"] = str(uuid.uuid5(ID_NAMESPACE, f"{self.name}/{index}/{name}"))
            if device["LibraryName"] in (_INPUT_LABEL, _OUTPUT_LABEL):
                continue
            for key, value in self.parameters[name].items():
                if key not in device["Parameters"]:
                    raise RuntimeError(f"{self.name}: {name} has no parameter {key!r}")
                device["Parameters"][key] = value
            device["EnabledScopes"] = self.scopes[name]
        return {
            "Id": str(uuid.uuid5(ID_NAMESPACE, f"{self.name}/design")),
            "Name": self.name,
            "Circuit": circuit,
            "TransientAnalysis": dict(TRANSIENT),
        }


def _leg(sheet: _Sheet, x: int, y: int, suffix: str, voltage: str, mirror: bool = False) -> None:
    """A half-bridge leg: bus source ``DC<suffix>``, MOSFETs ``T<suffix>H``/``T<suffix>L``.

    The lower switch's gate is the complement (``NOT<suffix>``) of the upper
    one's. ``mirror`` puts the source right of the switches (gates facing
    right), for a leg fed from the right.
    """
    hi, lo, dc, inv = f"T{suffix}H", f"T{suffix}L", f"DC{suffix}", f"NOT{suffix}"
    # The inverter sits beside the lower gate so that its wire crosses nothing.
    if mirror:
        sheet.add("DC Voltage Source", dc, x + 20, y, params={"Voltage": voltage})
        sheet.add("Not", inv, x + 8, y + 7, angle=180)
    else:
        sheet.add("DC Voltage Source", dc, x - 6, y, params={"Voltage": voltage})
        sheet.add("Not", inv, x + 6, y + 7)
    switch_x = x if mirror else x + 14
    sheet.add("Ideal MOSFET with Diode", hi, switch_x, y - 4, hflip=mirror)
    sheet.add("Ideal MOSFET with Diode", lo, switch_x, y + 6, hflip=mirror)
    sheet.wire(f"{dc}.P", f"{hi}.Drain")
    sheet.wire(f"{hi}.Source", f"{lo}.Drain")
    sheet.wire(f"{inv}.Out", f"{lo}.Gate")


def _gates(sheet: _Sheet, suffix: str, gate: str) -> None:
    """Comparator ``COMP<suffix>`` drives leg ``<suffix>``'s gates through net ``gate``."""
    sheet.signal(gate, f"COMP{suffix}.Out", f"T{suffix}H.Gate", f"NOT{suffix}.In")


def _modulator(sheet: _Sheet, x: int, y: int, suffix: str, duty: str, gate: str) -> None:
    """Limiter ``duty`` into a 16 kHz carrier comparator whose output is net ``gate``."""
    sheet.add("Limiter", duty, x, y, params={"LowLimit": "0", "HighLimit": "1"}, scopes=["Out"])
    sheet.add(
        "Triangular Wave",
        f"TRI{suffix}",
        x,
        y + 8,
        params={"Amplitude": "1", "Frequency": "16k", "DutyCycle": "0.5", "Offset": "0", "PhaseShift": "0"},
    )
    sheet.add("Comparator", f"COMP{suffix}", x + 10, y)
    sheet.wire(f"{duty}.Out", f"COMP{suffix}.In1")
    sheet.wire(f"TRI{suffix}.Out", f"COMP{suffix}.In2")
    _gates(sheet, suffix, gate)


def _single_leg_plant(sheet: _Sheet) -> None:
    """600 V leg, current probe ``iL``, ``L1`` 6 mH, ``R1`` 30 ohm to ground, probe ``Vs`` across R1."""
    _leg(sheet, 0, 0, "1", "600")
    sheet.add("Current Probe", "iL", 24, 3, vflip=True)
    sheet.add("Inductor", "L1", 32, 3, params={"Value": "6m", "Iinit": "0"}, scopes=["Current"])
    sheet.add("Resistor", "R1", 45, 8, angle=90, params={"Value": "30"})
    sheet.add("Voltage Probe", "Vs", 54, 3)
    sheet.add("Ground", "Ground1", -5, 12)
    sheet.wire("T1H.Source", "iL.P")
    sheet.wire("iL.N", "L1.P")
    sheet.wire("L1.N", "R1.P", "Vs.P")
    sheet.wire("DC1.N", "Ground1.G", "T1L.Source", "R1.N")


def _reference_and_error(sheet: _Sheet, x: int, y: int) -> None:
    """``iRef`` square wave 6 A <-> 14 A at 100 Hz minus ``iL``: the error out of ``SUM1``."""
    sheet.add(
        "Square Wave",
        "iRef",
        x,
        y,
        params={"Amplitude": "8", "Frequency": "100", "DutyCycle": "0.5", "Offset": "6", "PhaseShift": "0"},
        # Scoped so the reference is recorded beside the current it commands (step metrics).
        scopes=["Out"],
    )
    sheet.add("Sum", "SUM1", x + 10, y, params={"NumberOfInputs": "2", "Gains": "[1 -1]"})
    sheet.wire("iRef.Out", "SUM1.inputs[0]")
    sheet.signal("iL", "iL.Out", "SUM1.inputs[1]")


def _compensation(sheet: _Sheet, x: int, y: int, controller_out: str, by_label: bool = False) -> None:
    """``duty_cycle`` input = controller output + Vs / E (``Vs_E`` gain 1/600).

    ``by_label`` carries the controller output by a label ``alpha`` rather than
    a wire (a controller drawn below would have its wire cross the gain's).
    """
    sheet.add("Gain", "Vs_E", x, y + 8, params={"Value": "1 / 600"})
    sheet.add("Sum", "SUM2", x + 10, y, params={"NumberOfInputs": "2", "Gains": "[1 1]"})
    if by_label:
        sheet.signal("alpha", controller_out, "SUM2.inputs[0]")
    else:
        sheet.wire(controller_out, "SUM2.inputs[0]")
    sheet.wire("Vs_E.Out", "SUM2.inputs[1]")
    sheet.signal("Vs", "Vs.Out", "Vs_E.In")
    sheet.wire("SUM2.Out", "duty_cycle.In")


def _discrete_controller(sheet: _Sheet, x: int, y: int, name: str, error: str) -> None:
    """C Code block ``name`` running the firmware PI at 16 kHz on ``error``.

    Gains come from the constants ``a0``/``a1``, the computation delay in
    samples (0 or 1) from ``delay``.
    """
    sheet.add(
        "Square Wave",
        "clock",
        x,
        y,
        params={"Amplitude": "1", "Frequency": "16k", "DutyCycle": "0.5", "Offset": "-0.5", "PhaseShift": "0"},
    )
    sheet.add("Zero-Crossing Detector", "ZCD1", x + 8, y)
    # a0 = -Kp + Ki Ts / 2, a1 = Kp + Ki Ts / 2 for Kp = 0.14, Ki = 250, Ts = 1/16 kHz.
    sheet.add("Constant", "a0", x, y + 14, params={"Value": "-0.1321875"})
    sheet.add("Constant", "a1", x + 8, y + 14, params={"Value": "0.1478125"})
    # No delay by default: alpha applies in the period it is computed.
    sheet.add("Constant", "delay", x + 8, y + 22, params={"Value": "0"})
    code = sheet.add("C Code", name, x + 18, y)
    # The pins follow the port counts, so set them before wiring.
    code.NumberOfInputs = 5
    code.NumberOfOutputs = 1
    sheet.parameters[name] = {
        "NumberOfInputs": "5",
        "NumberOfOutputs": "1",
        "OptionalAdditionalIncludeDirectory": "",
        "Code": block_code(),
    }
    sheet.wire("clock.Out", "ZCD1.In")
    sheet.wire("ZCD1.Out", f"{name}.inputs[0]")
    # By label: a wire from the error summer would have to cross the clock's.
    sheet.signal("error", error, f"{name}.inputs[1]")
    sheet.wire("a0.Out", f"{name}.inputs[2]")
    sheet.wire("a1.Out", f"{name}.inputs[3]")
    sheet.wire("delay.Out", f"{name}.inputs[4]")


def continuous_pi() -> _Sheet:
    sheet = _Sheet("continuous_pi")
    _single_leg_plant(sheet)
    _reference_and_error(sheet, 0, 34)
    # Kp, Ki: the seed study's pole placement (wn = R/L, xi = 1.4); a0, a1 below are their Tustin form.
    sheet.add("PID", "PI", 20, 34, params={"Kp": "0.14", "Ki": "250", "Kd": "0"})
    sheet.wire("SUM1.Out", "PI.In")
    _modulator(sheet, 56, 34, "1", "duty_cycle", "pwm")
    _compensation(sheet, 36, 34, "PI.Out")
    return sheet


def discrete_pi() -> _Sheet:
    sheet = _Sheet("discrete_pi")
    _single_leg_plant(sheet)
    _reference_and_error(sheet, 0, 34)
    _discrete_controller(sheet, 0, 46, "pi_controller", "SUM1.Out")
    _modulator(sheet, 64, 34, "1", "duty_cycle", "pwm")
    _compensation(sheet, 44, 34, "pi_controller.outputs[0]", by_label=True)
    return sheet


def power_flow() -> _Sheet:
    sheet = _Sheet("power_flow")
    # Left leg (600 V) and right leg (540 V) share the negative rail.
    _leg(sheet, 0, 0, "1", "600")
    _leg(sheet, 60, 0, "2", "540", mirror=True)
    sheet.add("Current Probe", "iL", 24, 3, vflip=True)
    sheet.add("Inductor", "L1", 32, 3, params={"Value": "6m", "Iinit": "0"}, scopes=["Current"])
    sheet.add("Resistor", "R1", 42, 3, params={"Value": "10m"})
    sheet.add("Ground", "Ground1", -5, 12)
    sheet.wire("T1H.Source", "iL.P")
    sheet.wire("iL.N", "L1.P")
    sheet.wire("L1.N", "R1.P")
    sheet.wire("R1.N", "T2H.Source", "T2L.Drain")
    sheet.wire("DC1.N", "Ground1.G", "T1L.Source", "T2L.Source", "DC2.N")
    sheet.add("Voltage Probe", "Vb_left", -4, -10)
    sheet.add("Voltage Probe", "Vb_right", 82, -10)
    sheet.wire("DC1.P", "Vb_left.P")
    sheet.wire("DC2.P", "Vb_right.P")

    # Power_K = Vb_left * Vb_right / (Vb_left + Vb_right): power per ampere of iL.
    sheet.add("Sum", "sigma_Vb", 0, 64, params={"NumberOfInputs": "2", "Gains": "[1 1]"})
    sheet.add("Product", "VbProduct", 0, 74)
    sheet.add("Division", "Power_K", 12, 74)
    sheet.wire("VbProduct.Out", "Power_K.In1")
    sheet.add("Product", "PowerEstimated", 34, 74, scopes=["Out"])

    # Current reference and the discrete current loop.
    sheet.add(
        "Piecewise Linear",
        "PowerRef",
        0,
        34,
        # Rising steps only: the firmware PI clamps alpha to 0..1, and with 10 mOhm in
        # the loop a falling current reference would need alpha < 0 to be tracked.
        params={"TimeValueMatrix": "[0 500; 5m 500; 5.01m 2k; 10m 2k; 10.01m 4k; 20m 4k]"},
        scopes=["Out"],
    )
    sheet.add("Division", "iL_ref", 10, 34, scopes=["Out"])
    sheet.add("Sum", "SUM1", 20, 34, params={"NumberOfInputs": "2", "Gains": "[1 -1]"})
    sheet.wire("PowerRef.Out", "iL_ref.In1")
    sheet.wire("iL_ref.Out", "SUM1.inputs[0]")
    _discrete_controller(sheet, 0, 46, "pi_controller", "SUM1.Out")

    # alpha drives the difference of the legs: d_left - d_right = alpha, centred
    # so that d_left Vb_left = d_right Vb_right when alpha = 0.
    sheet.add("Gain", "half", 44, 50, params={"Value": "1 / 2"})
    sheet.add("Division", "Div_left", 44, 60)
    sheet.add("Division", "Div_right", 44, 70)
    sheet.add("Sum", "SUM_left", 56, 54, params={"NumberOfInputs": "2", "Gains": "[1 1]"})
    sheet.add("Sum", "SUM_right", 56, 70, params={"NumberOfInputs": "2", "Gains": "[-1 1]"})
    sheet.wire("pi_controller.outputs[0]", "half.In")
    sheet.wire("half.Out", "SUM_left.inputs[0]", "SUM_right.inputs[0]")
    sheet.wire("Div_left.Out", "SUM_left.inputs[1]")
    sheet.wire("Div_right.Out", "SUM_right.inputs[1]")
    _modulator(sheet, 72, 54, "1", "duty_cycle_left", "pwm_left")
    _modulator(sheet, 72, 70, "2", "duty_cycle_right", "pwm_right")
    sheet.wire("SUM_left.Out", "duty_cycle_left.In")
    sheet.wire("SUM_right.Out", "duty_cycle_right.In")

    sheet.signal("iL", "iL.Out", "SUM1.inputs[1]", "PowerEstimated.In1")
    sheet.signal("Power_K", "Power_K.Out", "iL_ref.In2", "PowerEstimated.In2")
    sheet.signal("Vb_left", "Vb_left.Out", "sigma_Vb.inputs[0]", "VbProduct.In1", "Div_right.In1")
    sheet.signal("Vb_right", "Vb_right.Out", "sigma_Vb.inputs[1]", "VbProduct.In2", "Div_left.In1")
    sheet.signal("sigma_Vb", "sigma_Vb.Out", "Power_K.In2", "Div_left.In2", "Div_right.In2")
    # Only scoped, but labelled so that every pin of the design is on a net.
    sheet.signal("P_est", "PowerEstimated.Out")
    return sheet


#: The builders, in project order.
DESIGNS = (continuous_pi, discrete_pi, power_flow)


def build_sheets() -> list[_Sheet]:
    """Draw every design (aesim objects plus the nets each is meant to have)."""
    return [make() for make in DESIGNS]


def project_text(sheets: list[_Sheet] | None = None) -> str:
    """The whole ``.jsimba`` text, deterministic for a given aesim.simba and firmware source."""
    sheets = build_sheets() if sheets is None else sheets
    project = {
        "Designs": [sheet.to_json() for sheet in sheets],
        "Libraries": [],
        "TestBenches": [],
        "ThermalData": [],
    }
    return json.dumps(project, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else PROJECT_PATH
    write_bytes(out, project_text().encode("utf-8"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

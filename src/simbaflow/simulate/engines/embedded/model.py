"""Compile a ``.jsimba`` design into the embedded engine's model (once per design).

The design's devices become electrical elements (:mod:`.circuit`), probes and
control blocks (:mod:`.blocks`) on the nets of :mod:`simbaflow.simulate.netlist`;
control blocks are put in evaluation order. Parameter strings are kept so a
run can apply new values without re-reading the file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from simbaflow.core.errors import SpecError
from simbaflow.simulate.netlist import LABELS, build_netlist
from simbaflow.simulate.simba_values import design_variables, is_none, parse_value

from . import blocks as B
from .ccode import CodeBlock, compile_code
from .circuit import Element, build_circuit

#: Electrical library items and their (positive, negative) pins; thermal and loss
#: parameters (InitialTemperature, LossCalculationFrequency) are ignored.
ELECTRICAL = {
    "Resistor": ("P", "N"),
    "Inductor": ("P", "N"),
    "Capacitor": ("P", "N"),
    "DC Voltage Source": ("P", "N"),
    "DC Current Source": ("P", "N"),
    "Ideal MOSFET": ("P", "N"),
    "Controlled Switch": ("P", "N"),
    "Ideal MOSFET with Diode": ("Drain", "Source"),
    "Ideal Diode": ("Anode", "Cathode"),
    "Diode": ("Anode", "Cathode"),
    "Current Probe": ("P", "N"),
}
PROBES = ("Voltage Probe", "Current Probe")
IGNORED = ("Ground", *LABELS)

SUPPORTED = sorted({*ELECTRICAL, *PROBES, *IGNORED, *B.BLOCKS})


@dataclass
class Switch:
    """A switch element: gated channel, diode, or both (MOSFET with body diode)."""

    element: int
    device: str
    gate: int | None = None  # net of the gate signal (controlled switches)


@dataclass
class Probe:
    kind: str  # "voltage" or "current"
    device: str
    output: int  # net of the Out pin
    net: int = -1  # measured net (voltage probe)
    element: int = -1  # measured element (current probe)
    params: dict = field(default_factory=dict)
    gain: float = 1.0


@dataclass
class Model:
    """A compiled design; see :func:`compile_model`."""

    design_name: str
    devices: dict[str, dict]  # addressable device name -> device (raw)
    elements: list[Element]
    element_params: list[tuple[str, dict]]  # (library, parameters) per element, for re-configuration
    element_of_device: dict[str, list[int]]
    n_nets: int
    ground: int | None
    switches: list[Switch]
    probes: list[Probe]
    blocks: list[B.Block]
    transient: dict
    variables: dict[str, float]


def _pins(netlist, index: int, device: dict, names: tuple[str, ...]) -> list[int]:
    try:
        return [netlist.net(index, name) for name in names]
    except KeyError as exc:
        raise SpecError(f"device '{device.get('Name', '')}' ({device['LibraryName']}): no pin {exc.args[0][1]!r}") from None


def _check_supported(device: dict) -> None:
    library = device.get("LibraryName", "")
    if library not in SUPPORTED:
        raise SpecError(
            f"device '{device.get('Name', '')}' ({library}) is not supported by the embedded engine; "
            f"supported devices: {', '.join(SUPPORTED)}"
        )


def compile_model(design: dict) -> Model:
    """Build the model of ``design`` (a design dict of a loaded project).

    Raises
    ------
    SpecError
        For an unsupported device or parameter (naming the device and the
        supported list), unconnected or doubly driven control nets, and
        algebraic loops between control blocks.
    """
    design = copy.deepcopy(design)
    circuit_json = design["Circuit"]
    variables = design_variables(circuit_json)
    netlist = build_netlist(circuit_json)
    elements: list[Element] = []
    element_params: list[tuple[str, dict]] = []
    element_of_device: dict[str, list[int]] = {}
    switches: list[Switch] = []
    probes: list[Probe] = []
    blocks: list[B.Block] = []
    ground_nets: set[int] = set()
    devices = {}

    def add(kind: str, device: dict, p: int, n: int) -> int:
        elements.append(Element(kind=kind, device=device.get("Name", ""), p=p, n=n))
        element_params.append((device["LibraryName"], device.get("Parameters") or {}))
        element_of_device.setdefault(device.get("Name", ""), []).append(len(elements) - 1)
        return len(elements) - 1

    for index, device in enumerate(netlist.devices):
        _check_supported(device)
        library, name = device["LibraryName"], device.get("Name", "")
        params = dict(device.get("Parameters") or {})
        if library not in LABELS:
            devices[name] = device
        if library == "Ground":
            ground_nets.add(netlist.net(index, "G"))
            continue
        if library in LABELS:
            continue
        if library in ELECTRICAL:
            p, n = _pins(netlist, index, device, ELECTRICAL[library])
            if library == "Resistor":
                add("R", device, p, n)
            elif library == "Inductor":
                add("L", device, p, n)
            elif library == "Capacitor":
                add("C", device, p, n)
            elif library == "DC Voltage Source":
                add("V", device, p, n)
            elif library == "DC Current Source":
                add("I", device, p, n)
            elif library in ("Ideal MOSFET", "Controlled Switch", "Ideal MOSFET with Diode"):
                gate = _pins(netlist, index, device, ("Gate" if library == "Ideal MOSFET with Diode" else "In",))[0]
                switches.append(Switch(add("S", device, p, n), name, gate=gate))
            elif library in ("Ideal Diode", "Diode"):
                switches.append(Switch(add("S", device, p, n), name))
            elif library == "Current Probe":
                element = add("A", device, p, n)
                out = _pins(netlist, index, device, ("Out",))[0]
                probes.append(Probe("current", name, out, element=element, params=params))
            continue
        if library == "Voltage Probe":
            p, out = _pins(netlist, index, device, ("P", "Out"))
            probes.append(Probe("voltage", name, out, net=p, params=params))
            continue
        blocks.append(_make_block(netlist, index, device, library, name, params))

    _check_connected(netlist, design["Name"], ground_nets)
    # Every Ground symbol is the same reference node.
    ground = min(ground_nets) if ground_nets else None
    for element in elements:
        element.p = ground if element.p in ground_nets else element.p
        element.n = ground if element.n in ground_nets else element.n
    for probe in probes:
        probe.net = ground if probe.net in ground_nets else probe.net
    ordered = _order(blocks, probes, netlist.n_nets, design["Name"])
    for block in ordered:
        if block.library == "C Code":
            code = block.params.get("Code", "")
            library_path = compile_code(code, block.name, block.params.get("OptionalAdditionalIncludeDirectory", ""))
            block.instance = CodeBlock(library_path, block.name, len(block.inputs), len(block.outputs))
    model = Model(
        design_name=design["Name"],
        devices=devices,
        elements=elements,
        element_params=element_params,
        element_of_device=element_of_device,
        n_nets=netlist.n_nets,
        ground=ground,
        switches=switches,
        probes=probes,
        blocks=ordered,
        transient=dict(design.get("TransientAnalysis") or {}),
        variables=variables,
    )
    configure(model, {})
    return model


def _check_connected(netlist, design_name: str, ground_nets: set[int]) -> None:
    """Refuse an electrical pin that touches no other electrical pin (a wire removed or never drawn).

    Such a terminal would leave its element floating: the run would go on with a
    current of 0 instead of failing.
    """
    terminals: dict[int, list[tuple[int, str]]] = {}
    for (index, pin), net in netlist.pins.items():
        library = netlist.devices[index]["LibraryName"]
        if library in ELECTRICAL and pin in ELECTRICAL[library]:
            terminals.setdefault(net, []).append((index, pin))
    for net, pins in terminals.items():
        if len(pins) == 1 and net not in ground_nets:
            index, pin = pins[0]
            raise SpecError(f"design '{design_name}': pin {pin} of '{netlist.devices[index].get('Name', '')}' "
                            "is connected to no other electrical pin (a missing wire?)")


def _make_block(netlist, index, device, library, name, params) -> B.Block:
    pins = [key[1] for key in netlist.pins if key[0] == index]
    if library == "C Code":
        n_in = int(params.get("NumberOfInputs", "0"))
        n_out = int(params.get("NumberOfOutputs", "0"))
        inputs = [f"inputs[{k}]" for k in range(n_in)]
        outputs = [f"outputs[{k}]" for k in range(n_out)]
    elif library == "Sum":
        inputs = [p for p in pins if p.startswith("inputs[")]
        inputs.sort(key=lambda p: int(p[7:-1]))
        outputs = ["Out"]
    else:
        inputs = [p for p in ("In", "In1", "In2") if p in pins]
        outputs = [p for p in ("Out",) if p in pins]
    if B.has_sampling(params) and not issubclass(B.BLOCKS[library], (B.Sampled, B.CCode)):
        raise SpecError(
            f"device '{name}' ({library}): SamplingTime {params.get('SamplingTime')!r} is not supported for this block "
            "by the embedded engine; supported: none (continuous)"
        )
    block = B.BLOCKS[library](
        library=library,
        name=name,
        inputs=[netlist.net(index, p) for p in inputs],
        outputs=[netlist.net(index, p) for p in outputs],
        params=params,
    )
    return block


def _order(blocks: list[B.Block], probes: list[Probe], n_nets: int, design_name: str) -> list[B.Block]:
    producer: dict[int, str] = {}
    for probe in probes:
        producer[probe.output] = probe.device
    by_output: dict[int, B.Block] = {}
    for block in blocks:
        for net in block.outputs:
            if net in producer:
                raise SpecError(
                    f"design '{design_name}': outputs of '{producer[net]}' and '{block.name}' are wired together; "
                    "a control signal must have one source"
                )
            producer[net] = block.name
            by_output[net] = block
    ordered: list[B.Block] = []
    state: dict[int, int] = {}  # id -> 1 visiting, 2 done

    def visit(block: B.Block, path: list[str]) -> None:
        key = id(block)
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise SpecError(
                f"design '{design_name}': algebraic loop through {' -> '.join(path + [block.name])}; "
                "break it with a Zero Order Hold or a delay"
            )
        state[key] = 1
        if block.library not in B.NO_FEEDTHROUGH:
            for net in block.inputs:
                source = by_output.get(net)
                if source is not None:
                    visit(source, path + [block.name])
        state[key] = 2
        ordered.append(block)

    for block in blocks:
        visit(block, [])
    for block in blocks:
        for k, net in enumerate(block.inputs):
            if net not in producer:
                raise SpecError(
                    f"design '{design_name}': input {k + 1} of '{block.name}' ({block.library}) is not connected to any output"
                )
    return ordered


def configure(model: Model, parameters: dict[str, dict[str, str]]) -> None:
    """Parse every parameter, with ``parameters`` (``{device: {name: SIMBA string}}``) applied.

    Raises
    ------
    SpecError
        For an unknown device or parameter, a value that does not parse, or an
        unsupported parameter value.
    """
    for device, values in parameters.items():
        if device not in model.devices:
            raise SpecError(
                f"design '{model.design_name}': no device named '{device}'; valid devices: {', '.join(sorted(model.devices))}"
            )
        known = model.devices[device].get("Parameters") or {}
        for key in values:
            if key not in known:
                raise SpecError(
                    f"design '{model.design_name}': device '{device}' has no parameter '{key}'; "
                    f"valid parameters: {', '.join(known)}"
                )
    variables = model.variables

    def merged(name: str, params: dict) -> dict:
        return {**params, **{k: str(v) for k, v in parameters.get(name, {}).items()}}

    for index, (library, params) in enumerate(model.element_params):
        element = model.elements[index]
        _configure_element(element, library, merged(element.device, params), variables)
    for probe in model.probes:
        params = merged(probe.device, probe.params)
        if not is_none(params.get("SamplingTime", "none")) and params.get("SamplingTime", "").strip() not in ("0", "auto"):
            raise SpecError(
                f"device '{probe.device}': SamplingTime {params['SamplingTime']!r} is not supported on probes; supported: none"
            )
        probe.gain = parse_value(params.get("Gain", "1"), variables, device=probe.device, parameter="Gain")
    for block in model.blocks:
        original = block.params
        block.params = merged(block.name, original)
        try:
            block.configure(variables)
        finally:
            block.params = original


def _configure_element(element: Element, library: str, params: dict, variables: dict) -> None:
    def value(key: str, default: str) -> float:
        text = params.get(key, default)
        if isinstance(text, str) and text.strip().lower() == "auto":
            raise SpecError(
                f"device '{element.device}' ({library}): {key} = 'auto' (start from the DC operating point) is not "
                "supported by the embedded engine; supported: a number"
            )
        return parse_value(text, variables, device=element.device, parameter=key)

    if element.kind == "R":
        element.value = value("Value", "10")
        if element.value <= 0:
            raise SpecError(f"device '{element.device}' (Resistor): Value must be positive, got {element.value}")
    elif element.kind == "L":
        element.value, element.initial = value("Value", "1m"), value("Iinit", "0")
        if element.value <= 0:
            raise SpecError(f"device '{element.device}' (Inductor): Value must be positive, got {element.value}")
    elif element.kind == "C":
        element.value, element.initial = value("Value", "1u"), value("Vinit", "0")
        if element.value <= 0:
            raise SpecError(f"device '{element.device}' (Capacitor): Value must be positive, got {element.value}")
    elif element.kind == "V":
        element.value = value("Voltage", "10")
    elif element.kind == "I":
        element.value = value("Current", "1")
    elif element.kind == "S":
        if library in ("Ideal MOSFET", "Controlled Switch"):
            element.gated, element.diode = True, 0
            element.value = value("Ron", "0") if "Ron" in params else 0.0
        elif library == "Ideal MOSFET with Diode":
            # The body diode conducts from Source to Drain: opposite to the element's p -> n.
            element.gated, element.diode = True, -1
            element.value, element.rd, element.vf = value("Ron", "0"), value("Rdon", "0"), value("Vdf", "0")
        else:
            element.gated, element.diode = False, 1
            element.rd, element.vf = value("Rd", "0"), value("Vf", "0")
        if element.value < 0 or element.rd < 0:
            raise SpecError(f"device '{element.device}' ({library}): on-resistance must not be negative")


def circuit_of(model: Model):
    """The :class:`~.circuit.Circuit` of the model's current element values."""
    return build_circuit(model.elements, model.n_nets, model.ground)

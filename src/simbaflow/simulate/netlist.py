"""Nets of a ``.jsimba`` circuit, from wire geometry and connector labels.

A ``.jsimba`` file has no pin references: a wire (``Connectors[].Segments[]``)
joins the pins that lie on it. Pin positions come from each device's ``Left``,
``Top``, ``Angle``, ``HF``, ``VF`` and the pin-geometry table generated from
aesim.simba (:mod:`simbaflow.simulate.pin_geometry_gen`). The rules, as SIMBA's own files
use them:

- the segments of one connector form one net;
- a pin is on a net when an end of one of its segments lies on the pin (a wire
  merely crossing a pin does not connect it; SIMBA's files split wires at pins);
- two connectors join when an end of one lies on the other (a T-junction; the
  reference project splits its segments there, so ends coincide);
- pins of different devices at the same point touch directly (design 3 of the
  reference drives a MOSFET gate from a Not output placed on it);
- connector labels of the same name join their nets: electrical labels with
  electrical labels, control labels (input and output) with control labels.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from simbaflow.core.errors import SpecError

TABLE_PATH = Path(__file__).resolve().parent / "data" / "pin_geometry.json"

ELECTRICAL_LABEL = "Electrical Connector Label"
CONTROL_LABELS = ("Control Input Connector Label", "Control Output Connector Label")
LABELS = (ELECTRICAL_LABEL, *CONTROL_LABELS)


@dataclass(frozen=True)
class Pin:
    """One device pin placed on the schematic grid."""

    device: int  # index of the device in Circuit.Devices
    name: str
    x: int
    y: int


@dataclass
class Netlist:
    """Which net every pin is on.

    Attributes
    ----------
    devices : list of dict
        The circuit's enabled devices, as in the file.
    pins : dict
        ``{(device index, pin name): net number}``.
    n_nets : int
        Number of nets; nets are numbered from 0.
    """

    devices: list[dict]
    pins: dict[tuple[int, str], int]
    n_nets: int

    def net(self, device: int, pin: str) -> int:
        """Net of ``pin`` of device number ``device``."""
        return self.pins[(device, pin)]

    def members(self, net: int) -> list[tuple[int, str]]:
        """The pins on ``net``."""
        return [key for key, value in self.pins.items() if value == net]


@functools.lru_cache(maxsize=1)
def pin_table() -> dict:
    """The committed pin-geometry table (see :mod:`simbaflow.simulate.pin_geometry_gen`)."""
    return json.loads(TABLE_PATH.read_text())["devices"]


def _geometry(device: dict) -> dict:
    library = device.get("LibraryName", "")
    entry = pin_table().get(library)
    if entry is None:
        raise SpecError(
            f"device '{device.get('Name', '')}': library item '{library}' has no pin geometry; "
            "regenerate it with 'python -m simbaflow.simulate.pin_geometry_gen'"
        )
    if "variants" not in entry:
        return entry
    parameters = device.get("Parameters") or {}
    key = f"{_count(device, parameters, 'NumberOfInputs')},{_count(device, parameters, 'NumberOfOutputs')}"
    if key not in entry["variants"]:
        raise SpecError(
            f"device '{device.get('Name', '')}' ({library}): NumberOfInputs/NumberOfOutputs {key} "
            f"is outside the pin-geometry table; supported: {', '.join(entry['variants'])}"
        )
    return entry["variants"][key]


def _count(device: dict, parameters: dict, key: str) -> int:
    entry = pin_table()[device["LibraryName"]]
    first = next(iter(entry["variants"]))
    present = {"NumberOfInputs": first.split(",")[0] != "0", "NumberOfOutputs": first.split(",")[1] != "0"}
    if not present[key]:
        return 0
    try:
        return int(str(parameters.get(key, "")).strip())
    except ValueError:
        raise SpecError(
            f"device '{device.get('Name', '')}': parameter '{key}' = {parameters.get(key)!r}; expected a whole number"
        ) from None


def pin_positions(device: dict) -> dict[str, tuple[int, int]]:
    """Grid position of every pin of ``device``.

    Flips act on the unrotated symbol (HF mirrors x, VF mirrors y), then the
    symbol turns clockwise by ``Angle`` degrees about its centre, as SIMBA draws
    it (checked against ``Pin.Position`` for every library item and orientation);
    odd-sized symbols turned by 90 or 270 degrees put pins on half-grid points that
    SIMBA rounds in a position-dependent way, so they are refused.

    Returns
    -------
    dict
        ``{pin name: (x, y)}``, x along ``Left``, y along ``Top``.
    """
    geometry = _geometry(device)
    width, height = geometry["width"], geometry["height"]
    angle = int(device.get("Angle", 0)) % 360
    if angle % 90:
        raise SpecError(f"device '{device.get('Name', '')}': Angle {angle} is not a multiple of 90 degrees")
    left, top = int(device.get("Left", 0)), int(device.get("Top", 0))
    if angle % 180 and (width % 2 or height % 2):
        raise SpecError(
            f"device '{device.get('Name', '')}' ({device.get('LibraryName')}): an odd-sized symbol turned by "
            f"{angle} degrees is not supported; turn it by 0 or 180 degrees in SIMBA"
        )
    positions = {}
    for pin in geometry["pins"]:
        # Work in doubled coordinates so a half-grid centre stays integral.
        x2, y2 = 2 * pin["x"], 2 * pin["y"]
        if device.get("HF"):
            x2 = 2 * width - x2
        if device.get("VF"):
            y2 = 2 * height - y2
        dx, dy = x2 - width, y2 - height
        for _ in range(angle // 90):
            dx, dy = -dy, dx
        positions[pin["name"]] = (left + (dx + width) // 2, top + (dy + height) // 2)
    return positions


def _on_segment(point: tuple[int, int], segment: tuple[int, int, int, int]) -> bool:
    x, y = point
    x0, y0, x1, y1 = segment
    if (x - x0) * (y1 - y0) != (y - y0) * (x1 - x0):
        return False
    return min(x0, x1) <= x <= max(x0, x1) and min(y0, y1) <= y <= max(y0, y1)


class _Union:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def build_netlist(circuit: dict) -> Netlist:
    """Join the pins of ``circuit``'s enabled devices into nets.

    Parameters
    ----------
    circuit : dict
        A design's ``Circuit`` (``Devices`` and ``Connectors``).

    Returns
    -------
    Netlist
        Every pin of every enabled device with its net; a pin touching no wire
        and no label is a net of its own.
    """
    devices = [d for d in circuit.get("Devices", []) if not d.get("Disabled")]
    segments: list[tuple[int, tuple[int, int, int, int]]] = []
    for index, connector in enumerate(circuit.get("Connectors") or []):
        for s in connector.get("Segments") or []:
            segments.append((index, (int(s["StartX"]), int(s["StartY"]), int(s["EndX"]), int(s["EndY"]))))
    n_connectors = len(circuit.get("Connectors") or [])
    pin_list: list[Pin] = []
    for index, device in enumerate(devices):
        for name, (x, y) in pin_positions(device).items():
            pin_list.append(Pin(index, name, x, y))

    # Nodes of the union: connectors first, then pins.
    union = _Union(n_connectors + len(pin_list))
    for ci, seg in segments:
        for end in (seg[:2], seg[2:]):
            for cj, other in segments:
                if cj != ci and _on_segment(end, other):
                    union.join(ci, cj)
    for k, pin in enumerate(pin_list):
        for ci, seg in segments:
            if (pin.x, pin.y) in (seg[:2], seg[2:]):
                union.join(n_connectors + k, ci)
    # Pins of different devices at the same grid point touch directly.
    by_point: dict[tuple[int, int], int] = {}
    for k, pin in enumerate(pin_list):
        first = by_point.setdefault((pin.x, pin.y), k)
        if first != k:
            union.join(n_connectors + k, n_connectors + first)
    labels: dict[tuple[str, str], int] = {}
    for k, pin in enumerate(pin_list):
        library = devices[pin.device].get("LibraryName")
        if library in LABELS:
            domain = "electrical" if library == ELECTRICAL_LABEL else "control"
            first = labels.setdefault((domain, devices[pin.device].get("Name", "")), k)
            union.join(n_connectors + k, n_connectors + first)

    roots: dict[int, int] = {}
    pins = {}
    for k, pin in enumerate(pin_list):
        root = union.find(n_connectors + k)
        pins[(pin.device, pin.name)] = roots.setdefault(root, len(roots))
    return Netlist(devices=devices, pins=pins, n_nets=len(roots))

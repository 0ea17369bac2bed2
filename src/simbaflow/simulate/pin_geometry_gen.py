"""Generate ``data/pin_geometry.json`` from aesim.simba's license-free API.

Run once after upgrading aesim.simba::

    python -m simbaflow.simulate.pin_geometry_gen

For every library item with pins the table records its unrotated width and
height and each pin's offset from the device's ``Left``/``Top`` corner at
``Angle`` 0 without flips; :mod:`simbaflow.simulate.netlist` applies flips and rotation.
Items whose pin count follows ``NumberOfInputs``/``NumberOfOutputs`` (Sum,
C Code, ...) get one entry per count. Only this generator needs .NET; the
simulator reads the committed JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Pin counts generated for items whose pins follow NumberOfInputs/NumberOfOutputs.
MAX_PORTS = 8

TABLE_PATH = Path(__file__).resolve().parent / "data" / "pin_geometry.json"


def _simba():
    os.environ.setdefault("SIMBA_OFFLINE_MODE", "1")
    import aesim.simba as simba

    return simba


def _metadata(simba) -> list[dict]:
    resources = Path(simba.__file__).resolve().parent / "Resources" / "device_metadata.json"
    return json.loads(resources.read_text(encoding="utf-8-sig"))


def _entry(device) -> dict:
    pins = [{"name": str(p.Name), "x": int(p.Position.X), "y": int(p.Position.Y)} for p in device.Pins]
    return {"width": int(device.UnrotatedWidth), "height": int(device.UnrotatedHeight), "pins": pins}


def generate() -> dict:
    """Build the table by placing each library item at the origin, unrotated.

    Returns
    -------
    dict
        ``{"generator": ..., "aesim_simba": version, "devices": {library name: entry}}``;
        an entry is ``{"width", "height", "pins": [{"name", "x", "y"}]}``  or, for
        items with variable pin counts, ``{"variants": {"<inputs>,<outputs>": entry}}``.
    """
    simba = _simba()
    devices: dict[str, dict] = {}
    for item in _metadata(simba):
        name = item["LibraryItemName"]
        if not item.get("Pins"):
            continue
        circuit = simba.Design().Circuit
        device = circuit.AddDevice(name, 0, 0, 0)
        if device is None:
            continue
        parameters = {p["PropertyName"] for p in item.get("Parameters", [])}
        has_inputs, has_outputs = "NumberOfInputs" in parameters, "NumberOfOutputs" in parameters
        if not (has_inputs or has_outputs):
            devices[name] = _entry(device)
            continue
        variants = {}
        for n_in in range(1, MAX_PORTS + 1) if has_inputs else [0]:
            for n_out in range(1, MAX_PORTS + 1) if has_outputs else [0]:
                try:
                    if has_inputs:
                        device.NumberOfInputs = n_in
                    if has_outputs:
                        device.NumberOfOutputs = n_out
                except Exception:  # some items refuse a count (e.g. a Sum of one input)
                    continue
                variants[f"{n_in},{n_out}"] = _entry(device)
        devices[name] = {"variants": variants}
    return {
        "generator": "python -m simbaflow.simulate.pin_geometry_gen",
        "aesim_simba": getattr(simba, "__version__", "unknown"),
        "devices": devices,
    }


def main() -> None:
    from simbaflow.core.atomic import write_text

    table = generate()
    write_text(TABLE_PATH, json.dumps(table, indent=1, sort_keys=True) + "\n")
    TABLE_PATH.chmod(0o644)
    print(f"wrote {TABLE_PATH} ({len(table['devices'])} library items)")


if __name__ == "__main__":
    main()

"""Read SIMBA ``.jsimba`` projects and apply a candidate's overrides to a design.

A project is kept as the plain dict SIMBA's JSON parses to; every function here
takes and returns plain data. Parameter values stay SIMBA strings ("6m", "16k",
" 1 / 600"); :mod:`simbaflow.simulate.simba_values` turns them into numbers.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any

from simbaflow.simulate.engines.base import TRANSIENT_KEYS, Overrides
from simbaflow.core.errors import SpecError

#: Library names of the devices that only join nets by name; they carry no parameters.
CONNECTOR_LABELS = ("Control Input Connector Label", "Control Output Connector Label")

#: Older SIMBA names some signals ``"<device> - Instantaneous <scope>"``.
LEGACY_SCOPE_PREFIX = "Instantaneous "


def load_project(path: str | os.PathLike) -> dict:
    """Parse a ``.jsimba`` project file.

    Parameters
    ----------
    path : path-like
        The project file; SIMBA may start it with a UTF-8 byte-order mark.

    Returns
    -------
    dict
        The parsed JSON, with a ``Designs`` list.

    Raises
    ------
    SpecError
        When the file is missing, is not JSON, or has no ``Designs`` list of designs.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such SIMBA project file (expected a .jsimba file)") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, expected a .jsimba project file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text at byte {exc.start}; expected a .jsimba JSON project") from None
    try:
        project = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg}); expected a .jsimba project"
        ) from None
    if not isinstance(project, dict) or not isinstance(project.get("Designs"), list):
        raise SpecError(f"{path}: top-level key 'Designs' (a list of designs) is missing; not a .jsimba project")
    for index, design in enumerate(project["Designs"]):
        if not isinstance(design, dict) or not isinstance(design.get("Name"), str):
            raise SpecError(f"{path}: Designs[{index}] has no 'Name'; expected a SIMBA design object")
        circuit = design.get("Circuit")
        if not isinstance(circuit, dict) or not isinstance(circuit.get("Devices"), list):
            raise SpecError(
                f"{path}: design '{design['Name']}' has no 'Circuit.Devices' list; expected a SIMBA circuit"
            )
    return project


def design_names(project: dict) -> list[str]:
    """Names of the project's designs, in file order."""
    return [design["Name"] for design in project["Designs"]]


def get_design(project: dict, name: str, path: str | os.PathLike | None = None) -> dict:
    """The design called ``name``.

    Parameters
    ----------
    project : dict
        As returned by :func:`load_project`.
    name : str
        Design name, exactly as in the file.
    path : path-like, optional
        The project file, named in the error message.

    Raises
    ------
    SpecError
        When no design has that name; the message lists the valid names.
    """
    for design in project["Designs"]:
        if design["Name"] == name:
            return design
    where = f"{path}: " if path is not None else ""
    raise SpecError(f"{where}no design named '{name}'; valid designs: {_listing(design_names(project))}")


def devices(design: dict) -> list[dict]:
    """Every device of the design's top circuit, in file order."""
    return design["Circuit"]["Devices"]


def addressable_devices(design: dict) -> list[dict]:
    """Named devices other than connector labels: the ones overrides and scopes refer to."""
    return [d for d in devices(design) if d.get("Name") and d.get("LibraryName") not in CONNECTOR_LABELS]


def device_by_name(design: dict, name: str) -> dict:
    """The device called ``name`` (connector labels sharing the name are skipped).

    Raises
    ------
    SpecError
        When no device, or more than one, has that name; the message names the
        design and lists the valid device names.
    """
    matches = [d for d in addressable_devices(design) if d["Name"] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SpecError(
            f"design '{design['Name']}': {len(matches)} devices are named '{name}'; "
            "rename them in SIMBA so each can be addressed"
        )
    raise SpecError(
        f"design '{design['Name']}': no device named '{name}'; valid devices: {_listing(device_names(design))}"
    )


def device_names(design: dict) -> list[str]:
    """Sorted unique names of the design's addressable devices."""
    return sorted({d["Name"] for d in addressable_devices(design)})


def device_parameters(device: dict) -> dict[str, str]:
    """A device's parameters as written, without ``Name`` (newer SIMBA repeats the name there)."""
    return {key: value for key, value in (device.get("Parameters") or {}).items() if key != "Name"}


def scoped_signals(design: dict) -> list[str]:
    """Result signal names of the design's enabled scopes, ``"<device name> - <scope name>"``."""
    return [f"{d.get('Name', '')} - {scope}" for d in devices(design) for scope in d.get("EnabledScopes") or []]


def canonical_signal_name(name: str) -> str:
    """``"<device> - <scope>"`` for a signal name, also accepting the legacy ``"<device> - Instantaneous <scope>"``."""
    device, sep, scope = name.partition(" - ")
    if sep and scope.startswith(LEGACY_SCOPE_PREFIX):
        return f"{device}{sep}{scope[len(LEGACY_SCOPE_PREFIX):]}"
    return name


def resolve_signals(design: dict, signals: list[str] | None) -> list[str]:
    """Canonical names of the requested signals (the design's scoped signals when None).

    Raises
    ------
    SpecError
        When a requested signal is not a scoped signal of the design.
    """
    scoped = scoped_signals(design)
    if not signals:
        if not scoped:
            raise SpecError(f"design '{design['Name']}' has no enabled scopes, so there is no signal to record")
        return scoped
    names = []
    for requested in signals:
        name = canonical_signal_name(requested)
        if name not in scoped:
            raise SpecError(
                f"design '{design['Name']}': no scoped signal '{requested}'; scoped signals: {', '.join(scoped) or '(none)'}"
            )
        names.append(name)
    return names


def transient_settings(design: dict) -> dict:
    """The design's transient-analysis settings as written in the file (empty when absent)."""
    return dict(design.get("TransientAnalysis") or {})


def format_value(value: Any) -> str:
    """A parameter value as the SIMBA string written into a project.

    Strings are kept exactly as given (SIMBA parses "6m", "16k", "1 / 600");
    integers are written in decimal and floats as Python's shortest exact
    ``repr`` (``0.1414``, ``1e-09``), so a value read back is the same double.

    Raises
    ------
    SpecError
        For booleans, non-finite numbers and anything that is not a number or string.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise SpecError(f"parameter value {value!r} is a boolean; expected a number or a SIMBA value string")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise SpecError(f"parameter value {number!r} is not finite; expected a finite number")
        return repr(number)
    raise SpecError(f"parameter value {value!r} is a {type(value).__name__}; expected a number or a SIMBA value string")


def apply_overrides(design: dict, overrides: Overrides) -> dict:
    """A deep copy of ``design`` with the candidate's parameters and transient settings set.

    Parameters
    ----------
    design : dict
        A design of a loaded project; it is not modified.
    overrides : Overrides
        ``parameters`` as ``{device: {parameter: value}}`` and ``transient``
        settings among :data:`~simbaflow.simulate.engines.base.TRANSIENT_KEYS`.

    Returns
    -------
    dict
        The changed copy; values are written with :func:`format_value`,
        ``FixedTimeStep`` as a JSON boolean.

    Raises
    ------
    SpecError
        For an unknown device, parameter or transient key (the message names the
        design and lists the valid names) and for values of the wrong kind.
    """
    changed = copy.deepcopy(design)
    name = design["Name"]
    for device_name, parameters in overrides.parameters.items():
        device = device_by_name(changed, device_name)
        if not isinstance(parameters, dict):
            raise SpecError(
                f"design '{name}': overrides for device '{device_name}' must map parameter names to values, "
                f"got {type(parameters).__name__}"
            )
        valid = device_parameters(device)
        for parameter, value in parameters.items():
            if parameter not in valid:
                raise SpecError(
                    f"design '{name}': device '{device_name}' ({device.get('LibraryName')}) has no parameter "
                    f"'{parameter}'; valid parameters: {_listing(list(valid))}"
                )
            try:
                device["Parameters"][parameter] = format_value(value)
            except SpecError as exc:
                raise SpecError(f"design '{name}': {device_name}.{parameter}: {exc}") from None
    transient = changed.setdefault("TransientAnalysis", {})
    for key, value in overrides.transient.items():
        if key not in TRANSIENT_KEYS:
            raise SpecError(
                f"design '{name}': '{key}' is not a transient setting that can be overridden; "
                f"valid settings: {_listing(list(TRANSIENT_KEYS))}"
            )
        transient[key] = _transient_value(name, key, value)
    return changed


def _transient_value(design_name: str, key: str, value: Any) -> Any:
    if key == "FixedTimeStep":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise SpecError(f"design '{design_name}': FixedTimeStep = {value!r}; expected true or false")
    try:
        return format_value(value)
    except SpecError as exc:
        raise SpecError(f"design '{design_name}': {key}: {exc}") from None


def parse_assignment(text: str) -> tuple[str, str, str]:
    """Split a command-line ``DEVICE.PARAM=VALUE`` into its three parts.

    Device names may contain dots, so the split is on the last dot before ``=``.

    Raises
    ------
    SpecError
        When the text is not of that form.
    """
    target, sep, value = text.partition("=")
    device, dot, parameter = target.rpartition(".")
    if not sep or not dot or not device.strip() or not parameter.strip() or not value.strip():
        raise SpecError(f"--set '{text}': expected DEVICE.PARAM=VALUE, e.g. PI.Kp=0.2")
    return device.strip(), parameter.strip(), value.strip()


def overrides_from_assignments(assignments: list[str]) -> Overrides:
    """Build :class:`Overrides` from ``DEVICE.PARAM=VALUE`` texts (values kept as SIMBA strings)."""
    overrides = Overrides()
    for text in assignments:
        device, parameter, value = parse_assignment(text)
        overrides.parameters.setdefault(device, {})[parameter] = value
    return overrides


def describe_design(design: dict) -> dict:
    """Plain summary of a design for display: devices, scoped signals, transient settings."""
    return {
        "name": design["Name"],
        "devices": [
            {
                "library": d.get("LibraryName", ""),
                "name": d.get("Name", ""),
                "parameters": device_parameters(d),
                "scopes": list(d.get("EnabledScopes") or []),
            }
            for d in devices(design)
        ],
        "scoped_signals": scoped_signals(design),
        "transient": transient_settings(design),
    }


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "(none)"

"""Study specs: YAML files validated by ``schemas/study.schema.json``, with defaults."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from simbaflow.core.errors import SpecError


def _schema() -> dict:
    return json.loads(resources.files("simbaflow").joinpath("schemas/study.schema.json").read_text())


def _with_defaults(validator_cls):
    """A validator class that fills ``default`` values into objects as it validates."""
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def key_path(path) -> str:
    """``sweep.xi[2]`` from a jsonschema error path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


#: Largest magnitude a spec number may have: beyond it no value here is physical, and
#: products of such numbers overflow to infinity.
MAX_MAGNITUDE = 1e15
#: Largest spec file read, and largest YAML document once its aliases are expanded (nodes).
MAX_SPEC_BYTES = 1_000_000
MAX_SPEC_NODES = 100_000
#: Longest quoted value in an error message.
MAX_QUOTED = 80


def short(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_QUOTED` characters so one error stays one readable line."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 5] + " ...)"


def _non_finite(data: Any, path: list) -> tuple[list, Any] | None:
    """The first number in ``data`` that is NaN, infinite or beyond :data:`MAX_MAGNITUDE`."""
    if isinstance(data, bool):
        return None
    if isinstance(data, (int, float)):
        if not math.isfinite(data) or abs(data) > MAX_MAGNITUDE:
            return path, data
        return None
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, [*path, key])
        if found:
            return found
    return None


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(map(repr, extra))}; expected one of {', '.join(allowed)}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required but missing")
    if error.validator == "enum":
        return f"{short(error.instance)} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "minItems" and error.validator_value == 1:
        return "must list at least one value (empty sweep)"
    if error.validator in ("exclusiveMinimum", "minimum", "maximum"):
        op = {"exclusiveMinimum": ">", "minimum": "≥", "maximum": "≤"}[error.validator]
        return f"{short(error.instance)} must be {op} {error.validator_value}"
    if error.validator == "type":
        return f"{short(error.instance)} is not of type {error.validator_value}"
    if error.validator == "pattern":
        return f"{short(error.instance)} does not match {error.validator_value}"
    message = error.message
    return message if len(message) <= 2 * MAX_QUOTED else message[: 2 * MAX_QUOTED] + " ..."


def validate_spec(data: Any, source: str = "<spec>") -> dict:
    """Validate a parsed spec and return a copy with defaults filled in.

    Raises
    ------
    SpecError
        One sentence naming ``source``, the key path and what was expected.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of study keys at the top level, got {type(data).__name__}")
    found = _non_finite(data, [])
    if found:
        path, value = found
        raise SpecError(f"{source}: {key_path(path)}: {value!r} is not a finite number of magnitude at most "
                        f"{MAX_MAGNITUDE:g}")
    spec = copy.deepcopy(data)
    errors = sorted(_Validator(_schema()).iter_errors(spec), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        # A oneOf failure hides the real reason in its context: report the closest one.
        if err.context:
            err = min(err.context, key=lambda e: len(e.path))
            path = list(errors[0].path) + list(err.path)
        else:
            path = list(err.path)
        raise SpecError(f"{source}: {key_path(path)}: {_describe(err)}")
    _check_semantics(spec, source)
    return spec


def _check_semantics(spec: dict, source: str) -> None:
    """Rules a JSON schema cannot say clearly."""
    # The schema's pattern ends in $, which Python's re (what jsonschema runs) also
    # matches before a final newline: the whole name must match.
    pattern = _schema()["properties"]["study"]["pattern"]
    if not re.fullmatch(pattern, spec["study"]):
        raise SpecError(f"{source}: study: {spec['study']!r} does not match {pattern}")
    sweep = spec.get("sweep")
    if sweep is not None:
        if "plant" not in spec:
            raise SpecError(f"{source}: plant: is required when a sweep is given")
        has_xi = "xi" in sweep or "wn_rad_s" in sweep
        has_gains = "kp" in sweep or "ki" in sweep
        if has_xi and has_gains:
            raise SpecError(f"{source}: sweep: give either xi and wn_rad_s, or kp and ki, not both")
        if has_xi and not ("xi" in sweep and "wn_rad_s" in sweep):
            missing = "wn_rad_s" if "xi" in sweep else "xi"
            raise SpecError(f"{source}: sweep.{missing}: is required with pole placement (xi and wn_rad_s)")
        if has_gains and not ("kp" in sweep and "ki" in sweep):
            missing = "ki" if "kp" in sweep else "kp"
            raise SpecError(f"{source}: sweep.{missing}: is required with an explicit gain grid (kp and ki)")
        if not has_xi and not has_gains:
            raise SpecError(f"{source}: sweep: expected xi and wn_rad_s (pole placement) or kp and ki (gain grid)")
    elif "statespace" not in spec and "ac" not in spec:
        raise SpecError(
            f"{source}: expected a sweep (controller study), a statespace (plant discretisation) "
            "or an ac (AC client/server) section"
        )
    ac = spec.get("ac")
    if ac is not None:
        plant = ac["plant"]
        if plant.get("c_electrolytic_f", 0.0) >= plant["c_leg_f"]:
            raise SpecError(f"{source}: ac.plant.c_electrolytic_f: expected less than c_leg_f (it is part of it), "
                            f"found {plant['c_electrolytic_f']} >= {plant['c_leg_f']}")
        if ac.get("pwm_update_delay_s", 0.0) >= ac["ts_s"]:
            raise SpecError(f"{source}: ac.pwm_update_delay_s: expected less than ts_s, found {ac['pwm_update_delay_s']}")
    fp = spec["fixed_point"]
    if fp["frac_bits"] >= fp["word_bits"]:
        raise SpecError(
            f"{source}: fixed_point.frac_bits: {fp['frac_bits']} must be < word_bits ({fp['word_bits']})"
        )
    ctrl = spec["controller"]
    if ctrl["output_min"] >= ctrl["output_max"]:
        raise SpecError(f"{source}: controller.output_min: must be < output_max")


def expanded_nodes(node: yaml.Node | None) -> int:
    """How many nodes ``node`` holds once every alias is expanded (counted without expanding them)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = 1  # a node reached again while it is being counted: a recursive alias
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        sizes[id(n)] = total
        return total

    return 0 if node is None else size(node)


def load_spec(path: str | Path) -> dict:
    """Read, validate and default a study spec file.

    Returns
    -------
    dict
        The spec, with ``_path`` (as given) and ``_sha256`` (of the file bytes) added.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such study spec file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the study spec ({exc.strerror})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: {len(raw)} bytes; a study spec is at most {MAX_SPEC_BYTES} bytes")
    try:
        nodes = expanded_nodes(yaml.compose(raw, Loader=yaml.SafeLoader))
        if nodes > MAX_SPEC_NODES:
            raise SpecError(f"{path}: {nodes} YAML nodes once its aliases are expanded; a study spec has at "
                            f"most {MAX_SPEC_NODES} (is an alias repeated inside itself?)")
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    spec = validate_spec(data, str(path))
    spec["_path"] = str(path)
    spec["_sha256"] = hashlib.sha256(raw).hexdigest()
    return spec


def spec_sha256(path: str | Path) -> str:
    """SHA-256 of a spec file's bytes (what a selection records)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find_spec(spec_or_study: str | Path, design_dir: str | Path = "design") -> Path:
    """A spec file from its path or its study name.

    A name is looked up as ``<design_dir>/<name>.yaml``, else as the spec in
    ``design_dir`` whose ``study`` key is that name.

    Raises
    ------
    SpecError
        When neither exists.
    """
    path = Path(spec_or_study)
    if path.is_file():
        return path
    design_dir = Path(design_dir)
    named = design_dir / f"{spec_or_study}.yaml"
    if named.is_file():
        return named
    for candidate in sorted(design_dir.glob("*.yaml")):
        try:
            data = yaml.safe_load(candidate.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("study") == str(spec_or_study):
            return candidate
    raise SpecError(f"{spec_or_study}: expected a study spec file or a study name with a spec in {design_dir}/")

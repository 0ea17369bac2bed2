"""Turn SIMBA parameter strings into numbers.

SIMBA stores every parameter as text: plain numbers ("30", "1E-09"), numbers
with an SI suffix ("6m", "16k", "5.01m"), arithmetic ("1 / 600",
"230 * sqrt(2)"), design variables of the circuit ("Udc / 2"), vectors
("[1 -1]"), matrices ("[0 450; 5m 450]") and the word "none" (no sampling
time). Expressions are evaluated by walking Python's syntax tree, never by
``eval``, so a project file cannot run code.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any, Mapping

import numpy as np

from simbaflow.core.errors import SpecError

#: SI suffixes SIMBA accepts after a number; case matters ("m" milli, "M" mega).
SI_SUFFIXES = {
    "f": 1e-15,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "meg": 1e6,
    "Meg": 1e6,
    "MEG": 1e6,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}

#: Names an expression may use besides the design variables.
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "Inf": math.inf}

#: Functions an expression may call.
FUNCTIONS = {
    "sqrt": math.sqrt,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "abs": abs,
    "atan": math.atan,
    "atan2": math.atan2,
    "min": min,
    "max": max,
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}

# A number literal, optionally followed by an SI suffix, not glued to a name
# before it ("k1" stays a name) nor after it ("5mohm" is refused below).
_NUMBER = re.compile(
    r"(?<![A-Za-z_0-9.])((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(meg|Meg|MEG|[fpnuµmkKMGT])?(?![A-Za-z_0-9µ])"
)


def is_none(text: Any) -> bool:
    """True when ``text`` is SIMBA's "none" (no value, e.g. continuous sampling)."""
    return isinstance(text, str) and text.strip().lower() in ("none", "")


def parse_value(
    text: Any,
    variables: Mapping[str, float] | None = None,
    *,
    device: str = "",
    parameter: str = "",
) -> float:
    """A scalar parameter as a float.

    Parameters
    ----------
    text : str or number
        The parameter as stored in the project ("6m", " 1 / 600", "Udc / 2").
    variables : mapping, optional
        Design variables by name (see :func:`design_variables`).
    device, parameter : str
        Named in the error message.

    Raises
    ------
    SpecError
        When the text is not a number or an expression of known names.
    """
    if isinstance(text, bool):
        raise _error(device, parameter, text, "a number, not a boolean")
    if isinstance(text, (int, float)):
        value = float(text)
    elif not isinstance(text, str) or not text.strip():
        raise _error(device, parameter, text, "a number or an expression such as '6m' or '1 / 600'")
    else:
        source = _expand_suffixes(text.strip())
        try:
            tree = ast.parse(source, mode="eval")
            value = float(_evaluate(tree.body, dict(variables or {})))
        except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, KeyError) as exc:
            reason = f"unknown name '{exc.args[0]}'" if isinstance(exc, KeyError) else None
            raise _error(
                device, parameter, text, "a number or an expression such as '6m' or '1 / 600'", reason
            ) from None
    # SIMBA writes an absent limit as "inf"; any other non-finite value (1e999, 0 * inf) is a mistake.
    said_inf = isinstance(text, str) and re.search(r"\binf\b", text, re.IGNORECASE) is not None
    if math.isnan(value) or (math.isinf(value) and not said_inf):
        raise _error(device, parameter, text, "a finite number (or inf for no limit)", f"it evaluates to {value}")
    return value


def parse_optional(
    text: Any,
    variables: Mapping[str, float] | None = None,
    *,
    device: str = "",
    parameter: str = "",
) -> float | None:
    """Like :func:`parse_value`, but "none" gives ``None``."""
    return None if is_none(text) else parse_value(text, variables, device=device, parameter=parameter)


def parse_matrix(
    text: Any,
    variables: Mapping[str, float] | None = None,
    *,
    device: str = "",
    parameter: str = "",
) -> np.ndarray:
    """A bracketed matrix ("[0 450; 5m 450]") as a 2-D float array.

    Rows are separated by ";", elements by spaces or commas (so "[1 -1]" has two
    elements, as in SIMBA and MATLAB). A bare scalar gives a 1x1 matrix.

    Raises
    ------
    SpecError
        When an element is not a number or the rows differ in length.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return np.array([[float(text)]])
    if not isinstance(text, str):
        raise _error(device, parameter, text, "a matrix such as '[1 2; 3 4]'")
    body = text.strip()
    if body.startswith("[") != body.endswith("]"):
        raise _error(device, parameter, text, "a matrix such as '[1 2; 3 4]'", "unbalanced brackets")
    if body.startswith("["):
        body = body[1:-1]
    rows = []
    for row_text in body.split(";"):
        elements = [e for e in re.split(r"[\s,]+", row_text.strip()) if e]
        if not elements:
            continue
        rows.append([parse_value(e, variables, device=device, parameter=parameter) for e in elements])
    if not rows or len({len(r) for r in rows}) != 1:
        raise _error(device, parameter, text, "a matrix such as '[1 2; 3 4]'", "rows of unequal length or no elements")
    return np.array(rows, dtype=float)


def parse_vector(
    text: Any,
    variables: Mapping[str, float] | None = None,
    *,
    device: str = "",
    parameter: str = "",
) -> np.ndarray:
    """A bracketed vector ("[1 -1]") as a 1-D float array (a scalar gives one element)."""
    matrix = parse_matrix(text, variables, device=device, parameter=parameter)
    if min(matrix.shape) != 1:
        raise _error(device, parameter, text, "a vector such as '[1 -1]'", f"got a {matrix.shape[0]}x{matrix.shape[1]} matrix")
    return matrix.ravel()


def design_variables(circuit: Mapping[str, Any]) -> dict[str, float]:
    """The circuit's design variables (``Circuit.Variables``) as numbers.

    Each variable may use the ones defined before it ("vnorm" = "1/(Vo/2)").

    Raises
    ------
    SpecError
        When a variable has no name or its value does not evaluate.
    """
    values: dict[str, float] = {}
    for index, entry in enumerate(circuit.get("Variables") or []):
        name = entry.get("Name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"Circuit.Variables[{index}]: name {name!r} is not a valid variable name")
        values[name] = parse_value(entry.get("Value"), values, device="design variable", parameter=name)
    return values


def _expand_suffixes(text: str) -> str:
    def replace(match: re.Match) -> str:
        number, suffix = match.group(1), match.group(2)
        if not suffix:
            return number
        return repr(float(number) * SI_SUFFIXES[suffix])

    return _NUMBER.sub(replace, text)


def _evaluate(node: ast.AST, variables: dict[str, float]) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left, variables), _evaluate(node.right, variables))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        # "^" is power in SIMBA expressions, as in MATLAB.
        return _evaluate(node.left, variables) ** _evaluate(node.right, variables)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, variables))
    if isinstance(node, ast.Name):
        if node.id in variables:
            return variables[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise KeyError(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords:
        return float(FUNCTIONS[node.func.id](*(_evaluate(a, variables) for a in node.args)))
    raise ValueError("unsupported syntax")


def _error(device: str, parameter: str, text: Any, expected: str, reason: str | None = None) -> SpecError:
    where = f"device '{device}' parameter '{parameter}'" if device or parameter else "parameter"
    detail = f" ({reason})" if reason else ""
    return SpecError(f"{where}: value {text!r} is not understood{detail}; expected {expected}")

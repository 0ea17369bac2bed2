"""The generated firmware header: render it from a selection, read it back, diff two.

``firmware/include/controller_gains.h`` holds everything the board needs from
a study (gains, recurrence coefficients in float and in fixed point, sample
time, output bounds) and a provenance block. Every value comes from the
selection file, the date included, so promoting the same selection twice
yields the same bytes.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from simbaflow.promote.pi_model import pi_fixed_params
from simbaflow.core.fixedpoint import QFormat

#: Where promote writes the header, relative to the firmware directory.
HEADER_PATH = "include/controller_gains.h"

#: Candidate metrics the header records (those the selection has).
METRIC_KEYS = ("overshoot_pct", "rise_time_s", "settling_time_s", "phase_margin_deg", "gain_margin_db")

#: Realisation names and the integer the header gives each (the firmware tests them with #if).
REALISATION_IDS = {"pi_recurrence": 1, "control_library_pid": 2}

_DEFINE = re.compile(r"^#define\s+(CONTROLLER_GAINS_\w+)\s+(.+?)\s*$")
_COMMENT_FIELD = re.compile(r"^ \* ([a-z0-9_]+):\s+(.*?)\s*$")


def c_float_literal(value: float, what: str) -> str:
    """The C ``float`` literal that parses to exactly ``float32(value)``.

    Nine significant digits identify every float32, so the compiler's value is
    the one :mod:`simbaflow.promote.pi_model` computes with.
    """
    v = float(np.float32(value))
    if not math.isfinite(v):
        raise ValueError(f"{what} = {value} has no finite float32 value")
    text = f"{v:.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    # Negative values in parentheses so the macro is safe inside any expression.
    return f"({text}f)" if v < 0 else text + "f"


def header_fields(selection: dict[str, Any]) -> dict[str, str]:
    """Everything the header states, as ``name -> text``, in header order.

    Provenance and metric keys are lower case (comment lines); ``CONTROLLER_GAINS_*``
    keys are the ``#define`` values.

    Raises
    ------
    simbaflow.core.fixedpoint.FixedPointOverflow
        When a coefficient or bound does not fit the selection's Q format.
    """
    cand = selection["candidate"]
    prov = selection.get("provenance", {})
    fp = selection["fixed_point"]
    fmt = QFormat(int(fp["word_bits"]), int(fp["frac_bits"]))
    ctrl = selection["controller"]
    out_min, out_max = float(ctrl["output_min"]), float(ctrl["output_max"])
    a0, a1 = float(cand["a0"]), float(cand["a1"])
    kp, ki, ts_s = float(cand["kp"]), float(cand["ki"]), float(cand["ts_s"])
    q = pi_fixed_params(a0, a1, out_min, out_max, fmt)

    fields: dict[str, str] = {
        "study": str(selection["study"]),
        "candidate": str(selection["candidate_id"]),
        "spec": str(selection["spec_path"]),
        "spec_sha256": str(selection["spec_sha256"]),
        "engine": str(selection.get("engine", "unknown")),
        "simbaflow_version": str(prov.get("simbaflow_version", "unknown")),
        "git_commit": str(prov.get("git_commit", "unknown")),
        "date": str(prov.get("created_utc", "unknown")),
        "realisation": str(cand["realisation"]),
        "method": str(cand["method"]),
        "delay_samples": str(int(cand.get("delay_samples", 0))),
    }
    for key in METRIC_KEYS:
        if cand.get(key) is not None:
            fields[key] = f"{float(cand[key]):.6g}"
    if selection.get("corners"):
        # The plant corners the promoted gains were checked on (plant_variations).
        fields["corners"] = "; ".join(str(c["label"]) for c in selection["corners"])

    fields.update({f"CONTROLLER_GAINS_REALISATION_{name.upper()}": str(i) for name, i in REALISATION_IDS.items()})
    fields.update({
        "CONTROLLER_GAINS_REALISATION": f"CONTROLLER_GAINS_REALISATION_{cand['realisation'].upper()}",
        "CONTROLLER_GAINS_KP": c_float_literal(kp, "kp"),
        "CONTROLLER_GAINS_KI": c_float_literal(ki, "ki"),
        "CONTROLLER_GAINS_TS_S": c_float_literal(ts_s, "ts_s"),
        "CONTROLLER_GAINS_TS_NS": str(round(ts_s * 1e9)),
        "CONTROLLER_GAINS_A0": c_float_literal(a0, "a0"),
        "CONTROLLER_GAINS_A1": c_float_literal(a1, "a1"),
        "CONTROLLER_GAINS_OUT_MIN": c_float_literal(out_min, "output_min"),
        "CONTROLLER_GAINS_OUT_MAX": c_float_literal(out_max, "output_max"),
        "CONTROLLER_GAINS_Q_FORMAT": f'"{fmt.name}"',
        "CONTROLLER_GAINS_FRAC_BITS": str(fmt.frac_bits),
        "CONTROLLER_GAINS_A0_Q": _c_int32(q.a0),
        "CONTROLLER_GAINS_A1_Q": _c_int32(q.a1),
        "CONTROLLER_GAINS_OUT_MIN_Q": _c_int32(q.out_min),
        "CONTROLLER_GAINS_OUT_MAX_Q": _c_int32(q.out_max),
    })
    if ki != 0 and kp != 0:
        # control_library's PidParams: Ti = Kp / Ki, no derivative.
        fields["CONTROLLER_GAINS_PID_TI_S"] = c_float_literal(kp / ki, "kp/ki")
    return fields


def _c_int32(q: int) -> str:
    # INT32_MIN has no literal of type int32_t: write it as an expression.
    if q == -(1 << 31):
        return f"({q + 1} - 1)"
    return f"({q})" if q < 0 else str(q)


_DEFINE_COMMENTS = {
    "CONTROLLER_GAINS_REALISATION_PI_RECURRENCE": "realisations: pi_controller's recurrence, OwnTech control_library's Pid",
    "CONTROLLER_GAINS_REALISATION": "the realisation the study selected",
    "CONTROLLER_GAINS_KP": "continuous PI: C(s) = Kp + Ki/s",
    "CONTROLLER_GAINS_TS_S": "sample time, s",
    "CONTROLLER_GAINS_TS_NS": "sample time, ns (exact integer for scheduling checks)",
    "CONTROLLER_GAINS_A0": "alpha(k) = alpha(k-1) + a1*e(k) + a0*e(k-1)",
    "CONTROLLER_GAINS_OUT_MIN": "bounds of alpha (controller.output_min/max); the duty alpha + Vs/E is limited to 0..1",
    "CONTROLLER_GAINS_Q_FORMAT": "fixed-point variant: int32 values with FRAC_BITS fractional bits",
    "CONTROLLER_GAINS_PID_TI_S": "OwnTech PidParams Ti = Kp/Ki, s (Td = 0, N = 0)",
}


def render_gains_header(fields: dict[str, str]) -> str:
    """Text of ``controller_gains.h`` for :func:`header_fields` output."""
    lines = [
        "/*",
        " * controller_gains.h: GENERATED by `simbaflow promote` -- do not edit.",
        f" * Regenerate with: simbaflow promote results/{fields['study']}/selection.json",
        " *",
    ]
    width = max(len(k) for k in fields if not k.startswith("CONTROLLER_GAINS_"))
    for key, value in fields.items():
        if not key.startswith("CONTROLLER_GAINS_"):
            lines.append(f" * {key}:{' ' * (width - len(key) + 1)}{value}")
    lines += [" */", "#ifndef CONTROLLER_GAINS_H", "#define CONTROLLER_GAINS_H", ""]
    for key, value in fields.items():
        if key.startswith("CONTROLLER_GAINS_"):
            if key in _DEFINE_COMMENTS:
                lines.append(f"/* {_DEFINE_COMMENTS[key]} */")
            lines.append(f"#define {key} {value}")
    lines += ["", "#endif /* CONTROLLER_GAINS_H */", ""]
    return "\n".join(lines)


def read_gains_header(text: str) -> dict[str, str]:
    """The fields of a header written by :func:`render_gains_header` (for diffs)."""
    fields: dict[str, str] = {}
    in_comment = False
    for line in text.splitlines():
        if line.startswith("/*") and not fields:
            in_comment = True
            continue
        if in_comment:
            if line.startswith(" */"):
                in_comment = False
                continue
            m = _COMMENT_FIELD.match(line)
            if m:
                fields[m.group(1)] = m.group(2)
            continue
        m = _DEFINE.match(line)
        if m and m.group(1) != "CONTROLLER_GAINS_H":
            fields[m.group(1)] = m.group(2)
    return fields


def diff_fields(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Human lines ``name: old -> new`` for every field that differs.

    ``old`` is None when no header was promoted before.
    """
    if old is None:
        return [f"{key}: (none) -> {value}" for key, value in new.items()]
    lines = []
    for key in list(new) + [k for k in old if k not in new]:
        before, after = old.get(key, "(none)"), new.get(key, "(none)")
        if before != after:
            lines.append(f"{key}: {before} -> {after}")
    return lines

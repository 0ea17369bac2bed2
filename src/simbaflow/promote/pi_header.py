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

#: Study names and candidate ids as the spec schema and the sweeps make them; anything
#: else in a generated header is refused, never escaped into something else.
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
CANDIDATE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}")

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


def comment_text(value: Any, what: str, pattern: re.Pattern | None = None) -> str:
    """``value`` as text that stays inside one line of a C (or ``//``, ``--``) comment.

    Printable ASCII only: no newline (which would end a ``//`` comment or start a
    new header line), no ``*/`` or ``/*``, no backslash (line splicing).

    Raises
    ------
    ValueError
        Naming ``what`` and the offending text; ``pattern`` (full match) narrows it further.
    """
    text = str(value)
    if pattern is not None and not pattern.fullmatch(text):
        raise ValueError(f"{what}: {text!r} does not match {pattern.pattern}")
    if not all(" " <= c <= "~" for c in text) or "*/" in text or "/*" in text or "\\" in text:
        raise ValueError(f"{what}: {text!r} cannot go into a C comment (printable ASCII without */, /* or \\ expected)")
    return text


def header_fields(selection: dict[str, Any]) -> dict[str, str]:
    """Everything the header states, as ``name -> text``, in header order.

    Provenance and metric keys are lower case (comment lines); ``CONTROLLER_GAINS_*``
    keys are the ``#define`` values.

    Raises
    ------
    simbaflow.core.fixedpoint.FixedPointOverflow
        When a coefficient or bound does not fit the selection's Q format.
    ValueError
        When a text field cannot go into a C comment (:func:`comment_text`).
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
        "study": comment_text(selection["study"], "study", STUDY_NAME),
        "candidate": comment_text(selection["candidate_id"], "candidate_id", CANDIDATE_ID),
        "spec": comment_text(selection["spec_path"], "spec_path"),
        "spec_sha256": comment_text(selection["spec_sha256"], "spec_sha256"),
        "engine": comment_text(selection.get("engine", "unknown"), "engine"),
        "simbaflow_version": comment_text(prov.get("simbaflow_version", "unknown"), "provenance.simbaflow_version"),
        "git_commit": comment_text(prov.get("git_commit", "unknown"), "provenance.git_commit"),
        "date": comment_text(prov.get("created_utc", "unknown"), "provenance.created_utc"),
        "realisation": comment_text(cand["realisation"], "candidate.realisation"),
        "method": comment_text(cand["method"], "candidate.method"),
        "delay_samples": str(int(cand.get("delay_samples", 0))),
    }
    for key in METRIC_KEYS:
        if cand.get(key) is not None:
            fields[key] = f"{float(cand[key]):.6g}"
    if selection.get("corners"):
        # The plant corners the promoted gains were checked on (plant_variations).
        fields["corners"] = "; ".join(str(c["label"]) for c in selection["corners"])

    if cand["realisation"] not in REALISATION_IDS:
        raise ValueError(f"candidate.realisation: {cand['realisation']!r} is not one of {', '.join(REALISATION_IDS)}")
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
    """Text of ``controller_gains.h`` for :func:`header_fields` output.

    Raises
    ------
    ValueError
        When a comment field cannot go into a C comment, or a define is not one line.
    """
    for key, value in fields.items():
        if key.startswith("CONTROLLER_GAINS_"):
            if not re.fullmatch(r"[A-Z0-9_]+", key) or not all(" " <= c <= "~" for c in value):
                raise ValueError(f"#define {key!r}: {value!r} is not one line of C")
        else:
            comment_text(value, key, STUDY_NAME if key == "study" else CANDIDATE_ID if key == "candidate" else None)
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

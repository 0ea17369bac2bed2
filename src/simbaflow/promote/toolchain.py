"""The compilers every firmware check uses: host gcc and arm-none-eabi for the SPIN's Cortex-M4F.

One set of flags for the DC and AC checks, so both prove the same things:
warnings as errors, no fused multiply-add (the Python models round after every
operation), no double-precision helper on the MCU.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from simbaflow.core.errors import SimbaflowError

HOST_CC = "gcc"
ARM_CC = "arm-none-eabi-gcc"
ARM_CXX = "arm-none-eabi-g++"

#: Warnings as errors everywhere; -Wdouble-promotion and -Wfloat-conversion catch
#: a double sneaking into single-precision code (e.g. a literal without ``f``).
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion", "-pedantic"]
#: No fused multiply-add: the Python model rounds after every operation.
COMMON_CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off", *WARNINGS]
#: The SPIN board's MCU: STM32G474, Cortex-M4 with single-precision FPU.
ARM_CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-ffunction-sections"]

#: The C++ dialect and float flags of the OwnTech application (firmware/platformio.ini).
CXXFLAGS = ["-x", "c++", "-std=c++2a", "-fno-exceptions", "-fsingle-precision-constant", "-O2",
            "-ffp-contract=off", *[w for w in WARNINGS if w != "-pedantic"]]

#: libgcc/AEABI double-precision helpers (``__aeabi_dadd``, ``__aeabi_f2d``, ``__adddf3``...).
DOUBLE_HELPER = re.compile(r"^(__aeabi_(d[a-z0-9]*|[a-z0-9]*2d)|__\w*df\w*)$")

class FirmwareCheckError(SimbaflowError):
    """The controller code failed to build, to match its model, or uses doubles."""

    exit_code = 5


@dataclass
class CheckReport:
    """What the check found; ``lines`` is what the CLI prints."""

    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)


def run_tool(cmd: list[str], what: str) -> str:
    if shutil.which(cmd[0]) is None:
        raise FirmwareCheckError(
            f"{cmd[0]} is not installed; it is needed to {what} (run `make system-deps`)"
        )
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise FirmwareCheckError(f"{what} failed: {' | '.join(detail[:6])}")
    return proc.stdout


def object_facts(obj: Path) -> dict:
    """Size, undefined symbols and per-function instruction facts of an ARM object."""
    size_out = run_tool(["arm-none-eabi-size", str(obj)], f"arm-none-eabi-size of {obj.name}")
    text, data, bss = (int(v) for v in size_out.splitlines()[1].split()[:3])
    undefined = [line.split()[-1] for line in
                 run_tool(["arm-none-eabi-nm", "-u", str(obj)], f"arm-none-eabi-nm of {obj.name}").splitlines()
                 if line.strip()]
    functions: dict[str, dict] = {}
    current = None
    for line in run_tool(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(obj)],
                     f"arm-none-eabi-objdump of {obj.name}").splitlines():
        m = re.match(r"^[0-9a-f]+ <(\w+)>:$", line)
        if m:
            current = functions.setdefault(m.group(1), {"instructions": 0, "calls": [], "fpu": 0})
            continue
        if current is not None and re.match(r"^\s+[0-9a-f]+:\t", line):
            current["instructions"] += 1
            mnemonic = line.split("\t")[1].split()[0] if "\t" in line else ""
            if mnemonic.startswith("v"):
                current["fpu"] += 1
            if mnemonic in ("bl", "blx"):
                current["calls"].append(line.split("<")[-1].rstrip(">") if "<" in line else "?")
    return {"text": text, "data": data, "bss": bss, "undefined": undefined, "functions": functions}


def promoted_selection(project_dir: Path, fields: dict[str, str]) -> dict | None:
    """The study's selection.json if it still selects the header's candidate, else None."""
    path = project_dir / "results" / fields.get("study", "") / "selection.json"
    if not path.is_file():
        return None
    selection = json.loads(path.read_text())
    same = (selection.get("candidate_id") == fields.get("candidate")
            and selection.get("provenance", {}).get("created_utc") == fields.get("date"))
    return selection if same else None

"""Software in the loop: the firmware's controller source as one SIMBA C Code block.

SIMBA compiles a C Code block's ``Code`` text on its own, so the block gets the
portable controller module and its SIMBA adapter concatenated, byte for byte;
what SIMBA simulates is then exactly what the firmware compiles.
"""

from __future__ import annotations

import os
from pathlib import Path

from simbaflow.core.errors import SimbaflowError

#: The firmware tree of this checkout (this file is ``src/simbaflow/simulate/sil.py``).
FIRMWARE_DIR = Path(__file__).resolve().parents[3] / "firmware"

#: The files making up the PI C Code block, relative to the firmware directory, in order.
BLOCK_SOURCES = (
    "lib/pi_controller/pi_controller.h",
    "lib/pi_controller/pi_controller.c",
    "sil/simba_pi_block.c",
)

#: The files of the AC study's PR C Code block (``simba_projects/ac_client_server.jsimba``), in order.
PR_BLOCK_SOURCES = (
    "lib/pr_controller/pr_controller.h",
    "lib/pr_controller/pr_controller.c",
    "sil/simba_pr_block.c",
)


def block_code(firmware_dir: str | os.PathLike | None = None) -> str:
    """The PI C Code block's ``Code``: :data:`BLOCK_SOURCES` concatenated, byte for byte.

    Parameters
    ----------
    firmware_dir : path-like, optional
        The firmware tree; defaults to this checkout's ``firmware/``.
    """
    return sources_code(BLOCK_SOURCES, firmware_dir)


def pr_block_code(firmware_dir: str | os.PathLike | None = None) -> str:
    """The PR C Code block's ``Code``: :data:`PR_BLOCK_SOURCES` concatenated, byte for byte."""
    return sources_code(PR_BLOCK_SOURCES, firmware_dir)


def sources_code(sources: tuple[str, ...], firmware_dir: str | os.PathLike | None = None) -> str:
    """A C Code block's ``Code``: ``sources`` (relative to the firmware directory) concatenated as read.

    This is the only place a block's text is made: the ``.jsimba`` builders embed
    it and the firmware check compiles it.

    Raises
    ------
    SimbaflowError
        When a source file is missing or the concatenation is not UTF-8 text.
    """
    base = Path(firmware_dir) if firmware_dir is not None else FIRMWARE_DIR
    parts = []
    for relative in sources:
        path = base / relative
        try:
            parts.append(path.read_bytes())
        except FileNotFoundError:
            raise SimbaflowError(f"{path}: firmware controller source is missing; the C Code block needs it") from None
    try:
        return b"".join(parts).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SimbaflowError(f"firmware controller sources are not UTF-8 text (byte {exc.start} of the concatenation)") from None


"""Software in the loop: the firmware's controller source as one SIMBA C Code block.

SIMBA compiles a C Code block's ``Code`` text on its own, so the block gets the
portable controller module and its SIMBA adapter concatenated, byte for byte;
what SIMBA simulates is then exactly what the firmware compiles.
"""

from __future__ import annotations

import os
from pathlib import Path

from simbaflow.errors import SimbaflowError

#: Repository root (this file is ``src/simbaflow/sil.py``).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: The files making up the C Code block, relative to the repository root, in order.
BLOCK_SOURCES = (
    "firmware/lib/pi_controller/pi_controller.h",
    "firmware/lib/pi_controller/pi_controller.c",
    "firmware/sil/simba_pi_block.c",
)


def block_code(root: str | os.PathLike | None = None) -> str:
    """The PI C Code block's ``Code``: :data:`BLOCK_SOURCES` concatenated, byte for byte.

    Parameters
    ----------
    root : path-like, optional
        Repository root holding ``firmware/``; defaults to this checkout.
    """
    return sources_code(BLOCK_SOURCES, root)


#: The files of the AC study's PR C Code block (``simba_projects/ac_client_server.jsimba``), in order.
PR_BLOCK_SOURCES = (
    "firmware/lib/pr_controller/pr_controller.h",
    "firmware/lib/pr_controller/pr_controller.c",
    "firmware/sil/simba_pr_block.c",
)


def sources_code(sources: tuple[str, ...], root: str | os.PathLike | None = None) -> str:
    """A C Code block's ``Code``: ``sources`` (paths relative to the repository root) concatenated as read.

    Raises
    ------
    SimbaflowError
        When a source file is missing or the concatenation is not UTF-8 text.
    """
    base = Path(root) if root is not None else REPO_ROOT
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


def pr_block_code(root: str | os.PathLike | None = None) -> str:
    """The PR C Code block's ``Code``: :data:`PR_BLOCK_SOURCES` concatenated, byte for byte."""
    return sources_code(PR_BLOCK_SOURCES, root)

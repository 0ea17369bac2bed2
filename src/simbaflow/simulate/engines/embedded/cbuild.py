"""The system C compiler and the cache directory shared by C Code blocks and the kernel."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from simbaflow.core.errors import SimbaflowError


def cache_dir() -> Path:
    """Where compiled blocks are kept (``$SIMBAFLOW_CACHE`` or ``~/.cache/simbaflow``)."""
    root = os.environ.get("SIMBAFLOW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "simbaflow"
    )
    return Path(root) / "ccode"


def compiler() -> str:
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        raise SimbaflowError(
            "C Code blocks need a C compiler and none was found (install Debian's 'gcc' or set CC)"
        )
    return compiler


def publish(built: Path, target: Path) -> None:
    """Copy a freshly built library to ``target`` atomically, so concurrent runs never load half a file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(fd)
    shutil.copy(built, tmp)
    os.replace(tmp, target)

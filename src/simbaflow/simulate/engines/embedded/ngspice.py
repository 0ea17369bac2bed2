"""Run Debian's ``ngspice`` in batch mode: the independent simulator the
embedded engine is validated and benchmarked against."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from simbaflow.core.errors import SimbaflowError


def ngspice_available() -> bool:
    """True when an ``ngspice`` executable is on the PATH."""
    return shutil.which("ngspice") is not None


def run_ngspice(netlist: str, vectors: list[str], timeout_s: float = 300.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Simulate ``netlist`` (with its ``.tran`` line, without ``.control``/``.end``).

    Parameters
    ----------
    netlist : str
        SPICE netlist text.
    vectors : list of str
        ngspice expressions to save, e.g. ``["v(out)", "i(vprobe)"]``.

    Returns
    -------
    time_s : numpy.ndarray
    values : dict
        ``{vector: numpy.ndarray}``.

    Raises
    ------
    SimbaflowError
        When ngspice is missing or fails.
    """
    if not ngspice_available():
        raise SimbaflowError("ngspice is not installed (Debian package 'ngspice'; run 'make system-deps')")
    with tempfile.TemporaryDirectory(prefix="simbaflow-ngspice-") as work:
        data = Path(work) / "out.txt"
        deck = Path(work) / "deck.cir"
        control = f".control\nset wr_singlescale\nrun\nwrdata {data} {' '.join(vectors)}\n.endc\n.end\n"
        deck.write_text(netlist.rstrip() + "\n" + control)
        result = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=timeout_s)
        # ngspice 39 exits with 1 after a batch run with a .control block, so the
        # written data, not the exit status, tells success.
        if not data.exists() or data.stat().st_size == 0:
            raise SimbaflowError(f"ngspice failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
        table = np.loadtxt(data)
    return table[:, 0], {name: table[:, k + 1] for k, name in enumerate(vectors)}

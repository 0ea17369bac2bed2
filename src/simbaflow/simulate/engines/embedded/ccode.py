"""SIMBA C Code blocks: compile with the system C compiler, load, hand their functions to the kernel.

The block's ``Code`` is compiled once per distinct source (cache keyed by the
SHA-256 of code, header and compiler) into a shared library. Because a block
keeps its state in the code's globals, every block instance loads its own copy
of that library file, so two blocks running the same code never share state.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from simbaflow.core.errors import SimbaflowError

from .cbuild import cache_dir, compiler, publish

HEADER = Path(__file__).resolve().parents[2] / "data" / "simba_library.h"


def compile_code(code: str, device: str, include_dir: str = "") -> Path:
    """The shared library built from ``code``, compiling it on first use.

    Raises
    ------
    SimbaflowError
        When the compiler rejects the code; the message names the block and
        quotes the compiler's first error line.
    """
    cc = compiler()
    header = HEADER.read_bytes()
    key = hashlib.sha256(b"\0".join([code.encode(), header, cc.encode(), include_dir.encode()])).hexdigest()[:24]
    target = cache_dir() / f"{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="simbaflow-cc-") as work:
        source = Path(work) / "block.c"
        source.write_text(code)
        shutil.copy(HEADER, Path(work) / "simba_library.h")
        built = Path(work) / "block.so"
        command = [cc, "-O2", "-shared", "-fPIC", "-w", "-I", work]
        if include_dir:
            command += ["-I", include_dir]
        command += ["-o", str(built), str(source), "-lm"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
            raise SimbaflowError(f"C Code block '{device}': the code does not compile: {first.replace(str(source), 'Code')}")
        publish(built, target)
    return target


class CodeBlock:
    """One loaded instance of a compiled C Code block.

    Parameters
    ----------
    library : Path
        Shared library from :func:`compile_code`.
    device : str
        Block name, for messages.
    n_inputs, n_outputs : int
        Sizes of the ``inputs`` and ``outputs`` arrays.
    """

    def __init__(self, library: Path, device: str, n_inputs: int, n_outputs: int):
        self.device = device
        # A private copy: dlopen of the same path would share the globals.
        self._dir = tempfile.TemporaryDirectory(prefix="simbaflow-block-")
        private = Path(self._dir.name) / "block.so"
        shutil.copy(library, private)
        self._lib = ctypes.CDLL(str(private), mode=ctypes.RTLD_LOCAL)
        missing = [name for name in ("initialize", "calculate_outputs") if not hasattr(self._lib, name)]
        if missing:
            raise SimbaflowError(f"C Code block '{device}': the code defines no {', '.join(missing)}() function")
        self._calculate = self._lib.calculate_outputs
        self._calculate.restype = None
        self._calculate.argtypes = [
            ctypes.POINTER(ctypes.c_double),
            ctypes.POINTER(ctypes.c_double),
            ctypes.c_double,
            ctypes.c_double,
        ]
        self._terminate = getattr(self._lib, "terminate", None)
        self._next_event = getattr(self._lib, "next_discontinuity_event", None)
        if self._next_event is not None:
            self._next_event.restype = ctypes.c_double
            self._next_event.argtypes = [ctypes.c_double, ctypes.c_double]
        self.n_outputs = n_outputs

    @property
    def calculate_address(self) -> int:
        """Address of ``calculate_outputs``, which the kernel calls directly."""
        return ctypes.cast(self._calculate, ctypes.c_void_p).value

    @property
    def next_event_address(self) -> int | None:
        """Address of ``next_discontinuity_event``, or None when the code has none."""
        return ctypes.cast(self._next_event, ctypes.c_void_p).value if self._next_event is not None else None

    def initialize(self) -> None:
        """Reset the block's state (calls the code's ``initialize``).

        Raises
        ------
        SimbaflowError
            When the code crashes (the fault is caught, the process goes on).
        """
        self._guarded(self._lib.initialize, "initialize")

    def terminate(self) -> None:
        """Call the code's ``terminate`` (if any)."""
        if self._terminate is not None:
            self._guarded(self._terminate, "terminate")

    def _guarded(self, function, name: str) -> None:
        from . import kernel  # the kernel imports this module

        lib = kernel.library()
        lib.sf_install_handlers()
        result = kernel.ResultStruct()
        if lib.sf_call_void(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(result)) != 0:
            raise SimbaflowError(f"C Code block '{self.device}': {name}() crashed (signal {result.fail_signal})")

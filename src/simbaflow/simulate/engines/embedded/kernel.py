"""The compiled event loop (``kernel.c``): built with the system C compiler on first use.

The kernel is plain C99 shipped beside this module. It is compiled once per
distinct source and compiler (cache keyed by their SHA-256, next to the C Code
blocks' cache, see :func:`.ccode.cache_dir`) and loaded with ctypes; a run is
one call into it. No build-system step: ``pip install -e`` and a fresh
checkout work as they are, and a change to ``kernel.c`` rebuilds itself.

Why a fixed kernel rather than generated C or a CPython extension: the model
differs per design only in data (matrices, block parameters), so one source
serves every design, compiles once per machine (about 1 s) and is never
recompiled for a new design or parameter set; it needs no Python headers, and
C Code blocks, already compiled with the same gcc, are called from it through
plain function pointers.
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import tempfile
import threading
from pathlib import Path

from simbaflow.core.errors import SimbaflowError

from .cbuild import cache_dir, compiler, publish

SOURCE = Path(__file__).resolve().with_name("kernel.c")
#: No -ffast-math: the event logic relies on IEEE comparisons and rounding.
FLAGS = ["-O2", "-std=gnu99", "-shared", "-fPIC", "-fno-fast-math", "-ffp-contract=off"]

# Block kinds (kernel.c's enum).
K_NONE, K_STEP, K_SQUARE, K_SLOPED, K_PWL, K_ZCD, K_ZOH, K_DTF, K_DPID, K_CCODE, K_AVERAGE = range(11)
# Return codes of sf_run.
SF_OK, SF_PYTHON, SF_CHATTER, SF_INSTANT, SF_STUCK, SF_SIGNAL, SF_MEMORY = range(7)

_p = ctypes.POINTER
_i32p, _f64p, _i8p = _p(ctypes.c_int32), _p(ctypes.c_double), _p(ctypes.c_int8)


class EvalOut(ctypes.Structure):
    _fields_ = [
        ("m", _f64p), ("guards", _f64p), ("record", _f64p), ("inputs", _f64p), ("extra", _f64p),
        ("rate", ctypes.c_double), ("cacheable", ctypes.c_int32), ("pyslot", ctypes.c_int32),
        ("key", _i32p), ("nkey", ctypes.c_int32),
    ]


EVALUATE = ctypes.CFUNCTYPE(ctypes.c_int, _p(EvalOut))
EXPM = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_double, _f64p)
EXPM_MATRIX = ctypes.CFUNCTYPE(ctypes.c_int, _f64p, ctypes.c_double, _f64p)
POLL = ctypes.CFUNCTYPE(ctypes.c_int)


class ModelStruct(ctypes.Structure):
    _fields_ = [
        ("nz", ctypes.c_int32), ("ng", ctypes.c_int32), ("nr", ctypes.c_int32), ("ni", ctypes.c_int32),
        ("one", ctypes.c_int32), ("min_terms", ctypes.c_int32),
        ("npairs", ctypes.c_int32), ("pair_gate", _i32p), ("pair_diode", _i32p),
        ("nblocks", ctypes.c_int32),
        ("kind", _i32p), ("state0", _i32p), ("n_in", _i32p), ("in0", _i32p), ("n_out", _i32p),
        ("dpar_off", _i32p), ("rt_off", _i32p), ("ipar_off", _i32p),
        ("dpar", _f64p), ("ipar", _i32p),
        ("cc_calc", _p(ctypes.c_void_p)), ("cc_next", _p(ctypes.c_void_p)),
        ("end_time", ctypes.c_double), ("max_step", ctypes.c_double), ("output_step", ctypes.c_double),
        ("n_extra", ctypes.c_int32),
        ("z", _f64p), ("rt", _f64p), ("io", _f64p), ("gstate", _i8p),
        ("evaluate", EVALUATE), ("expm", EXPM), ("expm_matrix", EXPM_MATRIX), ("poll", POLL),
    ]


class ResultStruct(ctypes.Structure):
    _fields_ = [
        ("chunks", _p(_f64p)), ("n", ctypes.c_int64), ("nchunks", ctypes.c_int64),
        ("events", ctypes.c_int64), ("guard_events", ctypes.c_int64), ("evaluations", ctypes.c_int64),
        ("volatile_evaluations", ctypes.c_int64), ("stiff_intervals", ctypes.c_int64),
        ("fail_t", ctypes.c_double), ("fail_signal", ctypes.c_int32), ("fail_block", ctypes.c_int32),
    ]


_LOCK = threading.Lock()
_LIBRARY: ctypes.CDLL | None = None


def _build() -> Path:
    try:
        cc = compiler()
    except SimbaflowError:
        raise SimbaflowError(
            "the embedded engine needs a C compiler and none was found (install Debian's 'gcc' or set CC)"
        ) from None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, cc.encode(), " ".join(FLAGS).encode()])).hexdigest()[:24]
    target = cache_dir().parent / "kernel" / f"kernel-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="simbaflow-kernel-") as work:
        built = Path(work) / "kernel.so"
        result = subprocess.run([cc, *FLAGS, "-o", str(built), str(SOURCE), "-lm"], capture_output=True, text=True)
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
            raise SimbaflowError(f"the embedded engine's kernel does not compile with {cc}: {first}")
        publish(built, target)
    return target


def library() -> ctypes.CDLL:
    """The loaded kernel (compiled on first use)."""
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is None:
            lib = ctypes.CDLL(str(_build()), mode=ctypes.RTLD_LOCAL)
            lib.sf_run.argtypes = [_p(ModelStruct), _p(ResultStruct)]
            lib.sf_run.restype = ctypes.c_int
            lib.sf_call_void.argtypes = [ctypes.c_void_p, _p(ResultStruct)]
            lib.sf_call_void.restype = ctypes.c_int
            lib.sf_take.argtypes = [_p(ResultStruct), ctypes.c_int32, _f64p, _f64p]
            lib.sf_take.restype = None
            lib.sf_free_result.argtypes = [_p(ResultStruct)]
            lib.sf_free_result.restype = None
            lib.sf_install_handlers.argtypes = []
            lib.sf_install_handlers.restype = ctypes.c_int
            _LIBRARY = lib
        return _LIBRARY

"""RS485 frame of the AC client/server firmware: layout, round trip and refusals of the compiled C."""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "firmware/lib/rs485_frame/rs485_frame.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wdouble-promotion", "-O2"]


class Frame(ctypes.Structure):
    _fields_ = [("v_ref_v", ctypes.c_float), ("i_ref_a", ctypes.c_float), ("w0_rad_s", ctypes.c_float),
                ("id_status", ctypes.c_uint8)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing: `make system-deps` installs the tools the firmware checks need")
    out = tmp_path_factory.mktemp("frame") / "librs485_frame.so"
    subprocess.run(["gcc", *CFLAGS, "-shared", "-fPIC", "-I", str(SOURCE.parent), str(SOURCE), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    so = ctypes.CDLL(str(out))
    so.rs485_frame_id_status.restype = ctypes.c_uint8
    so.rs485_frame_id_status.argtypes = [ctypes.c_uint8, ctypes.c_uint8]
    return so


def _pack(lib, frame: Frame) -> bytes:
    buf = (ctypes.c_uint8 * 13)()
    lib.rs485_frame_pack(ctypes.byref(frame), buf)
    return bytes(buf)


def _unpack(lib, data: bytes) -> tuple[int, Frame]:
    frame = Frame(-1.0, -2.0, -3.0, 0xFF)
    rc = lib.rs485_frame_unpack((ctypes.c_uint8 * 13)(*data), ctypes.byref(frame))
    return rc, frame


def test_layout_is_little_endian_binary32(lib):
    status = lib.rs485_frame_id_status(1, 2)
    assert status == 0x42  # the public example's (1 << 6) + 2
    frame = Frame(11.5, -0.75, 314.159271, status)
    assert _pack(lib, frame) == struct.pack("<fffB", 11.5, -0.75, 314.159271, 0x42)


def test_round_trip_bit_exact(lib):
    rng = np.random.default_rng(3)
    values = np.concatenate([
        rng.standard_normal(300).astype(np.float32) * np.float32(100.0),
        np.array([0.0, -0.0, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38, 1.1754944e-38], dtype=np.float32),
    ])
    for k in range(0, len(values) - 2, 3):
        v, i, w = (float(x) for x in values[k:k + 3])
        for status in (0, 1, 2):
            sent = Frame(v, i, w, lib.rs485_frame_id_status(1, status))
            data = _pack(lib, sent)
            rc, got = _unpack(lib, data)
            assert rc == 0
            assert struct.pack("<fffB", got.v_ref_v, got.i_ref_a, got.w0_rad_s, got.id_status) == data
            assert lib.rs485_frame_status(ctypes.byref(got)) == status
            assert lib.rs485_frame_id(ctypes.byref(got)) == 1


@pytest.mark.parametrize("bad", [
    struct.pack("<fffB", 1, 2, 3, 0x02),                        # id 0: not the server
    struct.pack("<fffB", 1, 2, 3, 0x82),                        # id 2
    struct.pack("<fffB", 1, 2, 3, 0x43),                        # status 3 is not defined
    struct.pack("<fffB", 1, 2, 3, 0x41 | 0x10),                 # reserved bits set
    struct.pack("<fffB", float("nan"), 2, 3, 0x41),
    struct.pack("<fffB", 1, float("inf"), 3, 0x41),
    struct.pack("<fffB", 1, 2, float("-inf"), 0x41),
])
def test_garbled_frames_are_refused_and_leave_the_frame_unchanged(lib, bad):
    rc, frame = _unpack(lib, bad)
    assert rc == -1
    assert (frame.v_ref_v, frame.i_ref_a, frame.w0_rad_s, frame.id_status) == (-1.0, -2.0, -3.0, 0xFF)


def test_largest_finite_is_accepted(lib):
    # The finiteness test reads the exponent bits: the largest float has all but the last set.
    rc, frame = _unpack(lib, struct.pack("<fffB", 3.4028235e38, -3.4028235e38, 0.0, 0x41))
    assert rc == 0 and frame.v_ref_v == np.float32(3.4028235e38)


def test_cortex_m4f_build(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc is missing: run `make system-deps`")
    obj = tmp_path / "rs485_frame.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                    *CFLAGS, "-c", str(SOURCE), "-o", str(obj)], check=True, capture_output=True, text=True)
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], check=True, capture_output=True,
                               text=True).stdout.split()
    assert not [s for s in undefined if s.startswith("__aeabi_d") or "df" in s]

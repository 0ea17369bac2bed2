"""The PlatformIO monitor filter, loaded by PlatformIO's own loader and fed a serial stream."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from simbaflow.bench.records import REPEATED_LAST_WORD, read_capture
from platformio.device.monitor.filters.base import load_monitor_filter
from serial.tools import miniterm
from test_records import SEQ, acquire, dump, f32

FILTER = Path(__file__).resolve().parents[1] / "firmware" / "monitor" / "filter_datas_recorded.py"
NAME = re.compile(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}-record(-\d+)?\.txt")


@pytest.fixture()
def monitor(tmp_path, monkeypatch):
    """The filter as `pio device monitor` builds it for a project in tmp_path."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "platformio.ini").write_text(
        "[env:twist]\nplatform = ststm32\nmonitor_filters = recorded_datas\n"
    )
    monkeypatch.chdir(project)
    load_monitor_filter(str(FILTER), options={"project_dir": str(project), "environment": "twist"})
    return miniterm.TRANSFORMATIONS["recorded_datas"], project


def arrival(path):
    """Sort key: time stamp, then the -2, -3 ... suffix of records saved in the same second."""
    match = NAME.fullmatch(path.name)
    return path.name[:19], int(match.group(1)[1:]) if match.group(1) else 1


def feed(flt, text, chunk_sizes):
    """Send text as the serial port delivers it: in chunks that cut lines anywhere."""
    shown, pos, k = [], 0, 0
    while pos < len(text):
        size = chunk_sizes[k % len(chunk_sizes)]
        shown.append(flt.rx(text[pos : pos + size]))
        pos, k = pos + size, k + 1
    return "".join(shown)


def test_each_record_is_saved_and_imports_back(monitor):
    flt, project = monitor
    m1, f1 = acquire(SEQ, 16)
    m2, f2 = acquire(SEQ[:20] * 2, 8)
    text = (
        "power mode\r\n"
        + dump(("I_low", "V_low"), m1, f1)
        + "idle mode\r\n"
        + dump(("I_low", "V_low"), m2, f2, index_style="# ", library_dump=False)
        + "begin record\r\n#a,\r\n3f80"  # the port closed mid-record
    )
    shown = feed(flt, text, [1, 7, 13, 64, 3])
    assert shown == text  # the console sees the stream unchanged
    files = sorted((p for p in project.iterdir() if p.suffix == ".txt"), key=arrival)
    assert len(files) == 2  # the unfinished record is not saved
    assert all(NAME.fullmatch(p.name) for p in files)
    assert not [p for p in project.iterdir() if p.name.endswith(".tmp")]

    first = read_capture(files[0])
    assert first.problems == []
    (r1,) = first.records
    assert r1.quirks == (REPEATED_LAST_WORD,)
    expected = f32(SEQ[-16:])
    expected[(15 - (f1 + 1)) % 16, 1] = np.nan
    np.testing.assert_array_equal(r1.values, expected)
    (r2,) = read_capture(files[1]).records
    np.testing.assert_array_equal(r2.values, f32(SEQ[12:20] * 2))
    lines = files[1].read_text().splitlines()
    assert lines[:2] == ["I_low,V_low,", f"# {f2}"]  # OwnTech's decoded layout


def test_a_corrupted_word_is_kept_for_the_import_to_point_at(monitor):
    flt, project = monitor
    m, f = acquire(SEQ[:20], 8)
    text = dump(("a", "b"), m, f, library_dump=False, newline="\n").replace(
        f"{np.float32(SEQ[14, 1]).view(np.uint32):08x}", "3f8z0000", 1
    )
    flt.rx(text)
    (path,) = [p for p in project.iterdir() if p.suffix == ".txt"]
    capture = read_capture(path)
    (problem,) = capture.problems
    assert re.search(r"line \d+: expected one decimal float per line .* found '3f8z0000'", str(problem))

"""The three capture layouts, each built by the rules of the C code that prints it (scope_dumps).

Expected values come from what was fed to each ``acquire()`` call and from the
C rules stated in scope_dumps, never from the importer.
"""

from __future__ import annotations

import numpy as np
import pytest

from scope_dumps import (
    Scope2024,
    Scope2025,
    example_dump,
    firmware_ring_dump,
    fixed_ring_dump,
    owntech_decoded,
)
from simbaflow.cli import main
from simbaflow.bench.records import (
    BUFFER,
    FIRST_SLOT_UNWRITTEN,
    REPEATED_LAST_WORD,
    RING_INDEX,
    TIME_COLUMN,
    parse_capture,
    read_capture,
    read_record,
)

NAMES = ("I_low", "V_low", "Vhigh_value", "Iref", "duty_cycle", "Vgrid")  # the example's channels
TS_S = 100e-6


def samples(n: int, n_channels: int = 6, zero_first: int = 0) -> np.ndarray:
    """Distinct non-zero float32 rows; the first `zero_first` rows all zero (board at rest)."""
    k = np.arange(n)[:, None]
    rows = (1.0 + k + 0.125 * np.arange(n_channels)[None, :]) * np.where(k % 2, -1.0, 1.0)
    rows = rows.astype(np.float32)
    rows[:zero_first] = 0.0
    return rows


def f64(rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).astype(np.float64)


# --- the example's own dump_scope_datas(): raw buffer, no index -------------------------------


def test_example_dump_with_owntech_library_keeps_buffer_order_and_the_zero_slot():
    """Example + 6f49b72, delay 0: slot 0 never written, samples 1..1023 in slots 1..1023."""
    scope = Scope2024(1024, 6)
    fed = samples(1500)
    for row in fed:
        scope.acquire(row)
    (record,) = parse_capture(example_dump(NAMES, scope.memory)).records
    assert record.layout == BUFFER
    assert record.names == NAMES
    assert record.final_index is None
    assert record.quirks == ()
    expected = np.vstack([np.zeros((1, 6)), f64(fed[:1023])])  # acquisition stopped after 1023
    np.testing.assert_array_equal(record.values, expected)
    np.testing.assert_array_equal(record.position, np.arange(1024))
    assert len(record.notes) == 1 and "row 0 (slot 0) is all zero words" in record.notes[0]


def test_example_dump_never_drops_a_real_zero_first_row():
    """Write-then-advance library (2025): slot 0 holds the first sample, zero at rest: kept."""
    scope = Scope2025(64, 6, TS_S)
    fed = samples(80, zero_first=1)
    for row in fed:
        scope.acquire(row)
    text = example_dump(NAMES, scope.memory, newline="\n")
    (record,) = parse_capture(text).records
    np.testing.assert_array_equal(record.values, f64(fed[:64]))
    assert record.quirks == ()


def test_example_dump_import_says_buffer_order(tmp_path, capsys):
    scope = Scope2024(32, 6)
    for row in samples(40):
        scope.acquire(row)
    (tmp_path / "cap.txt").write_text(example_dump(NAMES, scope.memory), newline="")
    main(["records", "import", str(tmp_path / "cap.txt"), "--out", str(tmp_path / "r.parquet"),
          "--ts-s", "1e-4"])
    frame, meta = read_record(tmp_path / "r.parquet")
    assert meta["layout"] == "buffer"
    assert meta["order"] == "buffer (ring position not dumped)"
    assert meta["time_source"] == "ts_s"
    assert meta["quirks"] == []
    np.testing.assert_allclose(frame["time_s"], np.arange(32) * 1e-4, rtol=0, atol=1e-15)
    assert "note: row 0 (slot 0) is all zero words" in capsys.readouterr().out


# --- the library's dump_datas() since 2025-11: time column --------------------------------------


@pytest.mark.parametrize("index_line", [True, False])  # 05ca5fb prints '## length-1'; 0.3 does not
def test_time_column_gives_time_s_and_keeps_a_zero_first_row(index_line):
    """Trigger at once, no pretrigger: first row is time 0.0 and channels at rest, all zero words."""
    scope = Scope2025(100, 6, TS_S)
    fed = samples(130, zero_first=1)
    for row in fed:
        scope.acquire(row)
    text = scope.dump_datas(NAMES, index_line=index_line)
    assert text.splitlines()[2] == ("## 99" if index_line else "00000000")
    (record,) = parse_capture(text).records
    assert record.layout == TIME_COLUMN
    assert record.names == NAMES
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, f64(fed[:100]))  # 100 samples held, then done
    # Time words: float32((k - 0) * float32(1e-4)).
    expected_t = (np.arange(100, dtype=np.float32) * np.float32(TS_S)).astype(np.float64)
    np.testing.assert_array_equal(record.time_s, expected_t)
    assert record.time_s[0] == 0.0
    assert abs(record.ts_s - TS_S) < 1e-11


def test_time_column_with_pretrigger_and_a_wrapped_ring():
    """Trigger at the 200th call, 25 pretrigger samples kept: the ring wrapped, times start at -25 Ts."""
    scope = Scope2025(64, 2, TS_S, n_pretrig=25)
    fed = samples(300, n_channels=2)
    for k, row in enumerate(fed):
        scope.acquire(row, trigger=k >= 199)
    (record,) = parse_capture(scope.dump_datas(("a", "b"), newline="\n")).records
    # Held: the 25 samples before call 199 (0-based), that one, and 38 more: samples 174..237.
    np.testing.assert_array_equal(record.values, f64(fed[174:238]))
    expected_t = (np.arange(-25, 39, dtype=np.float32) * np.float32(TS_S)).astype(np.float64)
    np.testing.assert_array_equal(record.time_s, expected_t)


def test_time_column_needs_no_ts_and_must_agree_with_an_explicit_one(tmp_path, capsys):
    scope = Scope2025(50, 6, 200e-6)  # a decimated scope: twice the control period
    for row in samples(60):
        scope.acquire(row)
    cap = tmp_path / "cap.txt"
    cap.write_text(scope.dump_datas(NAMES), newline="")
    main(["records", "import", str(cap), "--out", str(tmp_path / "r.parquet")])
    frame, meta = read_record(tmp_path / "r.parquet")
    assert meta["layout"] == "time_column"
    assert meta["time_source"] == "time column"
    assert abs(meta["ts_s"] - 200e-6) < 1e-11
    np.testing.assert_array_equal(
        frame["time_s"], (np.arange(50, dtype=np.float32) * np.float32(200e-6)).astype(np.float64)
    )
    assert "time column" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["records", "import", str(cap), "--out", str(tmp_path / "s.parquet"), "--ts-s", "1e-4"])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "its time column steps by 0.0002 s, --ts-s is 0.0001 s" in err
    assert "Traceback" not in err


def test_time_column_decoded_by_owntechs_filter(tmp_path):
    scope = Scope2025(40, 2, TS_S, n_pretrig=5)
    fed = samples(45, n_channels=2, zero_first=1)
    for row in fed:
        scope.acquire(row)
    path = tmp_path / "2025-11-21_10-00-00-record.txt"
    path.write_text(owntech_decoded(scope.dump_datas(("a", "b"))))
    assert path.read_text().splitlines()[:2] == ["time,a,b", "# 39"]
    (record,) = read_capture(path).records
    assert record.layout == TIME_COLUMN
    np.testing.assert_array_equal(record.values, f64(fed[:40]))  # trigger at once: first 40 held
    assert record.time_s[0] == np.float32(-5) * np.float32(TS_S)


def test_a_broken_time_column_is_named():
    scope = Scope2025(10, 1, TS_S)
    for row in samples(12, n_channels=1):
        scope.acquire(row)
    lines = scope.dump_datas(("a",), newline="\n").split("\n")
    lines[3 + 2 * 4] = lines[3]  # sample 4's time word replaced by sample 0's
    (problem,) = parse_capture("\n".join(lines), source="c").problems
    assert "expected the time column of dump_datas() to rise by a steady Ts" in str(problem)
    assert "at sample 4" in str(problem)


# --- ring index: ScopeMimicry 6f49b72's dump_datas() and hand-written index dumps ---------------


@pytest.mark.parametrize("delay", [0.0, 0.25])
def test_owntech_library_dump_drops_never_written_slots_and_loses_the_last_value(delay):
    """6f49b72: slots 1..stop written once; stop = length - delay·length - 1; last word repeated."""
    length = 16
    scope = Scope2024(length, 2, delay=delay)
    fed = samples(40, n_channels=2)
    for row in fed:
        scope.acquire(row)
    d = int(delay * length)
    n_written = length - d - 1
    assert scope.final_idx == n_written
    (record,) = parse_capture(scope.dump_datas(("a", "b"))).records
    assert record.layout == RING_INDEX
    assert set(record.quirks) == ({FIRST_SLOT_UNWRITTEN, REPEATED_LAST_WORD} if d == 0
                                  else {FIRST_SLOT_UNWRITTEN})
    expected = f64(fed[:n_written])
    if d == 0:
        expected[-1, 1] = np.nan  # slot 15 is the newest sample; its last word was not printed
    np.testing.assert_array_equal(record.values, expected)
    np.testing.assert_array_equal(record.position, np.arange(length - n_written, length))


def test_owntech_library_second_recording_wraps_and_keeps_every_row():
    """start() again: the counter goes on from the stop slot, so every slot is rewritten."""
    length = 16
    scope = Scope2024(length, 2)
    fed = samples(60, n_channels=2)
    for row in fed[:20]:
        scope.acquire(row)  # first recording: samples 0..14 into slots 1..15
    scope.start()
    for row in fed[20:]:
        scope.acquire(row)  # trigger at counter 15: stop slot 14, samples 20..34 into 0..14
    (record,) = parse_capture(scope.dump_datas(("a", "b"))).records
    assert record.quirks == (REPEATED_LAST_WORD,)
    # Oldest at slot 15 (sample 14 of the first recording), then samples 20..34.
    expected = f64(np.vstack([fed[14:15], fed[20:35]]))
    expected[0, 1] = np.nan  # slot 15 is the buffer's last word, lost to the repeat
    np.testing.assert_array_equal(record.values, expected)


def test_hand_written_ring_dump_keeps_the_zero_slot_and_notes_it():
    """firmware/src/main.cpp with 6f49b72: every word printed, no repeat: nothing is dropped."""
    scope = Scope2024(16, 2)
    fed = samples(30, n_channels=2)
    for row in fed:
        scope.acquire(row)
    (record,) = parse_capture(firmware_ring_dump(("a", "b"), scope.memory, scope.final_idx)).records
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, np.vstack([np.zeros((1, 2)), f64(fed[:15])]))
    assert len(record.notes) == 1 and "the 1 oldest rows (through slot 0)" in record.notes[0]


def test_fixed_library_ring_dump_keeps_a_real_zero_first_sample():
    """2025-04..2025-11: write then advance; done after 16 samples with final_idx 15, slot 0 the
    first sample, zero at rest: the importer must not take it for a never-written slot."""
    scope = Scope2025(16, 2, TS_S)
    fed = samples(20, n_channels=2, zero_first=1)
    for row in fed:
        scope.acquire(row)
    assert scope.final_idx == 15
    (record,) = parse_capture(fixed_ring_dump(("a", "b"), scope.memory, scope.final_idx)).records
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, f64(fed[:16]))


def test_fixed_library_dumped_before_done_keeps_zero_first_sample_and_zero_tail():
    """Dumped after 10 of 16 samples: final_idx is still its initial 15, slots 10..15 are zero.
    The two zero last words are no repeat mark: nothing dropped, nothing set unknown."""
    scope = Scope2025(16, 2, TS_S)
    fed = samples(10, n_channels=2, zero_first=1)
    for row in fed:
        scope.acquire(row)
    assert scope.final_idx == 15
    (record,) = parse_capture(fixed_ring_dump(("a", "b"), scope.memory, scope.final_idx)).records
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, np.vstack([f64(fed), np.zeros((6, 2))]))

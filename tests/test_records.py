"""Record import: ring-index captures built from known float sequences; parsing and errors.

``acquire``/``dump`` follow ScopeMimicry 6f49b72 (owntech-foundation, 2024-07-09): the
counter advances, then its slot is written; ``dump_datas()`` prints ``## <index>`` and
repeats its last word (``library_dump``), a hand-written loop prints every word. The
other layouts, built by their own C rules, are in test_records_formats.py.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from simbaflow.bench.records import (
    FIRST_SLOT_UNWRITTEN,
    REPEATED_LAST_WORD,
    RecordError,
    parse_capture,
    read_capture,
    read_record,
    record_frame,
    write_record,
)


def hex_word(value: float) -> str:
    """The firmware's ``printk("%08x", *(uint32_t *)&value)``."""
    return struct.pack(">f", value).hex()


def acquire(samples: np.ndarray, length: int) -> tuple[np.ndarray, int]:
    """Play ScopeMimicry's acquire(): increment the counter, then write that slot.

    ``samples`` has shape (n, n_channels); memory starts zeroed as in the firmware.
    Returns the ring memory and the last written slot.
    """
    memory = np.zeros((length, samples.shape[1]), dtype=np.float32)
    counter = 0
    for row in samples:
        counter = (counter + 1) % length
        memory[counter] = row
    return memory, counter


def dump(
    names,
    memory,
    final_index=None,
    *,
    index_style="## ",
    library_dump=True,
    newline="\r\n",
):
    """Text of one record as printed over the console.

    ``library_dump`` reproduces ScopeMimicry::dump_datas(): the last word is the
    previous one again. Otherwise every word is printed (hand-written dump loop).
    """
    words = [hex_word(v) for v in np.asarray(memory, dtype=np.float32).ravel()]
    if library_dump:
        words = words[:-1] + [words[-2]]
    lines = ["begin record", "#" + "".join(f"{n}," for n in names)]
    if final_index is not None:
        lines.append(f"{index_style}{final_index}")
    lines += words + ["end record"]
    return newline.join(lines) + newline


def f32(values):
    return np.asarray(values, dtype=np.float32).astype(np.float64)


SEQ = np.column_stack(
    [np.linspace(-1.5, 2.25, 40), np.sin(np.arange(40) * 0.3) * 7.0]
).astype(np.float32)


def test_wrapped_ring_buffer_is_reordered_oldest_first():
    memory, final = acquire(SEQ, 16)  # 40 samples through 16 slots: wrapped twice
    assert final == 40 % 16
    capture = parse_capture(dump(("I_low", "V_low"), memory, final, library_dump=False))
    assert capture.problems == []
    (record,) = capture.records
    assert record.names == ("I_low", "V_low")
    assert record.final_index == 8
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, f32(SEQ[-16:]))
    np.testing.assert_array_equal(record.position, np.arange(16))


def test_fresh_start_drops_the_never_written_slots():
    memory, final = acquire(SEQ[:10], 16)  # not wrapped: slots 11..15 and 0 never written
    (record,) = parse_capture(dump(("a", "b"), memory, final)).records
    assert record.quirks == (FIRST_SLOT_UNWRITTEN,)  # slot 15's lost word was never written
    np.testing.assert_array_equal(record.values, f32(SEQ[:10]))
    np.testing.assert_array_equal(record.position, np.arange(6, 16))


def test_a_hand_written_dump_of_a_fresh_ring_shows_the_never_written_tail():
    """Every word printed, but slots 11..15 were never written: the last two words are the
    zeros of slot 15, which leads the time order, as the library's repeat would print them."""
    memory, final = acquire(SEQ[:10], 16)
    (record,) = parse_capture(dump(("a", "b"), memory, final, library_dump=False)).records
    assert record.quirks == (FIRST_SLOT_UNWRITTEN,)
    np.testing.assert_array_equal(record.values, f32(SEQ[:10]))


def test_without_index_line_rows_stay_in_buffer_order():
    memory, final = acquire(SEQ[:15], 16)  # exactly slot 0 is left
    assert final == 15
    (record,) = parse_capture(dump(("a", "b"), memory, None, library_dump=False)).records
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, np.vstack([np.zeros((1, 2)), f32(SEQ[:15])]))
    np.testing.assert_array_equal(record.position, np.arange(16))


def test_a_written_zero_in_slot_zero_is_kept():
    samples = SEQ[:20].copy()
    samples[15] = 0.0  # sample 16 lands in slot 0 after the wrap
    memory, final = acquire(samples, 16)
    (record,) = parse_capture(dump(("a", "b"), memory, final, library_dump=False)).records
    assert record.quirks == ()
    np.testing.assert_array_equal(record.values, f32(samples[-16:]))


def test_library_dump_repeats_the_last_word_and_loses_that_value():
    memory, final = acquire(SEQ, 16)
    (record,) = parse_capture(dump(("a", "b"), memory, final)).records
    assert record.quirks == (REPEATED_LAST_WORD,)
    expected = f32(SEQ[-16:])
    # Slot 15 holds the last channel's lost value; slot 15 is 7 rows after slot 8.
    lost_row = (15 - (final + 1)) % 16
    expected[lost_row, 1] = np.nan
    np.testing.assert_array_equal(record.values, expected)
    assert np.isnan(record.values).sum() == 1


def test_both_quirks_on_a_fresh_start():
    memory, final = acquire(SEQ[:15], 16)
    (record,) = parse_capture(dump(("a", "b"), memory, final)).records
    assert set(record.quirks) == {FIRST_SLOT_UNWRITTEN, REPEATED_LAST_WORD}
    expected = f32(SEQ[:15])
    expected[-1, 1] = np.nan  # slot 15 is the newest sample here
    np.testing.assert_array_equal(record.values, expected)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("index_style", ["## ", "# "])
def test_line_ends_and_both_index_styles(newline, index_style):
    memory, final = acquire(SEQ[:20], 8)
    text = dump(("x", "y"), memory, final, index_style=index_style, newline=newline)
    (record,) = parse_capture(text).records
    assert record.final_index == final
    np.testing.assert_array_equal(record.values[:, 0], f32(SEQ[12:20, 0]))


def test_several_records_among_console_chatter():
    m1, f1 = acquire(SEQ[:20], 8)
    m2, f2 = acquire(SEQ[::-1][:30], 8)
    m3, f3 = acquire(SEQ[:20, :1] * 3, 4)
    text = (
        "idle mode\r\n0.5:0.25:\r\n"
        + dump(("a", "b"), m1, f1, library_dump=False)
        + "power mode\r\n"
        + dump(("a", "b"), m2, f2, library_dump=False)
        + dump(("I1",), m3, f3, library_dump=False)
        + "end record\r\n"  # a stray end without begin is console noise
    )
    capture = parse_capture(text)
    assert capture.problems == []
    assert [r.record_number for r in capture.records] == [1, 2, 3]
    np.testing.assert_array_equal(capture.records[0].values, f32(SEQ[12:20]))
    np.testing.assert_array_equal(capture.records[1].values, f32(SEQ[::-1][22:30]))
    np.testing.assert_array_equal(capture.records[2].values[:, 0], f32(SEQ[16:20, 0] * 3))
    assert capture.records[2].names == ("I1",)


def test_truncated_capture_keeps_earlier_records():
    m, f = acquire(SEQ[:20], 8)
    good = dump(("a", "b"), m, f, library_dump=False, newline="\n")
    cut = dump(("a", "b"), m, f, library_dump=False, newline="\n").split("\n")[:7]
    text = good + "\n".join(cut) + "\n"
    capture = parse_capture(text, source="cap.txt")
    assert len(capture.records) == 1
    (problem,) = capture.problems
    assert isinstance(problem, RecordError)
    begin_line = good.count("\n") + 1
    assert str(problem) == (
        f"cap.txt, line {begin_line + 6}: expected 'end record' for the record begun at "
        f"line {begin_line}, but the capture ends (truncated)"
    )


def test_missing_end_record_rejects_only_that_record():
    m, f = acquire(SEQ[:20], 8)
    first = dump(("a", "b"), m, f, library_dump=False, newline="\n").replace("end record\n", "")
    second = dump(("a", "b"), m, f, library_dump=False, newline="\n")
    capture = parse_capture(first + second, source="cap.txt")
    (record,) = capture.records
    assert record.record_number == 2
    np.testing.assert_array_equal(record.values, f32(SEQ[12:20]))
    (problem,) = capture.problems
    next_begin = first.count("\n") + 1
    assert f"cap.txt, line {next_begin}: expected 'end record'" in str(problem)
    assert "begun at line 1" in str(problem)


def test_corrupted_hex_word_names_its_line():
    m, f = acquire(SEQ[:20], 8)
    lines = dump(("a", "b"), m, f, library_dump=False, newline="\r\n").split("\r\n")
    lines[9] = lines[9][:3] + "g" + lines[9][4:]  # a bit error turned a digit into 'g'
    text = "\r\n".join(lines) + dump(("a", "b"), m, f, library_dump=False)
    capture = parse_capture(text, source="cap.txt")
    assert len(capture.records) == 1
    (problem,) = capture.problems
    assert str(problem).startswith("cap.txt, line 10: expected an 8-digit hex word")
    assert repr(lines[9]) in str(problem)


def test_lost_word_is_reported():
    m, f = acquire(SEQ[:20], 8)
    lines = dump(("a", "b"), m, f, library_dump=False, newline="\n").split("\n")
    del lines[5]
    (problem,) = parse_capture("\n".join(lines), source="cap.txt").problems
    assert "expected a multiple of its 2 channels in sample words, found 15" in str(problem)


def test_index_outside_buffer_and_missing_names_are_reported():
    m, _ = acquire(SEQ[:20], 8)
    text = dump(("a", "b"), m, 8, library_dump=False, newline="\n")
    (problem,) = parse_capture(text, source="c").problems
    assert str(problem) == (
        "c, line 3: expected a ring-buffer index below the record's 8 samples, found 8"
    )
    no_names = "begin record\n3f800000\nend record\n"
    (problem,) = parse_capture(no_names, source="c").problems
    assert str(problem).startswith("c, line 2: expected the channel names line")


def test_unrecognised_text_is_one_clear_problem():
    capture = parse_capture("hello\nworld\n", source="c")
    assert capture.records == []
    (problem,) = capture.problems
    assert str(problem).startswith("c, line 1: expected 'begin record' (console capture)")


def write_decoded(path, names, memory, final_index, *, library_dump=True, index_prefix="# "):
    """A file as OwnTech's filter writes it: names without '#', '# <idx>', str(float) lines."""
    words = list(np.asarray(memory, dtype=np.float32).ravel())
    if library_dump:
        words = words[:-1] + [words[-2]]
    lines = ["".join(f"{n}," for n in names)]
    if final_index is not None:
        lines.append(f"{index_prefix}{final_index}")
    lines += [str(float(w)) for w in words]
    path.write_text("\n".join(lines) + "\n")


def test_decoded_record_file(tmp_path):
    memory, final = acquire(SEQ, 16)
    path = tmp_path / "2024-07-09_11-22-52-record.txt"
    write_decoded(path, ("I_low", "V_low"), memory, final)
    capture = read_capture(path)
    assert capture.problems == []
    (record,) = capture.records
    assert record.quirks == (REPEATED_LAST_WORD,)
    assert record.final_index == final
    expected = f32(SEQ[-16:])
    expected[(15 - (final + 1)) % 16, 1] = np.nan
    np.testing.assert_array_equal(record.values, expected)


def test_decoded_file_of_an_older_dump(tmp_path):
    memory, final = acquire(SEQ[:10], 16)
    path = tmp_path / "2024-06-01_08-00-00-record.txt"
    write_decoded(path, ("a", "b"), memory, final, index_prefix=" ")
    (record,) = read_capture(path).records
    assert record.quirks == (FIRST_SLOT_UNWRITTEN,)
    np.testing.assert_array_equal(record.values, f32(SEQ[:10]))


def test_decoded_file_with_a_bad_line(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("a,b,\n# 1\n1.0\n2.0\n3f80zz00\n4.0\n")
    capture = read_capture(path)
    assert capture.records == []
    (problem,) = capture.problems
    assert str(problem) == (
        f"{path}, line 5: expected one decimal float per line in a decoded record file, "
        "found '3f80zz00'"
    )


def test_parquet_round_trip_keeps_values_time_and_metadata(tmp_path):
    memory, final = acquire(SEQ[:15], 16)
    (record,) = parse_capture(dump(("I_low", "V_low"), memory, final), source="cap.txt").records
    out = tmp_path / "rec.parquet"
    write_record(out, record, ts_s=1.0 / 16000, study="dc_current_loop")
    frame, meta = read_record(out)
    assert list(frame.columns) == ["time_s", "I_low", "V_low"]
    np.testing.assert_allclose(frame["time_s"], np.arange(1, 16) / 16000.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(frame[["I_low", "V_low"]].to_numpy(), record.values)
    assert np.isnan(frame["V_low"].iloc[-1])
    assert meta["source"] == "cap.txt"
    assert meta["record_number"] == 1
    assert meta["ts_s"] == 1.0 / 16000
    assert meta["study"] == "dc_current_loop"
    assert sorted(meta["quirks"]) == sorted([FIRST_SLOT_UNWRITTEN, REPEATED_LAST_WORD])
    assert [p.name for p in tmp_path.iterdir()] == ["rec.parquet"]  # no temp left behind
    np.testing.assert_array_equal(record_frame(record, 2.0)["time_s"], record.position * 2.0)


def test_read_record_rejects_other_files(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    with pytest.raises(RecordError, match=r"x\.parquet: expected a record Parquet file"):
        read_record(bad)

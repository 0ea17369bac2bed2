"""Fuzz the capture parser: any input gives records or RecordError, never another exception;
any ring the firmware can dump comes back in order."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simbaflow.bench.records import (
    FIRST_SLOT_UNWRITTEN,
    REPEATED_LAST_WORD,
    Capture,
    RecordError,
    parse_capture,
    read_capture,
)
from test_records import acquire, dump

LINE = st.one_of(
    st.sampled_from(
        ["begin record", "end record", "#a,b,", "#I1,", "#a,,b,", "#a,a,", "## 3", "# 1", " 2", "#time,a,b",
         "#time,", "time,a", "00000000", "3f800000", "40000000",
         "a,b,", "# 99", "", "nan", "1.5", "-inf", "1e999", "idle mode", "## " + "9" * 5000]
    ),
    st.integers(0, 2**32 - 1).map(lambda w: f"{w:08x}"),
    st.text(max_size=12),
)
STRUCTURED = st.tuples(st.lists(LINE, max_size=40), st.sampled_from(["\n", "\r\n", "\r"])).map(
    lambda parts: parts[1].join(parts[0])
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(capture: Capture) -> None:
    for problem in capture.problems:
        assert isinstance(problem, RecordError)
        assert re.search(r"line \d+|lines \d+-\d+", str(problem)), str(problem)
        assert "expected" in str(problem)
    for record in capture.records:
        assert record.values.shape == (record.position.size, len(record.names))
        assert record.position.size > 0
        assert np.all(np.diff(record.position) == 1)


@FUZZ
@given(STRUCTURED)
def test_structured_noise_never_crashes(text):
    check(parse_capture(text, source="fuzz"))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_never_crashes(text):
    check(parse_capture(text, source="fuzz"))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_from_a_file_never_crash(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "capture.txt"
    path.write_bytes(data)
    check(read_capture(path))


def test_a_missing_file_is_a_record_error(tmp_path):
    try:
        read_capture(tmp_path / "nope.txt")
    except RecordError as exc:
        assert str(exc).startswith(f"{tmp_path / 'nope.txt'}: cannot read the capture")
    else:
        raise AssertionError("reading a missing capture did not fail")


NONZERO = st.floats(width=32, allow_nan=False).filter(lambda x: x != 0.0)


@settings(max_examples=100, deadline=None)
@given(
    # From 3 slots: with 2 slots of 1 channel the repeated word is slot 0's own zero,
    # which no dump can tell from a later library's zero tail.
    length=st.integers(3, 12),
    n_channels=st.integers(1, 3),
    n_samples=st.integers(1, 40),
    library_dump=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    data=st.data(),
)
def test_any_dumped_ring_comes_back_in_order(length, n_channels, n_samples, library_dump, newline, data):
    values = data.draw(
        st.lists(NONZERO, min_size=n_samples * n_channels, max_size=n_samples * n_channels, unique=True)
    )
    samples = np.array(values, dtype=np.float32).reshape(n_samples, n_channels)
    memory, final = acquire(samples, length)
    names = tuple(f"ch{k}" for k in range(n_channels))
    text = "noise\n" + dump(names, memory, final, library_dump=library_dump, newline=newline)
    (record,) = parse_capture(text).records

    # Sample j (1-based) went to slot j % length; the newest `length` of them survive.
    kept = np.arange(max(1, n_samples - length + 1), n_samples + 1)
    expected = samples[kept - 1].astype(np.float64)
    lost = library_dump and np.any(kept % length == length - 1)
    if lost:
        expected[np.flatnonzero(kept % length == length - 1)[0], -1] = np.nan
    unwritten = length - n_samples if n_samples < length else 0
    if library_dump:
        np.testing.assert_array_equal(record.values, expected)
        assert (REPEATED_LAST_WORD in record.quirks) == bool(lost)
        assert (FIRST_SLOT_UNWRITTEN in record.quirks) == (unwritten > 0)
    else:
        # Every word printed: every sample comes back in order; never-written slots,
        # if kept, are zero rows before them; no value is set unknown.
        extra = record.values.shape[0] - expected.shape[0]
        assert 0 <= extra <= unwritten
        np.testing.assert_array_equal(record.values[extra:], expected)
        assert not np.any(record.values[:extra])
        assert REPEATED_LAST_WORD not in record.quirks

"""ScopeMimicry bench records: parse serial captures, put samples in time order, stamp time.

OwnTech firmware prints a ScopeMimicry buffer over the serial console between
``begin record`` and ``end record`` lines, in one of three layouts (each read
from the C source that prints it):

``buffer``
    The OwnTech examples' own ``dump_scope_datas()`` (seeds 000/001): the
    names line ``#name1,name2,...,`` then the raw buffer as ``%08x`` words
    (IEEE-754 float bits, sample-major), no index line. The ring position is
    not dumped, so rows stay in buffer order (slot 0 first); the metadata says
    so.
``ring_index``
    ScopeMimicry's ``dump_datas()`` from 2024-06 to 2025-11 (and hand-written
    dumps that print ``get_final_idx()``): names line, ``## <last written
    slot>`` (``# <slot>`` in 2024-06 and in this repository's DC firmware),
    then the raw buffer. Rows are put back oldest first (oldest at slot + 1).
``time_column``
    ScopeMimicry's ``dump_datas()`` since 2025-11: ``#time,name1,...,nameN``
    (no trailing comma), optionally ``## <length-1>`` (a virtual index: the
    data are already in recording order), then per sample its time word
    ``(k - n_pretrig) * Ts`` and its channel words. The time column becomes
    ``time_s``; no sampling period is needed.

A capture may hold several records among other console output, with ``\\r\\n``
or ``\\n`` line ends. OwnTech's monitor filter also writes decoded files
(``YYYY-MM-DD_HH-MM-SS-record.txt``): the names line without its first ``#``,
the index line with one ``#`` less (``# 37``, or `` 37`` from a ``# 37``
line), then one decimal float per line.

Two quirks of ScopeMimicry up to 2024-07 (owntech-foundation/scopemimicry
6f49b72, what the examples' ``lib_deps`` fetch) are corrected in the
``ring_index`` layout only, the one layout that can show them:

``repeated_last_word``
    That ``dump_datas()`` stops one word early and, on its last call, returns
    its previous text again: the final word repeats the one before it and the
    true value of the last channel in the last slot is lost. When the last two
    words are equal that value is set to NaN (a hand-written dump that prints
    every word cannot be told apart; only that one value is lost). Two zero
    words count only when the last slot leads the time order (index below
    length - 1): a later library dumped before its buffer filled leaves a zero
    tail with index length - 1.
``first_slot_unwritten``
    Its ``acquire()`` advances the slot *before* writing, so until the buffer
    wraps slot 0 and the slots after the final index are never written: zero
    rows leading the time order. They are dropped only when the dump also has
    the repeated last word (the same library version); otherwise, as in the
    ``buffer`` layout and with later libraries (which write, then advance),
    every row is kept, and a leading all-zero run is only noted in the
    metadata: a dump cannot tell a never-written slot from a sample of zeros.
"""

from __future__ import annotations

import os

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simbaflow.core.atomic import atomic_path
from simbaflow.core.errors import SimbaflowError

BEGIN = "begin record"
END = "end record"
METADATA_KEY = b"simbaflow.record"
FIRST_SLOT_UNWRITTEN = "first_slot_unwritten"
REPEATED_LAST_WORD = "repeated_last_word"
BUFFER = "buffer"
RING_INDEX = "ring_index"
TIME_COLUMN = "time_column"
TIME_NAME = "time"

_HEX_WORD = re.compile(r"[0-9a-fA-F]{8}")
# "## 12" (ScopeMimicry >= 2024-07), "# 12" (older dumps, and OwnTech's decoded
# files, which drop the first '#'), " 12" (decoded files of older dumps).
_CONSOLE_INDEX = re.compile(r"#{1,2}\s*(\d+)")
_DECODED_INDEX = re.compile(r"(?:#+\s*|\s+)(\d+)")


class RecordError(SimbaflowError):
    """A capture or record file is not what a ScopeMimicry dump looks like."""


@dataclass(frozen=True)
class Record:
    """One ScopeMimicry record, rows in time order (buffer order when unknown), quirks corrected.

    Attributes
    ----------
    names : tuple of str
        Channel names as the firmware connected them.
    values : ndarray, shape (n_samples, n_channels)
        Samples, oldest first. NaN marks a value the dump lost.
    position : ndarray of int, shape (n_samples,)
        Position of each row in the full buffer, in time order (``ring_index``,
        ``time_column``) or slot order (``buffer``); rows dropped as never
        written leave gaps at the start. Without a time column, ``time_s`` is
        ``position * ts_s``.
    final_index : int or None
        Index line as dumped, None if the dump had none.
    quirks : tuple of str
        Quirk codes detected and corrected (see the module docstring).
    layout : str
        ``buffer``, ``ring_index`` or ``time_column`` (see the module docstring).
    time_s : ndarray or None
        The dump's own time column (``time_column`` layout), else None.
    notes : tuple of str
        What the dump cannot tell, said once per record (kept in the metadata).
    source : str
        The capture file (or a label) the record was read from.
    record_number : int
        1-based position of the record among the records begun in the capture.
    first_line, last_line : int
        1-based lines of the capture the record spans.
    """

    names: tuple[str, ...]
    values: np.ndarray
    position: np.ndarray
    final_index: int | None
    quirks: tuple[str, ...]
    source: str
    record_number: int
    first_line: int
    last_line: int
    layout: str = RING_INDEX
    time_s: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    @property
    def ts_s(self) -> float | None:
        """Sampling period the time column gives, None without one."""
        if self.time_s is None or self.time_s.size < 2:
            return None
        return float((self.time_s[-1] - self.time_s[0]) / (self.time_s.size - 1))


@dataclass(frozen=True)
class Capture:
    """What one capture held: the records read whole, and why the others were not.

    Attributes
    ----------
    records : list of Record
    problems : list of RecordError
        One per rejected record, each naming the line and what was expected.
    n_begun : int
        Records the capture began, read or not.
    """

    records: list[Record]
    problems: list[RecordError]
    n_begun: int


def _clean(line: str) -> str:
    return line.rstrip("\r").strip()


def _show(text: str) -> str:
    """Quote a line for a message, short and printable."""
    shown = text if len(text) <= 40 else text[:37] + "..."
    return repr(shown)


#: Most lines one record may span (a SPIN's ScopeMimicry buffer holds a few thousand words).
MAX_RECORD_LINES = 4_000_000
#: Largest decoded record file (one record, read whole).
MAX_DECODED_BYTES = 64 * 1024 * 1024


def _lines(handle) -> Iterator[str]:
    """The lines of a binary file, decoded one at a time (serial noise replaced, line numbers kept)."""
    for raw in handle:
        yield raw.decode("utf-8", errors="replace").rstrip("\n")


def read_capture(path: str | Path) -> Capture:
    """Read a console capture or a decoded record file.

    A console capture is read line by line, so memory follows the records it
    holds, not the length of the chatter around them.

    Parameters
    ----------
    path : str or Path
        Raw serial capture, or an OwnTech decoded ``*-record.txt`` file.

    Returns
    -------
    Capture

    Raises
    ------
    RecordError
        The file cannot be read, or holds nothing that looks like a record.
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read the capture ({exc.strerror or exc})") from None
    with handle:
        if any(_clean(line) == BEGIN for line in _lines(handle)):
            handle.seek(0)
            return _parse_console(_lines(handle), str(path))
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_DECODED_BYTES:
            raise RecordError(f"{path}: {size} bytes with no 'begin record' line; a decoded record file is at "
                              f"most {MAX_DECODED_BYTES} bytes")
        handle.seek(0)
        # Serial noise is not valid UTF-8; replacing keeps line numbers intact.
        text = handle.read().decode("utf-8", errors="replace")
    return parse_capture(text, source=str(path))


def parse_capture(text: str, source: str = "<capture>") -> Capture:
    """Parse the text of a console capture or of a decoded record file.

    Parameters
    ----------
    text : str
        The whole capture. ``\\r\\n`` and ``\\n`` line ends are both accepted.
    source : str
        Name used in messages and metadata.

    Returns
    -------
    Capture
        Every record read whole; every other record as a problem. Text with
        no ``begin record`` line is read as a decoded record file, and if it
        is not one, that is the one problem.
    """
    lines = text.split("\n")
    if any(_clean(line) == BEGIN for line in lines):
        return _parse_console(lines, source)
    try:
        return Capture([_parse_decoded(lines, source)], [], 1)
    except RecordError as exc:
        return Capture([], [exc], 1)


def _parse_console(lines: Iterable[str], source: str) -> Capture:
    records: list[Record] = []
    problems: list[RecordError] = []
    number = 0
    body: list[tuple[int, str]] | None = None
    begin_line = n = 0
    last_text = ""
    for n, line in enumerate(lines, start=1):
        last_text = line
        text = _clean(line)
        if text == BEGIN:
            if body is not None:
                problems.append(RecordError(
                    f"{source}, line {n}: expected 'end record' for the record begun at "
                    f"line {begin_line} before the next 'begin record' (record truncated)"
                ))
            number += 1
            body, begin_line = [], n
        elif body is None:
            continue  # console chatter between records
        elif text == END:
            try:
                records.append(_console_record(body, source, number, begin_line, n))
            except RecordError as exc:
                problems.append(exc)
            body = None
        elif len(body) >= MAX_RECORD_LINES:
            problems.append(RecordError(
                f"{source}, line {n}: the record begun at line {begin_line} runs past {MAX_RECORD_LINES} lines "
                "without 'end record'; a ScopeMimicry record is far shorter (is 'end record' missing?)"
            ))
            body = None
        else:
            body.append((n, text))
    if body is not None:
        last = n if last_text else n - 1
        problems.append(RecordError(
            f"{source}, line {last}: expected 'end record' for the record begun at "
            f"line {begin_line}, but the capture ends (truncated)"
        ))
    return Capture(records, problems, number)


def _console_record(
    body: list[tuple[int, str]], source: str, number: int, begin_line: int, end_line: int
) -> Record:
    body = [(n, t) for n, t in body if t]
    if not body or not body[0][1].startswith("#") or _CONSOLE_INDEX.fullmatch(body[0][1]):
        where = body[0][0] if body else end_line
        found = _show(body[0][1]) if body else "'end record'"
        raise RecordError(
            f"{source}, line {where}: expected the channel names line '#name1,name2,...,' "
            f"after 'begin record' at line {begin_line}, found {found}"
        )
    names_line, names_text = body[0]
    names, time_column = _split_names(names_text[1:], source, names_line)
    rest = body[1:]
    final_index = None
    index_line = names_line
    if rest and (match := _CONSOLE_INDEX.fullmatch(rest[0][1])):
        index_line = rest[0][0]
        final_index = _index(match.group(1), source, index_line)
        rest = rest[1:]
    words = []
    for lineno, text in rest:
        if not _HEX_WORD.fullmatch(text):
            raise RecordError(
                f"{source}, line {lineno}: expected an 8-digit hex word (IEEE-754 float bits) "
                f"or 'end record' in the record begun at line {begin_line}, found {_show(text)}"
            )
        words.append(int(text, 16))
    bits = np.array(words, dtype=np.uint32)
    return _assemble(
        names, bits, final_index, index_line, source, number, begin_line, end_line, time_column
    )


def _index(digits: str, source: str, lineno: int) -> int:
    # ScopeMimicry prints a uint16_t; refuse before int() meets a huge digit string.
    if len(digits) > 5:
        raise RecordError(
            f"{source}, line {lineno}: expected a ring-buffer index below 65536, "
            f"found a {len(digits)}-digit number"
        )
    return int(digits)


def _split_names(text: str, source: str, lineno: int) -> tuple[tuple[str, ...], bool]:
    """Channel names, and whether the first column is dump_datas()'s time."""
    # "name," per channel (one trailing comma), or since 2025-11 "time,a,b" without it.
    parts = text[:-1].split(",") if text.endswith(",") else text.split(",")
    names = tuple(p.strip() for p in parts)
    time_column = len(names) > 1 and names[0] == TIME_NAME
    names = names[1:] if time_column else names
    if not names or any(not n for n in names):
        raise RecordError(
            f"{source}, line {lineno}: expected comma-separated channel names "
            f"'name1,name2,...,' with no empty name, found {_show(text)}"
        )
    if len(set(names)) != len(names) or "time_s" in names:
        raise RecordError(
            f"{source}, line {lineno}: expected distinct channel names other than 'time_s', "
            f"found {_show(text)}"
        )
    return names, time_column


def _parse_decoded(lines: list[str], source: str) -> Record:
    numbered = [(k + 1, _clean(line)) for k, line in enumerate(lines)]
    body = [(n, t) for n, t in numbered if t]
    # Index lines are matched before stripping, as a leading space is their mark.
    raw = {k + 1: line.rstrip() for k, line in enumerate(lines)}
    if not body or "," not in body[0][1]:
        where = body[0][0] if body else 1
        found = _show(body[0][1]) if body else "an empty file"
        raise RecordError(
            f"{source}, line {where}: expected 'begin record' (console capture) or a channel "
            f"names line 'name1,name2,...,' (decoded record file), found {found}"
        )
    names_line, names_text = body[0]
    names, time_column = _split_names(names_text.lstrip("#"), source, names_line)
    rest = body[1:]
    final_index = None
    index_line = names_line
    if rest and (match := _DECODED_INDEX.fullmatch(raw[rest[0][0]])):
        index_line = rest[0][0]
        final_index = _index(match.group(1), source, index_line)
        rest = rest[1:]
    values = []
    for lineno, text in rest:
        try:
            values.append(float(text))
        except ValueError:
            raise RecordError(
                f"{source}, line {lineno}: expected one decimal float per line in a decoded "
                f"record file, found {_show(text)}"
            ) from None
    # float32 round-trips exactly through the decimal text OwnTech writes.
    with np.errstate(over="ignore"):
        bits = np.array(values, dtype=np.float32).view(np.uint32)
    last_line = rest[-1][0] if rest else index_line
    return _assemble(
        names, bits, final_index, index_line, source, 1, names_line, last_line, time_column
    )


def _assemble(
    names: tuple[str, ...],
    bits: np.ndarray,
    final_index: int | None,
    index_line: int,
    source: str,
    number: int,
    first_line: int,
    last_line: int,
    time_column: bool = False,
) -> Record:
    """Reshape the words and put them in time order by the rules of the record's layout."""
    n_columns = len(names) + time_column
    where = f"{source}, record at lines {first_line}-{last_line}"
    if bits.size == 0:
        raise RecordError(f"{where}: expected sample words after the header, found none")
    if bits.size % n_columns:
        what = f"time + {len(names)} channels" if time_column else f"{n_columns} channels"
        raise RecordError(
            f"{where}: expected a multiple of its {what} in sample words, "
            f"found {bits.size} (a word was lost or added in transfer)"
        )
    length = bits.size // n_columns
    common = dict(names=names, final_index=final_index, source=source, record_number=number,
                  first_line=first_line, last_line=last_line)
    if time_column:
        return _time_column_record(bits.reshape(length, n_columns), where, common)
    if final_index is not None and final_index >= length:
        raise RecordError(
            f"{source}, line {index_line}: expected a ring-buffer index below the record's "
            f"{length} samples, found {final_index}"
        )
    bits = bits.reshape(length, n_columns)
    values = bits.view(np.float32).astype(np.float64)
    if final_index is None:
        # No index: the slots' time order is unknown; slot 0 first, nothing dropped.
        notes = []
        if np.all(bits[0] == 0):
            notes.append(
                "row 0 (slot 0) is all zero words: ScopeMimicry up to 2024-07 never writes slot 0 "
                "before the buffer wraps, later versions write it first; kept, the dump cannot tell"
            )
        return Record(values=values, position=np.arange(length), quirks=(), layout=BUFFER,
                      notes=tuple(notes), **common)

    flat = bits.ravel()
    # 6f49b72's dump_datas() prints its next-to-last word twice. Two zero words
    # are its mark only if the last slot leads the time order (never written
    # with the oldest slots): a later library, dumped before its buffer filled,
    # leaves a zero tail behind a written slot 0 and final index length-1.
    repeated = bits.size >= 2 and flat[-1] == flat[-2] and (
        flat[-1] != 0 or final_index < length - 1
    )
    unknown = np.zeros(bits.shape, dtype=bool)
    unknown[-1, -1] = repeated
    values[unknown] = np.nan
    # Oldest sample sits just after the last written slot.
    start = (final_index + 1) % length
    order = np.roll(np.arange(length), -start)
    # A stale last word cannot tell whether its slot was written: let it pass as zero.
    zero_row = np.all((bits == 0) | unknown, axis=1)[order]
    slot0_at = int(np.flatnonzero(order == 0)[0])
    unwritten = int(slot0_at + 1) if np.all(zero_row[: slot0_at + 1]) else 0
    notes = []
    # Only the library that repeats its last word also advanced before writing.
    keep_from = unwritten if repeated else 0
    if unwritten and not repeated:
        notes.append(
            f"the {unwritten} oldest rows (through slot 0) are all zero words, as ScopeMimicry "
            "up to 2024-07 leaves never-written slots; kept, as this dump has no repeated last word "
            "to tell that library version"
        )
    if keep_from >= length:
        raise RecordError(f"{where}: expected written samples, found only never-written slots")
    quirks = []
    if keep_from:
        quirks.append(FIRST_SLOT_UNWRITTEN)
    # Two zero words in a never-written last slot repeat nothing that was kept.
    if repeated and int(np.flatnonzero(order == length - 1)[0]) >= keep_from:
        quirks.append(REPEATED_LAST_WORD)
    return Record(
        values=values[order][keep_from:],
        position=np.arange(keep_from, length),
        quirks=tuple(quirks),
        layout=RING_INDEX,
        notes=tuple(notes),
        **common,
    )


def _time_column_record(bits: np.ndarray, where: str, common: dict) -> Record:
    """Rows of dump_datas() since 2025-11: time word, then channel words, oldest first."""
    table = bits.view(np.float32).astype(np.float64)
    time_s = table[:, 0]
    if not np.all(np.isfinite(time_s)):
        k = int(np.flatnonzero(~np.isfinite(time_s))[0])
        raise RecordError(f"{where}: expected a finite time word in sample {k}, found {time_s[k]}")
    if time_s.size > 1:
        step = np.diff(time_s)
        mean_step = (time_s[-1] - time_s[0]) / (time_s.size - 1)
        # float32 words of (k - n_pretrig) * Ts: steady to far better than 0.1 %.
        bad = np.flatnonzero(~(np.abs(step - mean_step) <= 1e-3 * abs(mean_step)) | (step <= 0))
        if bad.size:
            k = int(bad[0]) + 1
            raise RecordError(
                f"{where}: expected the time column of dump_datas() to rise by a steady Ts, "
                f"found {time_s[k - 1]:.9g} s then {time_s[k]:.9g} s at sample {k}"
            )
    return Record(
        values=table[:, 1:],
        position=np.arange(time_s.size),
        quirks=(),
        layout=TIME_COLUMN,
        time_s=time_s,
        **common,
    )


def record_frame(record: Record, ts_s: float | None = None) -> pd.DataFrame:
    """Return the record as a table: ``time_s`` then one column per channel.

    Parameters
    ----------
    record : Record
    ts_s : float, optional
        Sampling period, normally the control period; not used when the record
        has its own time column, required otherwise.
    """
    frame = pd.DataFrame(record.values, columns=list(record.names))
    if record.time_s is not None:
        time_s = record.time_s
    elif ts_s is None:
        raise RecordError(f"{record.source}: record {record.record_number} has no time column: give ts_s")
    else:
        time_s = record.position * ts_s
    frame.insert(0, "time_s", time_s)
    return frame


def write_record(
    path: str | Path, record: Record, ts_s: float | None = None, study: str | None = None
) -> dict:
    """Write a record to Parquet atomically, with its metadata.

    Parameters
    ----------
    path : str or Path
    record : Record
    ts_s : float, optional
        Sampling period, seconds; ignored when the record has a time column.
    study : str, optional
        Study the record belongs to.

    Returns
    -------
    dict
        The metadata stored under the ``simbaflow.record`` key.
    """
    frame = record_frame(record, ts_s)
    has_time = record.time_s is not None
    meta = {
        "source": record.source,
        "record_number": record.record_number,
        "lines": [record.first_line, record.last_line],
        "layout": record.layout,
        "order": "buffer (ring position not dumped)" if record.layout == BUFFER else "time",
        "time_source": "time column" if has_time else "ts_s",
        "final_index": record.final_index,
        "quirks": list(record.quirks),
        "notes": list(record.notes),
        "ts_s": record.ts_s if has_time else ts_s,
        "study": study,
        "channels": list(record.names),
    }
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[METADATA_KEY] = json.dumps(meta).encode()
    table = table.replace_schema_metadata(schema_meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return meta


def read_record(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a record written by :func:`write_record`.

    Returns
    -------
    frame : DataFrame
        ``time_s`` and one column per channel.
    meta : dict
        The record metadata.

    Raises
    ------
    RecordError
        The file is missing, not Parquet, or not a simbaflow record.
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordError(f"{path}: expected a record Parquet file ({exc})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None or "time_s" not in table.column_names:
        raise RecordError(
            f"{path}: expected a record written by 'simbaflow records import' "
            "(a time_s column and simbaflow.record metadata)"
        )
    return table.to_pandas(), json.loads(raw)

"""PlatformIO monitor filter ``recorded_datas``: save each ScopeMimicry record as it arrives.

Put this file in the ``monitor/`` directory of the PlatformIO project and add
``monitor_filters = recorded_datas`` to ``platformio.ini``. When the firmware
dumps its scope (``begin record`` ... ``end record``, key ``r`` in the OwnTech
examples), the record is written, whole or not at all, to
``YYYY-MM-DD_HH-MM-SS-record.txt`` in the project directory: the channel names
line, ``# <last written slot>``, then one decimal float per sample. That is the
layout OwnTech's plot scripts read, and ``simbaflow records import`` reads it
too. A line that is not a hex word is kept as it came, so the import can point
at it. The console shows everything unchanged.

PlatformIO loads this file in its own Python: it uses the standard library only.
"""

import os
import struct
import tempfile
from datetime import datetime

from platformio.public import DeviceMonitorFilterBase

BEGIN = "begin record"
END = "end record"


def decode_line(line):
    """Turn one dumped line into the decoded file's line."""
    if line.startswith("#"):
        body = line.lstrip("#").strip()
        # "## 37" / "# 37" is the ring-buffer index; anything else is the names line.
        return f"# {body}" if body.isdigit() else line[1:]
    if len(line) == 8:
        try:
            return str(struct.unpack(">f", bytes.fromhex(line))[0])
        except (ValueError, struct.error):
            pass
    return line


def save_record(directory, lines, now=None):
    """Write one record's decoded lines atomically; return the file's path.

    The name is ``YYYY-MM-DD_HH-MM-SS-record.txt``; a second record within the
    same second gets ``-2``, ``-3``, ... before ``.txt`` instead of replacing it.
    """
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    path = os.path.join(directory, f"{stamp}-record.txt")
    n = 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(directory, f"{stamp}-record-{n}.txt")
    fd, tmp = tempfile.mkstemp(prefix=".record-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="\n") as f:
            f.write("".join(decode_line(line) + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


class RecordedDatas(DeviceMonitorFilterBase):
    """Collect the lines between ``begin record`` and ``end record``; save each record."""

    NAME = "recorded_datas"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._partial = ""  # text after the last line end seen
        self._record = None  # lines of the record being received; None between records

    def rx(self, text):
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._take(line.strip())
        return text

    def tx(self, text):
        return text

    def _take(self, line):
        if line == BEGIN:
            if self._record is not None:
                print("\n[recorded_datas] record dropped: 'begin record' came before 'end record'")
            self._record = []
        elif self._record is None:
            return
        elif line == END:
            directory = self.project_dir or os.getcwd()
            try:
                path = save_record(directory, self._record)
                print(f"\n[recorded_datas] saved {path} ({len(self._record)} lines)")
            except OSError as exc:
                # The monitor must keep running even when the disk refuses the file.
                print(f"\n[recorded_datas] could not save the record in {directory}: {exc}")
            self._record = None
        else:
            self._record.append(line)

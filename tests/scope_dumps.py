"""Captures built by the rules of the C code that prints them, not by the importer's model.

Each class plays one ScopeMimicry version's ``acquire()`` on float32 memory, and
each ``*_dump`` function prints that memory as the named C code does, one
``printk`` chunk at a time, so line ends are the console's:

- ``Scope2024``: owntech-foundation/scopemimicry 6f49b72 (2024-07-09, what OwnTech's
  ``lib_deps`` fetch): memory zeroed; on a rising trigger the stop slot is
  ``(counter + length - delay - 1) % length``; while the counter is not the stop
  slot, ``acquire()`` advances the counter, *then* writes that slot; at the stop
  slot it sets ``final_idx`` to it. ``dump_datas()``: ``#``, ``name,`` per
  channel, ``\\n``, ``## final_idx``, then the first ``n - 1`` words; the call
  that ends the dump returns the previous word's text again.
- ``Scope2025``: pierre-haessig/scopemimicry 05ca5fb (2025-11-20): states
  untriggered / triggered / done; on the trigger at most ``n_pretrig`` samples
  are kept; ``acquire()`` writes the slot, *then* advances; once ``length``
  samples are held it stops with ``final_idx`` = the last written slot.
  ``dump_datas()``: ``#``, ``time,``, the names with a comma between them,
  ``\\n``, ``## length-1``, then per sample k (oldest first) the float32 time
  ``(k - n_pretrig) * Ts`` and the channel words. Version 0.3 (``Scope::dump``)
  prints the same without the ``##`` line.
- ``example_dump``: ``dump_scope_datas()`` of the OwnTech client/server example
  (seed 000): ``begin record``, ``#``, ``name,`` per channel, ``\\n``, every word
  of the raw buffer, ``end record``; no index.
- ``firmware_ring_dump``: this repository's ``firmware/src/main.cpp``: as the
  example, plus ``# final_idx`` after the names.
- ``fixed_ring_dump``: ``dump_datas()`` between the 2025-04-09 fix and 2025-11:
  names with trailing commas, ``## final_idx``, every word.
"""

from __future__ import annotations

import numpy as np


def word(value) -> str:
    """``printk("%08x", *(uint32_t *)&f)`` of a float32."""
    return f"{int(np.float32(value).view(np.uint32)):08x}"


def console(chunks: list[str], newline: str) -> str:
    """What the serial console shows of printk chunks (Zephyr turns \\n into \\r\\n)."""
    return "".join(chunks).replace("\n", newline)


class Scope2024:
    """ScopeMimicry 6f49b72: advance, then write."""

    def __init__(self, length: int, n_channels: int, delay: float = 0.0):
        self.length = length
        self.memory = np.zeros((length, n_channels), dtype=np.float32)
        self.counter = 0
        self.old_trigger = False
        self.triggered = False
        self.stop_slot = length
        self.final_idx = length - 1
        self.delay = min(int(delay * length), length) if delay > 0 else 0

    def start(self) -> None:
        self.triggered = False
        self.old_trigger = False

    def acquire(self, values, trigger: bool = True) -> None:
        if not self.old_trigger and trigger and not self.triggered:
            self.triggered = True
            self.stop_slot = (self.counter + self.length - self.delay - 1) % self.length
        self.old_trigger = trigger
        if not self.triggered:
            self.stop_slot = -1
        if self.counter != self.stop_slot:
            self.counter = (self.counter + 1) % self.length
            self.memory[self.counter] = values
        else:
            self.final_idx = self.counter

    def dump_datas(self, names, newline: str = "\r\n") -> str:
        """The application's loop: begin record, dump_datas() until finished, end record."""
        words = [word(v) for v in self.memory.ravel()]
        chunks = ["begin record\n", "#"] + [f"{n}," for n in names] + ["\n", f"## {self.final_idx}\n"]
        chunks += [w + "\n" for w in words[:-1]]
        chunks.append(words[-2] + "\n")  # the stale text of the previous call
        chunks.append("end record\n")
        return console(chunks, newline)


class Scope2025:
    """ScopeMimicry 05ca5fb: write, then advance; stops once ``length`` samples are held."""

    def __init__(self, length: int, n_channels: int, ts_s: float, n_pretrig: int = 0):
        self.length = length
        self.ts = np.float32(ts_s)
        self.n_pretrig = n_pretrig
        self.memory = np.zeros((length, n_channels), dtype=np.float32)
        self.state = "untrig"
        self.count = 0
        self.slot = 0
        self.final_idx = length - 1

    def acquire(self, values, trigger: bool = True) -> None:
        if self.state == "untrig" and trigger:
            self.state = "trig"
            self.count = min(self.count, self.n_pretrig)
        if self.state == "trig" and self.count == self.length:
            self.state = "done"
            self.final_idx = (self.slot + self.length - 1) % self.length
        if self.state == "done":
            return
        self.memory[self.slot] = values
        self.slot = (self.slot + 1) % self.length
        self.count = min(self.count + 1, self.length)

    def time_words(self) -> list[float]:
        return [np.float32(k - self.n_pretrig) * self.ts for k in range(self.length)]

    def dump_datas(self, names, newline: str = "\r\n", index_line: bool = True) -> str:
        chunks = ["begin record\n", "#", "time,"]
        chunks += [n + ("," if i < len(names) - 1 else "") for i, n in enumerate(names)]
        chunks.append("\n")
        if index_line:
            chunks.append(f"## {self.length - 1}\n")
        for k, t in enumerate(self.time_words()):
            chunks.append(word(t) + "\n")
            row = self.memory[(k + self.final_idx + 1) % self.length]
            chunks += [word(v) + "\n" for v in row]
        chunks.append("end record\n")
        return console(chunks, newline)


def example_dump(names, memory, newline: str = "\r\n") -> str:
    """The client/server example's dump_scope_datas(): names, then the raw buffer."""
    chunks = ["begin record\n", "#"] + [f"{n}," for n in names] + ["\n"]
    chunks += [word(v) + "\n" for v in np.asarray(memory, dtype=np.float32).ravel()]
    chunks.append("end record\n")
    return console(chunks, newline)


def firmware_ring_dump(names, memory, final_idx: int, newline: str = "\r\n") -> str:
    """firmware/src/main.cpp's dump_scope(): names, '# final_idx', the raw buffer."""
    chunks = ["begin record\n#"] + [f"{n}," for n in names] + [f"\n# {final_idx}\n"]
    chunks += [word(v) + "\n" for v in np.asarray(memory, dtype=np.float32).ravel()]
    chunks.append("end record\n")
    return console(chunks, newline)


def fixed_ring_dump(names, memory, final_idx: int, newline: str = "\r\n") -> str:
    """dump_datas() from 2025-04-09 to 2025-11: '## final_idx', every word printed."""
    chunks = ["begin record\n", "#"] + [f"{n}," for n in names] + ["\n", f"## {final_idx}\n"]
    chunks += [word(v) + "\n" for v in np.asarray(memory, dtype=np.float32).ravel()]
    chunks.append("end record\n")
    return console(chunks, newline)


def owntech_decoded(text: str) -> str:
    """OwnTech's monitor filter (examples' filter_recorded_datas.py) on one console record.

    Lines with '#' lose their first character; hex words become ``str(float)``.
    """
    out = []
    body = text.replace("\r\n", "\n").split("begin record\n", 1)[1].split("end record", 1)[0]
    for line in body.split("\n")[:-1]:
        if "#" in line:
            out.append(line[1:])
        else:
            out.append(str(float(np.uint32(int(line, 16)).view(np.float32))))
    return "\n".join(out) + "\n"

"""Peak memory and time of `simbaflow records import` on a large console capture.

The capture is mostly console chatter with a few ScopeMimicry records (the
example's raw dump layout: names line, then %08x words), as a long serial log
is. Prints the capture size, wall time and the import process's peak RSS.

    .venv/bin/python benchmarks/bench_records.py [--mb 200]
"""

from __future__ import annotations

import argparse
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_capture(path: Path, megabytes: int) -> int:
    chatter = ("I1_low=1.2345 V1_low=12.345 duty=0.5000 state=POWER ... " * 2 + "\n").encode()
    record = ["begin record", "#I1_low,V1_low,"]
    record += [f"{struct.unpack('<I', struct.pack('<f', 0.001 * k))[0]:08x}" for k in range(2 * 1024)]
    record = ("\n".join(record + ["end record"]) + "\n").encode()
    target = megabytes * 1024 * 1024
    with open(path, "wb") as out:
        written = 0
        block = chatter * 10_000
        for k in range(3):
            out.write(record)
            written += len(record)
            while written < (k + 1) * target // 3:
                out.write(block)
                written += len(block)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        capture = Path(work) / "capture.txt"
        size = write_capture(capture, args.mb)
        started = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "simbaflow", "records", "import", str(capture),
                              "--ts-s", "1e-4", "--out", str(Path(work) / "rec.parquet")],
                             capture_output=True, text=True)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if res.returncode != 0:
            sys.exit(res.stderr)
        records = len(list(Path(work).glob("rec-*.parquet")))
        print(f"records import: capture {size / 2**20:.0f} MB ({records} records in chatter), "
              f"{wall:.1f} s, peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()

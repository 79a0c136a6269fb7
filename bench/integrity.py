"""What the integrity checks cost on a real run: reads with and without parquet page checksum
verification, writes with and without page checksums, and the sha256 the manifest records.

    python bench/integrity.py RUN_DIR [--repeats 7]

RUN_DIR is a finished run, e.g. ``/tmp/x/synthetic`` from ``python -m pipeline run synthetic --runs
/tmp/x --epochs 2``. Each timing is the median of ``--repeats`` reads of a page-cache-warm file
(what a dashboard worker sees), alternating the two settings so that load on the machine hits both.
Nothing in RUN_DIR is changed (rewrites go to a temporary folder).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from pipeline.runformat import Run, file_digest  # noqa: E402
from pipeline.runformat.writer import _encoding  # noqa: E402


def _median_pair(first, second, repeats: int) -> tuple[float, float]:
    """Median seconds of ``first()`` and of ``second()``, run alternately."""
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((first, a), (second, b)):
            clock = time.perf_counter()
            fn()
            out.append(time.perf_counter() - clock)
    return statistics.median(a), statistics.median(b)


def _read(path: Path, verify: bool, columns=None):
    def read():
        with pa.memory_map(str(path)) as source:
            pq.read_table(source, columns=columns, page_checksum_verification=verify)
    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    run = Run(args.run)
    load = os.getloadavg()
    print(f"run {run.run_id}: cpus {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    h = args.run / "steps" / "layer0-h.parquet"
    tables = [("steps/layer0-h.parquet, every column", h, None),
              ("steps/layer0-h.parquet, 3 units", h, ["example_id", "t", "u0", "u1", "u2"]),
              ("steps/predictions.parquet", args.run / "steps" / "predictions.parquet", None),
              ("examples.parquet", args.run / "examples.parquet", None)]
    print(f"\n{f'read (median of {args.repeats})':<40}{'plain ms':>10}{'verified ms':>13}{'ratio':>8}")
    for label, path, columns in tables:
        if not path.is_file():
            continue
        _read(path, True, columns)()                  # warm the page cache
        plain, verified = _median_pair(_read(path, False, columns), _read(path, True, columns), args.repeats)
        print(f"{label:<40}{plain * 1e3:>10.1f}{verified * 1e3:>13.1f}{verified / plain:>8.2f}")
    clock = time.perf_counter()
    run.step_matrix(0, "h")
    print(f"{'Run.step_matrix(0, h) (verified)':<40}{'':>10}{(time.perf_counter() - clock) * 1e3:>13.1f}")

    table = pq.read_table(h)
    with tempfile.TemporaryDirectory(prefix="lstm-lens-bench-integrity-") as folder:
        options = _encoding(table.schema)
        without = {**options, "write_page_checksum": False}
        plain, verified = _median_pair(lambda: pq.write_table(table, Path(folder) / "a.parquet", **without),
                                       lambda: pq.write_table(table, Path(folder) / "b.parquet", **options),
                                       max(3, args.repeats // 2))
        sizes = (Path(folder) / "a.parquet").stat().st_size, (Path(folder) / "b.parquet").stat().st_size
    print(f"\nwrite steps/layer0-h.parquet: {plain * 1e3:.0f} ms without page checksums, "
          f"{verified * 1e3:.0f} ms with ({verified / plain:.2f}x); size {sizes[0]:,} -> {sizes[1]:,} bytes")

    files = [p for p in args.run.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    data = h.read_bytes()
    speeds = {}
    for name in ("sha256", "blake2b", "md5"):
        clock = time.perf_counter()
        hashlib.new(name, data).hexdigest()
        speeds[name] = len(data) / (time.perf_counter() - clock) / 1e6
    clock = time.perf_counter()
    for path in files:
        file_digest(path)
    seconds = time.perf_counter() - clock
    stages = sum(float(r.get("seconds") or 0) for r in run.manifest.stages.values())
    print(f"digests: sha256 of all {len(files)} files ({total / 1e6:.1f} MB) {seconds:.2f} s "
          f"({total / seconds / 1e6:.0f} MB/s; the stages took {stages:.0f} s); hashlib on one file: "
          + ", ".join(f"{name} {speed:.0f} MB/s" for name, speed in speeds.items()))


if __name__ == "__main__":
    main()

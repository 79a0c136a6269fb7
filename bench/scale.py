"""Select & match over a stream too big for one process's memory, answered through Dask.

    python bench/scale.py                      # 50,000,000 steps x 64 cells (12.8 GB of float32)
    python bench/scale.py --steps 5000000      # a smaller stream for a quick look

The stream is generated once, streamed to disk in bounded memory as a partitioned parquet dataset
(``<data>/steps-<N>-cells-<D>/layer0-h.parquet/part-*.parquet``, one part file per
``--part-rows`` steps, the layout ``python -m pipeline import --partition-rows`` writes) and
reused on later runs. Cells switch on and off in runs of a few to a few hundred steps, with noise.

Then a selection is matched three ways and the answers compared:
  1. the whole stream on a LocalCluster (2 worker processes, 1 thread each, ``--memory-limit``
     each), one task per part file: wall time and each worker's peak resident memory;
  2. the first tenth of the stream (10x smaller) on the same cluster;
  3. that tenth in this process with the single-machine engine, for comparison.
The machine is shared: the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import distributed, runformat  # noqa: E402
from pipeline.analysis import match  # noqa: E402

SEED = 0


def generate(folder: Path, steps: int, cells: int, part_rows: int) -> Path:
    """Write the stream once (reused when its description matches); returns the dataset folder."""
    dataset = folder / "layer0-h.parquet"
    description = {"steps": steps, "cells": cells, "part_rows": part_rows, "seed": SEED, "version": 1}
    done = folder / "done.json"
    if done.is_file() and json.loads(done.read_text()) == description and dataset.is_dir():
        print(f"data: reusing {dataset}")
        return dataset
    raw = steps * cells * 4
    free = shutil.disk_usage(folder.parent if folder.parent.exists() else "/").free
    if free < 1.1 * raw:
        raise SystemExit(f"not enough free disk for {raw / 1e9:.1f} GB at {folder} ({free / 1e9:.1f} GB free); "
                         f"use --data elsewhere or fewer --steps")
    folder.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    rng = np.random.default_rng(SEED)
    mean_run = rng.uniform(3, 300, cells)          # each cell has its own typical on/off run length
    started = time.perf_counter()
    columns = runformat.unit_columns(cells)
    sink = runformat.TableSink(dataset, part_rows)
    for r0 in range(0, steps, part_rows):
        n = min(part_rows, steps - r0)
        block = rng.standard_normal((n, cells), dtype=np.float32)
        block *= np.float32(0.05)
        for j in range(cells):
            runs = rng.geometric(1 / mean_run[j], n // 2 + 2)
            runs = runs[:int(np.searchsorted(np.cumsum(runs), n)) + 1]
            block[:, j] += np.repeat(rng.uniform(-1, 1, len(runs)).astype(np.float32), runs)[:n]
        t = np.arange(r0, r0 + n)
        sink.write(r0, runformat.step_table(np.zeros(n, np.int32), t, block, columns))
        del block
        done_rows = r0 + n
        rate = done_rows / (time.perf_counter() - started)
        print(f"\rdata: {done_rows:,} / {steps:,} steps written ({rate:,.0f} steps/s)", end="", flush=True)
    sink.close()
    print()
    done.write_text(json.dumps(description))
    return dataset


def tenth_of(dataset: Path) -> Path:
    """The first tenth of the part files as a dataset of its own (links, no copy)."""
    parts = sorted(dataset.iterdir())[:max(1, len(list(dataset.iterdir())) // 10)]
    folder = dataset.parent / "first-tenth.parquet"
    if folder.is_dir() and sorted(p.name for p in folder.iterdir()) == [p.name for p in parts]:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for part in parts:
        (folder / part.name).symlink_to(part.resolve())
    return folder


class MemorySampler:
    """Peak resident memory of this process while it runs: sampled every 20 ms by a thread.

    (``ru_maxrss`` would not do: it is a lifetime peak, and a worker process inherits its parent's.)
    """

    def __init__(self):
        import threading

        import psutil
        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def stop(self) -> tuple[float, float]:
        """(MiB at start, peak MiB)."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return self.start / 2**20, self.peak / 2**20


def start_sampling(dask_worker=None):
    dask_worker.lens_memory = MemorySampler()


def stop_sampling(dask_worker=None):
    return dask_worker.lens_memory.stop()


def pick_selection(dataset: Path, threshold: float):
    """A short range whose on-cells are a handful (3 to 8): a typical LSTMVis selection."""
    for start in range(1000, 200_000, 997):
        cells = match.select_cells(str(dataset), start, start + 3, threshold)
        if 3 <= len(cells) <= 8:
            return start, cells
    raise SystemExit("no selection with 3 to 8 cells found; try another --threshold")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50_000_000)
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/lstm-lens-scale"),
                        help="where the stream is kept (default: %(default)s)")
    parser.add_argument("--memory-limit", default="3GiB", help="per Dask worker (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--top-k", type=int, default=50)
    args = parser.parse_args(argv)

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    dataset = generate(args.data / f"steps-{args.steps}-cells-{args.cells}", args.steps, args.cells,
                       args.part_rows)
    on_disk = sum(p.stat().st_size for p in dataset.iterdir())
    print(f"data: {args.steps:,} steps x {args.cells} cells, {args.steps * args.cells * 4 / 1e9:.1f} GB as "
          f"float32, {on_disk / 1e9:.1f} GB on disk in {len(list(dataset.iterdir()))} part files")

    start, cells = pick_selection(dataset, args.threshold)
    print(f"selection: rows {start}..{start + 3}, threshold {args.threshold}, cells {cells.tolist()}")

    from distributed import Client, LocalCluster
    tenth = tenth_of(dataset)
    tenth_rows = match.count_rows(str(tenth))

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=args.memory_limit) as cluster, Client(cluster) as client:
        client.run(start_sampling)
        stats: dict = {}
        tick = time.perf_counter()
        found = distributed.match(dataset, cells, args.threshold, top_k=args.top_k, scheduler=client, stats=stats)
        seconds = time.perf_counter() - tick
        memory = client.run(stop_sampling)
        print(f"\nDask, whole stream ({args.steps:,} steps, {stats['partitions']} tasks on 2 workers, "
              f"memory_limit {args.memory_limit} each):")
        print(f"  {seconds:.1f} s, {args.steps / seconds / 1e6:.2f} M steps/s; {len(found)} matches, best "
              f"{found[0] if found else None}")
        print(f"  rows scanned {stats['rows_scanned']:,}, candidates {stats['candidates_scored']:,}, "
              f"compressed bytes read {stats['bytes_read'] / 1e9:.2f} GB")
        for address in sorted(memory):
            start_mib, peak_mib = memory[address]
            print(f"  worker {address}: peak resident memory {peak_mib:,.0f} MiB during the match "
                  f"(before it {start_mib:,.0f} MiB)")
        tick = time.perf_counter()
        small_dask = distributed.match(tenth, cells, args.threshold, top_k=args.top_k, scheduler=client)
        small_dask_seconds = time.perf_counter() - tick

    sampler = MemorySampler()
    tick = time.perf_counter()
    small_local = match.match(str(tenth), cells, args.threshold, top_k=args.top_k)
    local_seconds = time.perf_counter() - tick
    before, peak = sampler.stop()
    print(f"\n10x smaller stream (the first {tenth_rows:,} steps):")
    print(f"  single machine, in-process: {local_seconds:.1f} s, {tenth_rows / local_seconds / 1e6:.2f} M steps/s, "
          f"peak resident memory {peak:,.0f} MiB (before the match {before:,.0f} MiB)")
    print(f"  Dask, 2 workers:            {small_dask_seconds:.1f} s")
    same = small_dask == small_local
    print(f"  same ranking from both: {same}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Scale past one machine: send extraction and match work to an existing dask.distributed cluster.

Without a scheduler address everything runs in this process, as before; with one
(``--scheduler tcp://host:8786``) the work is cut into independent pieces and each piece runs on a
worker:

- match: one task per row range of the stream (``pipeline.analysis.match``: a partition owns the ranges
  that *start* in it and reads past its edges itself), merged with ``match.merge_matches``; the
  ranking equals the single-machine engine's. Workers read the run's parquet themselves, so the
  run must be on a filesystem every worker sees (the same path), ideally written partitioned
  (``--partition-rows``) so that a task opens only the files of its rows.
- extraction (model imports, and ``pipeline run --scheduler`` for models trained here): one task
  per block of whole sequences (every sequence starts from its own state), computed from NumPy
  weights sent with the task; the results stream back in order and this process writes the run
  (one writer: the run directory stays atomic).
- the projections' paths (``project.draw_paths``): one task per block of steps through the fitted
  encoder or PCA as NumPy layers (``analysis.dense``); the fits themselves, on a sample of
  vectors, stay here.

Dask is imported only when a scheduler is given.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from pipeline.analysis import match as engine

MAX_IN_FLIGHT = 4        # blocks computed ahead of the writer, per worker


@contextlib.contextmanager
def connect(scheduler):
    """A dask.distributed Client for ``scheduler`` (an address or a Client), or None for in-process."""
    if scheduler is None:
        yield None
        return
    from distributed import Client
    if isinstance(scheduler, Client):
        yield scheduler
        return
    client = Client(scheduler, timeout="30s")
    try:
        yield client
    finally:
        client.close()


def ordered_map(function: Callable, items: Iterable, scheduler=None, args: Sequence = ()) -> Iterator:
    """``function(item, *args)`` for each item, results in order; on the cluster when given one.

    At most ``MAX_IN_FLIGHT`` results per worker wait for the consumer, so memory stays bounded
    however many items there are. ``args`` (e.g. weights) are sent to the workers once.
    """
    if scheduler is None:
        for item in items:
            yield function(item, *args)
        return
    with connect(scheduler) as client:
        shared = [client.scatter(a, broadcast=True) if isinstance(a, np.ndarray) and a.nbytes > 1 << 20
                  else a for a in args]
        limit = MAX_IN_FLIGHT * max(1, len(client.scheduler_info().get("workers", {})))
        pending: deque = deque()
        for item in items:
            pending.append(client.submit(function, item, *shared, pure=False))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------------------------------------
# Match

def row_partitions(n_rows: int, rows_per_partition: int) -> list[tuple[int, int]]:
    if rows_per_partition < 1:
        raise ValueError(f"rows_per_partition must be at least 1, got {rows_per_partition}")
    return [(lo, min(lo + rows_per_partition, n_rows)) for lo in range(0, n_rows, rows_per_partition)]


def file_partitions(source) -> list[tuple[int, int]]:
    """One row range per part file of a partitioned dataset (a single file: one range)."""
    import pyarrow.parquet as pq
    path = os.fspath(source)
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet")) \
        if os.path.isdir(path) else [path]
    bounds, row = [], 0
    for f in files:
        n = pq.ParquetFile(f).metadata.num_rows
        bounds.append((row, row + n))
        row += n
    return bounds


def _match_partition(row_range, source, cells, threshold, off_before, off_after, top_k, boundaries,
                     min_length, max_length):
    stats: dict = {}
    found = engine.match(source, cells, threshold, off_before, off_after, top_k, boundaries=boundaries,
                         min_length=min_length, max_length=max_length, row_range=tuple(row_range),
                         stats=stats)
    return found, stats


def match(source, cells, threshold: float, off_before: bool = False, off_after: bool = False,
          top_k: int = 50, *, boundaries=None, min_length: int = engine.DEFAULT_MIN_LENGTH,
          max_length: int | None = None, scheduler=None, partitions: Sequence[tuple[int, int]] | None = None,
          stats: dict | None = None) -> list[engine.Match]:
    """``pipeline.analysis.match.match`` over ``source``; per partition on the cluster when ``scheduler`` is given.

    ``source``: a parquet file or partitioned dataset directory that every worker can open at the
    same path. ``partitions``: row ranges covering the stream (default: one per part file).
    ``stats`` gets the summed engine counters and the number of partitions.
    """
    if scheduler is None:
        return engine.match(source, cells, threshold, off_before, off_after, top_k, boundaries=boundaries,
                            min_length=min_length, max_length=max_length, stats=stats)
    source = os.fspath(source)
    parts = list(partitions) if partitions is not None else file_partitions(source)
    results = list(ordered_map(_match_partition, parts, scheduler,
                               args=(source, np.asarray(cells), threshold, off_before, off_after,
                                     top_k, boundaries, min_length, max_length)))
    if stats is not None:
        stats.clear()
        for _, part_stats in results:
            for key, value in part_stats.items():
                stats[key] = stats.get(key, 0) + value
        stats["partitions"] = len(parts)
    return engine.merge_matches([found for found, _ in results], top_k)

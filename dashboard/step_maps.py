"""Big per-step tables as memory maps in the shared cache folder: one copy for every worker.

Read whole into a worker, a gate table of a 30,000-sign run (1.62M steps x 100 units) took 648 MB
as float32, and the gate cells of one filter peaked at 4.1 GB (16.5 s). Above ``IN_MEMORY_BYTES``
``data.step_matrix`` gives instead a read-only ``np.memmap`` of an ``.npy`` file that ``step_map``
writes here from the parquet table batch by batch, in the table's own dtype (float16 gates take
half the bytes). The OS page cache holds one copy for all gunicorn workers and a restarted
server; a view indexes the rows it needs, a block at a time (``figures.gates.row_blocks``).

The folder is bounded (``$LSTM_LENS_STEP_MAPS_BYTES``, default ``DEFAULT_BOUND``): the maps used
least recently are removed first (a worker that has one open keeps reading it; Linux frees the
file when the last map closes).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline import runformat

IN_MEMORY_BYTES = 64 * 2 ** 20      # a table up to this size as float32 is read into the process
DEFAULT_BOUND = 16 * 2 ** 30
FOLDER = "step-maps"

_build_lock = threading.Lock()


def in_memory(rows: int, units: int) -> bool:
    """Whether a (rows, units) table is read whole into the process rather than mapped."""
    return rows * units * 4 <= IN_MEMORY_BYTES


def bound() -> int:
    value = os.environ.get("LSTM_LENS_STEP_MAPS_BYTES", "")
    return int(value) if value.isdigit() else DEFAULT_BOUND


def step_map(run: runformat.Run, layer: int, kind: str, folder: Path) -> np.ndarray:
    """The (rows, units) table of one tensor as a read-only memory map under ``folder``, written
    first if no worker has yet (to a temporary, renamed when whole; one writer at a time)."""
    folder = folder / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = hashlib.sha256(repr((str(run.path), run.token, layer, kind)).encode()).hexdigest()[:32]
    path = folder / f"{key}.npy"
    with _build_lock, open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mapped = _open(path)
        if mapped is None:
            _write(run, layer, kind, path)
            mapped = _open(path)
            _evict(folder, keep=path)
    if mapped is None:
        raise runformat.RunError(f"cannot map the {kind} table of layer {layer} of run {run.run_id!r}")
    return mapped


def _open(path: Path) -> np.ndarray | None:
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):       # absent, or cut short by a writer that was killed
        return None
    os.utime(path)                      # used now: the last to be evicted
    return mapped


def _write(run: runformat.Run, layer: int, kind: str, path: Path) -> None:
    rows = int(run.examples()["length"].sum())
    batches = run.step_batches(layer, kind)
    first = next(batches, None)
    units, dtype = (0, np.float32) if first is None else (first.shape[1], first.dtype)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    table = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=(rows, units))
    try:
        start = 0
        for batch in [] if first is None else _chain(first, batches):
            if start + len(batch) > rows:
                raise runformat.RunError(f"run {run.run_id!r}: its {kind} table of layer {layer} has "
                                         f"more rows than its examples' {rows:,} steps")
            table[start:start + len(batch)] = batch
            start += len(batch)
        if start != rows:
            raise runformat.RunError(f"run {run.run_id!r}: its {kind} table of layer {layer} has "
                                     f"{start:,} rows, its examples {rows:,} steps")
        table.flush()
        del table
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _evict(folder: Path, keep: Path) -> None:
    """Remove the least recently used maps until the folder is within ``bound()``."""
    maps = []
    for path in folder.glob("*.npy"):
        try:
            maps.append((path.stat().st_mtime, path.stat().st_size, path))
        except OSError:
            continue
    total = sum(size for _, size, _ in maps)
    for _, size, path in sorted(maps):
        if total <= bound():
            break
        if path != keep:
            path.unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)
            total -= size

"""Select & match over hidden states (LSTMVis, Strobelt et al. 2017, "select and match").

A user selects a range of time steps; the cells that are *on* throughout it are the hypothesis;
the match engine finds the ranges of the whole data set whose on-cells best overlap it. This module
is pure numpy (+ pyarrow for parquet sources) and never imports TensorFlow: the dashboard calls it.

Semantics (confirmed against the LSTMVis source, github.com/HendrikStrobelt/LSTMVis:
``client/js/apps/LSTMController.js`` ``cellSelection`` for select, ``lstmdata/data_handler.py``
``query_similar_activations`` for match; the paper's text itself was not retrievable here, so the
code is the reference):

* **on**: cell ``i`` is on at step ``t`` iff ``states[t, i] >= threshold`` (LSTMVis'
  ``threshold_discrete``: ``< threshold`` is off). NaN is off. Values are compared as given
  (LSTMVis compares tanh-transformed states by default; transform before calling if wanted).
* **select** ``[s, e]`` (inclusive): cells on at every step of ``[s, e]``; with ``off_before`` also
  off at ``s - 1``, with ``off_after`` also off at ``e + 1`` (LSTMVis' "wordBrushZero" signature
  ``0 1..1 0``). A step outside the sequence (``s`` starts a sequence, ``e`` ends one, or the
  stream's ends) satisfies an off constraint: the state before a sequence is the zero initial state.
  LSTMVis leaves this case undefined (it slices index ``-1``).
* **candidate ranges** (LSTMVis' definition): let ``c[t]`` be the number of selected cells on at
  ``t``. For every level ``k = 1 .. len(cells)`` the maximal runs of ``c >= k`` are candidates:
  ranges ``[a, b]`` with ``c >= k`` throughout and ``c < k`` (or a sequence edge) at ``a - 1`` and
  ``b + 1``. Equivalently: ``min(c[a..b]) > max(c[a-1], c[b+1])``, edges counting as 0. Each range
  is kept once (LSTMVis de-duplicates by (length, position)). Runs never cross a sequence boundary.
  Lengths are filtered to ``min_length <= length <= max_length``; ``min_length`` defaults to 2
  (LSTMVis' ``cut_off = 2``); ``min_length == max_length`` is LSTMVis' ``phrase_length``.
* **score** of a candidate: its own on-cells are computed exactly like a selection of ``[a, b]``
  with the same off constraints (LSTMVis' per-cell ``-1 1..1 -1`` mask). ``overlap`` = how many
  selected cells are among them, ``extra`` = how many other cells are. Candidates with
  ``overlap == 0`` are dropped (they share nothing with the selection).
* **ranking** (LSTMVis' sort key ``-intersection, union, -length``; union = selected + extra):
  overlap descending, then extra ascending, then length descending (longer first), then start
  ascending (our deterministic final tie-break; LSTMVis leaves ties in arbitrary dict order).
  Top ``top_k``. ``tests/test_match.py`` checks this against a brute force over all ranges and a
  step-by-step re-run of LSTMVis' algorithm.

Where we do better than LSTMVis: its "fast" mode reads only the first 500,000 steps, and both modes
keep only the first 1,000 / 10,000 candidates (collected from the highest level down), so its top
results can miss the best ranges. We read every step and the ranking is exact: levels are visited
from the highest down and each range is scored (overlap, from the selected columns only) at the
highest level it is a run of, ``min(c[a..b])``, which bounds its overlap; so once ``top_k``
candidates have overlap >= k, lower levels cannot enter and are skipped. ``extra`` is computed for
every candidate whose overlap reaches the ``top_k``-th best, from the rows of those candidates
(plus one row each side) only. LSTMVis also mis-reads the rows around ranges at the stream's ends
(index -1); we define them (above).

Sources: an in-memory ``(T, D)`` array (a column-major / Fortran-ordered array, e.g. what pandas'
``DataFrame.to_numpy()`` gives, is fastest: selected columns are then contiguous and the first pass
streams just them, packing their on-bits a byte per 8 cells; a row-major one reads whole 4 x D-byte
rows, a strided gather), or a parquet file / directory / ``pyarrow.dataset.Dataset`` with one float
column per cell named ``u0 .. u{D-1}`` (other columns, e.g. ``example_id``, ``t``, are ignored).
Rows are numbered in dataset order (files, then row groups). Parquet is read row group by row
group: first only the selected columns, kept as packed on-bits, a count and a flag per row (a few
bytes per step, not 4 x D), then all cell columns of only the row groups holding candidate rows,
32 columns at a time. A row group is the smallest unit pyarrow decodes (with the run format's
65,536-row groups a float32 column chunk is a single page anyway), so when candidates are spread
over the whole stream this second pass decodes most of the file; memory stays bounded.

In a column-major array the second pass costs one 4-byte read per cell and candidate row, the
cells megabytes apart (latency, not bandwidth: about as long as the first pass at 1M x 650). A
caller that runs many queries at one threshold can build the tensor's :class:`OnRows` once (all
cells' on-bits packed row by row, an eighth of the states' bytes) and pass it: the second pass then
reads one short row per candidate row (``bench/match.py``).

Partitions (for Dask): ``match(..., row_range=(lo, hi))`` returns the top ``top_k`` of the
candidates that *start* in ``[lo, hi)``; each range is owned by exactly one partition, so
``merge_matches([match(src, ..., row_range=p) for p in parts], top_k)`` equals ``match(src, ...)``
for any partition of ``[0, T)``. A partition carries what it needs across its edges itself: it reads
row ``lo - 1`` (maximality and off-before) and reads on past ``hi`` until every run that began
before ``hi`` has closed (the first later step where no selected cell is on, or a sequence starts),
plus one step (off-after). So ranges crossing partition boundaries are found exactly once, with no
fixed overlap to guess; with sequence boundaries the carry is at most one sequence long.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["Match", "OnRows", "on_rows", "select_cells", "match", "merge_matches", "rank_key", "count_rows"]

#: LSTMVis' ``cut_off``: candidate runs shorter than this are not considered.
DEFAULT_MIN_LENGTH = 2
_BLOCK_ROWS = 1 << 16  # rows per block when reading contiguous (column-major) columns
# A column-major array's first pass, up to ``hi``: blocks this big, cut into one part per core and
# packed by a thread each (numpy's ufuncs release the GIL). Parts of 2^18 rows or more: with 2^16
# the threads wait on each other's ufunc dispatch (bench/match.py, 2 cores: 2.9 ms vs 1.7 ms).
_PARALLEL_BLOCK_ROWS = 1 << 20
_PART_ROWS = 1 << 18
_PART_VALUES = 1 << 14  # the second pass' gather: values (rows x cells) a thread gets at least
_GATHER_BLOCK_ROWS = 1 << 14  # rows per block when gathering columns from a row-major array
_GATHER_ROWS = 1 << 15  # rows per block when reading all cells of candidate rows
_COLUMNS_PER_READ = 32  # parquet: cell columns decoded at once when reading all cells
_CELL_COLUMN = re.compile(r"u(\d+)")


@dataclasses.dataclass(frozen=True)
class Match:
    """One matched range ``[start, end]`` (inclusive rows of the stream) and its score."""

    start: int
    end: int
    overlap: int  # selected cells on throughout the range
    extra: int  # non-selected cells on throughout the range
    length: int

    @property
    def score(self) -> tuple[int, int, int]:
        """Higher is better, compared lexicographically: (overlap, -extra, length)."""
        return (self.overlap, -self.extra, self.length)


def rank_key(m: Match) -> tuple[int, int, int, int]:
    """Sort key of the ranking (ascending = best first); a total order on distinct ranges."""
    return (-m.overlap, m.extra, -m.length, m.start)


def merge_matches(lists: Iterable[Sequence[Match]], top_k: int = 50) -> list[Match]:
    """Merge per-partition results into the ranking a single run would give."""
    top_k = _check_top_k(top_k)
    unique = {(m.start, m.end): m for lst in lists for m in lst}
    return sorted(unique.values(), key=rank_key)[:top_k]


# ----------------------------------------------------------------------------------------------
# Sources: an in-memory array or parquet. Both give blocks of selected columns and the on-bits of
# all cells for chosen rows; the engine below does not care which.


class _ArraySource:
    def __init__(self, states):
        arr = np.asarray(states)
        if arr.ndim != 2:
            raise ValueError(f"states must be a 2-D (time steps, cells) array, got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"states must hold numbers, got dtype {arr.dtype}")
        self.states = arr
        self.n_rows, self.n_cells = arr.shape
        self.bytes_read = 0

    def blocks(self, cells, r0, r1, boundary_column=None, big_until=0):
        """Yield (first row, [one 1-D array per selected cell], None) for rows [r0, r1).

        A column-major array's blocks before row ``big_until`` are _PARALLEL_BLOCK_ROWS long (the
        caller packs them on several threads), the later ones short (read no further than needed).
        """
        if boundary_column is not None:
            raise ValueError("boundaries given as a column name need a parquet source; "
                             "pass an array of sequence start rows instead")
        s = self.states
        if s.flags.f_contiguous:  # columns are contiguous: no gather needed
            for b0, b1 in _block_rows(r0, r1, big_until):
                self.bytes_read += (b1 - b0) * len(cells) * s.itemsize
                yield b0, [s[b0:b1, j] for j in cells], None
            return
        for b0 in range(r0, r1, _GATHER_BLOCK_ROWS):  # small blocks: they stay in cache
            block = s[b0:min(b0 + _GATHER_BLOCK_ROWS, r1), cells]
            self.bytes_read += block.nbytes
            yield b0, [block[:, i] for i in range(len(cells))], None

    def rows_on(self, rows, threshold):
        """Packed on-bits of all cells for the given (sorted) rows: (len(rows), words)."""
        out = []
        column_major = self.states.flags.f_contiguous and not self.states.flags.c_contiguous
        for i in range(0, len(rows), _GATHER_ROWS):
            chunk = rows[i:i + _GATHER_ROWS]
            self.bytes_read += len(chunk) * self.n_cells * self.states.itemsize
            out.append(self._columns_on(chunk, threshold) if column_major
                       else _pack(self.states[chunk] >= threshold))
        return np.concatenate(out) if out else _pack(np.zeros((0, self.n_cells), bool))

    def _columns_on(self, rows, threshold):
        """rows_on of a column-major array: gathered along the contiguous axis (neighbouring rows
        share cache lines), the cells in byte-aligned groups, one per match thread, so that their
        reads (latency-bound: D columns megabytes apart) overlap."""
        dtype, n_words, _ = _layout(self.n_cells)
        packed = np.zeros((len(rows), n_words * dtype.itemsize), np.uint8)
        by_column = self.states.T

        def group(bounds):
            c0, c1 = bounds
            on = by_column[c0:c1, rows] >= threshold
            packed[:, c0 // 8:(c1 + 7) // 8] = np.packbits(on, axis=0, bitorder="little").T

        n_groups = max(1, min(_WORKERS, len(rows) * self.n_cells // _PART_VALUES, self.n_cells // 8))
        edges = 8 * np.linspace(0, self.n_cells / 8, n_groups + 1).astype(int)
        edges[-1] = self.n_cells
        _on_threads(group, list(zip(edges[:-1], edges[1:])))
        return packed.view(dtype)

    def column(self, name, r0, r1):
        raise ValueError("boundaries given as a column name need a parquet source; "
                         "pass an array of sequence start rows instead")


def _block_rows(r0, r1, big_until):
    """(b0, b1) blocks of rows [r0, r1): _PARALLEL_BLOCK_ROWS long before ``big_until`` (the
    caller packs them on several threads), _BLOCK_ROWS after it (read no further than needed)."""
    b0 = r0
    while b0 < r1:
        b1 = min(b0 + _PARALLEL_BLOCK_ROWS, big_until, r1) if b0 < big_until else min(b0 + _BLOCK_ROWS, r1)
        yield b0, b1
        b0 = b1


class _ParquetSource:
    def __init__(self, source):
        import pyarrow.parquet as pq

        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not os.path.exists(path):
                raise FileNotFoundError(f"no parquet file or directory at {path!r}")
            if os.path.isfile(path):  # the common case; pyarrow.dataset costs ~50 MB to import
                self._files = [pq.ParquetFile(path)]
            else:
                import pyarrow.dataset as ds
                source = ds.dataset(path, format="parquet")
        if not isinstance(source, (str, os.PathLike)):  # a pyarrow.dataset.FileSystemDataset
            if not source.files:
                raise ValueError(f"no parquet files in {source!r}")
            self._files = [pq.ParquetFile(source.filesystem.open_input_file(f)) for f in source.files]
        names = self._files[0].schema_arrow.names
        indices = sorted(int(m.group(1)) for n in names if (m := _CELL_COLUMN.fullmatch(n)))
        if not indices:
            raise ValueError(f"{source!r} has no cell columns named u0, u1, ...; columns: {names[:10]}")
        if indices != list(range(len(indices))):
            raise ValueError(f"cell columns of {source!r} must be u0 .. u{len(indices) - 1} without gaps")
        self.n_cells = len(indices)
        self.cell_names = [f"u{i}" for i in range(self.n_cells)]
        for f in self._files[1:]:
            if not set(self.cell_names) <= set(f.schema_arrow.names):
                raise ValueError(f"the files of {source!r} do not all have the cell columns "
                                 f"u0 .. u{self.n_cells - 1}")
        # One entry per row group, in dataset order: (file, index in file, first row, rows, sizes).
        self._groups = []
        row = 0
        for f in self._files:
            md = f.metadata
            for g in range(md.num_row_groups):
                rg = md.row_group(g)
                sizes = {rg.column(j).path_in_schema: rg.column(j).total_compressed_size
                         for j in range(rg.num_columns)}
                self._groups.append((f, g, row, rg.num_rows, sizes))
                row += rg.num_rows
        self._group_starts = np.array([g[2] for g in self._groups] + [row], dtype=np.int64)
        self.n_rows = row
        self.bytes_read = 0  # compressed column-chunk bytes of everything read

    def _read(self, gi, columns):
        f, g, _, _, sizes = self._groups[gi]
        self.bytes_read += sum(sizes.get(c, 0) for c in columns)
        return f.read_row_group(g, columns=list(columns), use_threads=True)

    def _groups_for(self, r0, r1):
        first = int(np.searchsorted(self._group_starts, r0, side="right")) - 1
        for gi in range(max(first, 0), len(self._groups)):
            g0 = self._group_starts[gi]
            if g0 >= r1:
                break
            yield gi, int(g0), int(self._group_starts[gi + 1])

    def blocks(self, cells, r0, r1, boundary_column=None, big_until=0):
        """Row group by row group (``big_until`` is for arrays: a row group is already the unit)."""
        names = [self.cell_names[j] for j in cells]
        columns = names + ([boundary_column] if boundary_column else [])
        for gi, g0, g1 in self._groups_for(r0, r1):
            table = self._read(gi, columns)
            lo, hi = max(r0, g0) - g0, min(r1, g1) - g0
            cols = [_float32(table.column(n).to_numpy()[lo:hi]) for n in names]
            bcol = table.column(boundary_column).to_numpy()[lo:hi] if boundary_column else None
            yield g0 + lo, cols, bcol

    def rows_on(self, rows, threshold):
        out = []
        for gi, g0, g1 in self._groups_for(int(rows[0]), int(rows[-1]) + 1) if len(rows) else ():
            i0, i1 = np.searchsorted(rows, [g0, g1])
            local = rows[i0:i1] - g0
            if len(local) == 0:
                continue
            on = np.empty((len(local), self.n_cells), dtype=bool)
            for c0 in range(0, self.n_cells, _COLUMNS_PER_READ):  # bounds the decoded bytes
                names = self.cell_names[c0:c0 + _COLUMNS_PER_READ]
                table = self._read(gi, names)
                for j, name in enumerate(names, start=c0):
                    np.greater_equal(_float32(table.column(name).to_numpy()[local]), threshold, out=on[:, j])
                del table
            out.append(_pack(on))
        return np.concatenate(out) if out else _pack(np.zeros((0, self.n_cells), bool))

    def column(self, name, r0, r1):
        parts = []
        for gi, g0, g1 in self._groups_for(r0, r1):
            values = self._read(gi, [name]).column(name).to_numpy()
            parts.append(values[max(r0, g0) - g0:min(r1, g1) - g0])
        return np.concatenate(parts) if parts else np.zeros(0)


@dataclasses.dataclass(frozen=True, eq=False)
class OnRows:
    """Every cell's on-bits at one threshold, built once per tensor and threshold (:func:`on_rows`),
    in two layouts of T x D / 8 bytes each (together a quarter of the float32 states):

    * ``planes``, (ceil(D / 8), T) uint8, byte ``p`` of every row contiguous (cells 8p .. 8p + 7):
      match's first pass reads the planes of its selected cells, a byte per row and cell at most
      (10 cells of 1M rows: 10 MB, against 40 MB of their floats);
    * ``words``, (T, W) (see _layout), row by row: its second pass reads one ~88-byte row per
      candidate row, where a column-major array's floats are 4-byte reads from D columns megabytes
      apart (latency-bound, ~5 ns each: ~7 ms for ~1,500 rows x 650 cells).
    """

    threshold: float
    planes: np.ndarray
    words: np.ndarray


def on_rows(states, threshold: float) -> OnRows:
    """:class:`OnRows` of a (T, D) array at ``threshold`` (on: ``>= threshold``, NaN off): one
    pass over the states, fastest from a column-major array (about 1 s at 1M x 650)."""
    src = _ArraySource(states)
    threshold = _check_threshold(threshold)
    dtype, n_words, _ = _layout(src.n_cells)
    planes = np.empty((math.ceil(src.n_cells / 8), src.n_rows), np.uint8)
    words = np.zeros((src.n_rows, n_words), dtype)
    as_bytes = words.view(np.uint8)
    for b0, cols, _ in src.blocks(range(src.n_cells), 0, src.n_rows):
        block = _pack_columns(cols, threshold, len(cols[0]), out=planes[:, b0:b0 + len(cols[0])])
        as_bytes[b0:b0 + len(block), :block.shape[1]] = block
    return OnRows(threshold, planes, words)


def _check_on_rows(bits, src, threshold):
    """The OnRows to read all cells from, or None (none given, or made at another threshold)."""
    if bits is None:
        return None
    if not isinstance(bits, OnRows) or bits.planes.shape != (math.ceil(src.n_cells / 8), src.n_rows):
        raise ValueError(f"on_rows must be the OnRows of these states ({src.n_rows} rows x "
                         f"{src.n_cells} cells), made with match.on_rows")
    return bits if bits.threshold == threshold else None


def _float32(values: np.ndarray) -> np.ndarray:
    """A float16 column (compact storage) compared as the float32 one it stands for."""
    return values.astype(np.float32) if values.dtype == np.float16 else values


def _open(source):
    if isinstance(source, (_ArraySource, _ParquetSource)):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _ParquetSource(source)
    ds = sys.modules.get("pyarrow.dataset")  # a Dataset can only come from an imported module
    if ds is not None and isinstance(source, ds.Dataset):
        if not isinstance(source, ds.FileSystemDataset):
            raise ValueError("a pyarrow dataset source must be file-based (pyarrow.dataset.dataset(path))")
        return _ParquetSource(source)
    return _ArraySource(source)


def count_rows(source) -> int:
    """Number of time steps (rows) of an array or parquet source, e.g. to plan partitions."""
    return _open(source).n_rows


# ----------------------------------------------------------------------------------------------
# Bit helpers. A row's on-cells are packed into unsigned words (bit j = j-th cell of the set).


def _layout(n_bits: int):
    """Word layout for rows of n_bits flags: (dtype, words per row, bits per word)."""
    nbytes = max(1, math.ceil(n_bits / 8))
    width = nbytes if nbytes <= 2 else 4 if nbytes <= 4 else 8 * math.ceil(nbytes / 8)
    dtype = {1: np.dtype(np.uint8), 2: np.dtype("<u2"), 4: np.dtype("<u4")}.get(width, np.dtype("<u8"))
    return dtype, max(1, width // 8), 8 * dtype.itemsize


def _pack(on: np.ndarray) -> np.ndarray:
    """(n, k) bool -> (n, W) unsigned words, bit j of the row = flag j (see _layout)."""
    dtype, n_words, _ = _layout(on.shape[1])
    packed = np.packbits(on, axis=1, bitorder="little")
    width = n_words * dtype.itemsize
    if packed.shape[1] != width:
        packed = np.concatenate(
            [packed, np.zeros((len(packed), width - packed.shape[1]), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(dtype)


def _pack_columns(columns, threshold, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """Like _pack(stack(columns) >= threshold) in bytes: an (n, ceil(k/8)) uint8 array, column-major.

    Each byte column (a plane of 8 cells; ``out``: a (planes, n) uint8 array to fill) is contiguous
    and built with whole-array ufuncs that numpy runs in SIMD: the compare, then Horner's rule
    (plane += plane; plane |= on) over the plane's cells, highest bit first. Interleaving the
    planes into row-major words, or widening bools to uint16 words, costs as much again as
    reading the floats.
    """
    planes = np.empty((max(1, math.ceil(len(columns) / 8)), n), np.uint8) if out is None else out
    on = np.empty(n, dtype=bool)
    for p, plane in enumerate(planes):
        group = columns[8 * p:8 * p + 8][::-1]
        np.greater_equal(group[0], threshold, out=plane.view(bool))
        for column in group[1:]:
            np.add(plane, plane, out=plane)
            np.greater_equal(column, threshold, out=on)
            np.bitwise_or(plane, on.view(np.uint8), out=plane)
    return planes.T


def _pack_and_count(columns, threshold, planes: np.ndarray, counts: np.ndarray) -> None:
    """Fill ``planes`` (see _pack_columns) and ``counts`` (on cells per row) for one block."""
    def part(a, b):
        _pack_columns([c[a:b] for c in columns], threshold, b - a, out=planes[:, a:b])
        _count_planes(planes[:, a:b], counts[a:b])

    _in_parts(part, len(counts))


def _plane_groups(cells: np.ndarray) -> list[list[tuple[int, int]]]:
    """The OnRows planes holding ``cells``, each with the mask of its selected bits, in groups whose
    masks share no bit: OR-ed together, a group is one byte per row whose set bits are its on
    cells, which is all the first pass needs (their count, and their AND over a range)."""
    masks: dict[int, int] = {}
    for cell in cells.tolist():
        masks[cell // 8] = masks.get(cell // 8, 0) | 1 << (cell % 8)
    groups: list[tuple[int, list[tuple[int, int]]]] = []  # (bits used, members), first fit
    for plane, mask in sorted(masks.items(), key=lambda item: -item[1].bit_count()):
        at = next((i for i, (used, _) in enumerate(groups) if not used & mask), None)
        if at is None:
            groups.append((mask, [(plane, mask)]))
        else:
            groups[at] = (groups[at][0] | mask, groups[at][1] + [(plane, mask)])
    return [members for _, members in groups]


def _mask_and_count(source: np.ndarray, groups, planes: np.ndarray, counts: np.ndarray) -> None:
    """``_pack_and_count`` from OnRows planes (``source``: a block of them): each group's byte is
    the OR of its members' masked planes, a byte read per row and selected plane."""
    def part(a, b):
        masked = np.empty(b - a, np.uint8)
        for plane, members in zip(planes[:, a:b], groups):
            (first, mask), *rest = members
            np.bitwise_and(source[first, a:b], mask, out=plane)
            for other, mask in rest:
                np.bitwise_and(source[other, a:b], mask, out=masked)
                np.bitwise_or(plane, masked, out=plane)
        _count_planes(planes[:, a:b], counts[a:b])

    _in_parts(part, len(counts))


def _count_planes(planes: np.ndarray, counts: np.ndarray) -> None:
    np.bitwise_count(planes[0], out=counts)
    for plane in planes[1:]:
        counts += np.bitwise_count(plane)


def _in_parts(part, n: int) -> None:
    """``part(a, b)`` over rows [0, n): in parts of at least _PART_ROWS, one per core, on the match
    threads."""
    edges = np.linspace(0, n, max(1, min(_WORKERS, n // _PART_ROWS)) + 1).astype(int)
    _on_threads(lambda bounds: part(*bounds), list(zip(edges[:-1], edges[1:])))


def _on_threads(function, items) -> None:
    """``function(item)`` for every item: on the match threads when there are several."""
    if len(items) == 1:
        function(items[0])
    else:
        for _ in _threads().map(function, items):
            pass


_WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """This process' match threads (made anew in a forked child: a parent's threads are not there)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(_WORKERS, thread_name_prefix="lens-match"))
        return _POOL[1]


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per row, word column by word column (contiguous in a column-major words array)."""
    counts = np.bitwise_count(words[:, 0]).astype(np.int64)
    for j in range(1, words.shape[1]):
        counts += np.bitwise_count(words[:, j])
    return counts


def _and_ranges(words: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """AND of rows a[i]..b[i] (inclusive) of ``words``; a must be sorted (keeps the cost linear)."""
    if len(a) == 0:
        return np.zeros((0, words.shape[1]), words.dtype)
    padded = np.concatenate([words, np.zeros((1, words.shape[1]), words.dtype)])
    idx = np.empty(2 * len(a), dtype=np.intp)
    idx[0::2], idx[1::2] = a, b + 1
    return np.bitwise_and.reduceat(padded, idx, axis=0)[0::2]


def _apply_off(on, words, a, b, start_row, end_row, off_before, off_after):
    """Clear cells that are on at a-1 (off_before) / b+1 (off_after); sequence edges count as off."""
    if off_before:
        before = words[np.maximum(a - 1, 0)]
        before[start_row] = 0
        on &= ~before
    if off_after:
        after = words[np.minimum(b + 1, len(words) - 1)]
        after[end_row] = 0
        on &= ~after
    return on


# ----------------------------------------------------------------------------------------------
# Validation


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a real number, got {threshold!r}")
    if math.isnan(threshold):
        raise ValueError("threshold is NaN; give a number (e.g. 0.3) to decide when a cell is on")
    return float(threshold)


def _check_cells(cells, n_cells) -> np.ndarray:
    arr = np.asarray(cells)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"cells must be a 1-D list of cell indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_int = arr.astype(np.int64) if np.issubdtype(arr.dtype, np.floating) else None
        if as_int is None or not np.array_equal(as_int, arr):
            raise ValueError(f"cells must be integer cell indices, got {arr[:5].tolist()}")
        arr = as_int
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n_cells)]
    if bad.size:
        raise ValueError(f"cell index {int(bad[0])} is out of range: the states have {n_cells} "
                         f"cells (valid indices 0..{n_cells - 1})")
    return np.unique(arr)


def _check_top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    return int(top_k)


def _check_row(value, name, n_rows) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer row index, got {value!r}")
    if not 0 <= value < n_rows:
        raise ValueError(f"{name}={value} is out of range: the states have {n_rows} time steps "
                         f"(valid 0..{n_rows - 1})")
    return int(value)


def _check_boundaries(boundaries, n_rows):
    """None, a column name (parquet), or sorted start rows -> None | str | int64 array."""
    if boundaries is None or isinstance(boundaries, str):
        return boundaries
    b = np.asarray(boundaries)
    if b.ndim != 1 or (b.size and not np.issubdtype(b.dtype, np.integer)):
        raise ValueError("boundaries must be a 1-D array of integer sequence start rows")
    b = b.astype(np.int64)
    if b.size and (b[0] < 0 or b[-1] >= n_rows):
        raise ValueError(f"boundaries must lie in 0..{n_rows - 1}, got {b.min()}..{b.max()}")
    if np.any(np.diff(b) <= 0):
        raise ValueError("boundaries must be strictly increasing sequence start rows")
    return b


def _starts_from(boundaries, r0, r1, column_values=None, value_before=None):
    """Flags for rows [r0, r1): True where a sequence starts (row 0 always does)."""
    flags = np.zeros(r1 - r0, dtype=bool)
    if isinstance(boundaries, np.ndarray):
        i0, i1 = np.searchsorted(boundaries, [r0, r1])
        flags[boundaries[i0:i1] - r0] = True
    elif boundaries is not None:  # column values: a new sequence where the value changes
        flags[1:] = column_values[1:] != column_values[:-1]
        if len(flags) and value_before is not None:
            flags[0] = column_values[0] != value_before
    if r0 == 0 and len(flags):
        flags[0] = True
    return flags


# ----------------------------------------------------------------------------------------------
# Select


def select_cells(states, start: int, end: int, threshold: float, off_before: bool = False,
                 off_after: bool = False, boundaries=None) -> np.ndarray:
    """Cells on (>= threshold) at every step of [start, end] (inclusive), sorted ascending.

    ``off_before``/``off_after`` also require the cell to be off at start-1 / end+1; a sequence
    edge counts as off. ``states``: array or parquet source (see module docstring). ``boundaries``:
    sequence start rows (or, for parquet, the name of a column such as ``example_id``); the range
    must lie inside one sequence.
    """
    src = _open(states)
    threshold = _check_threshold(threshold)
    start = _check_row(start, "start", src.n_rows)
    end = _check_row(end, "end", src.n_rows)
    if start > end:
        raise ValueError(f"start={start} is after end={end}; the selected range is [start, end]")
    boundaries = _check_boundaries(boundaries, src.n_rows)
    r0, r1 = max(start - 1, 0), min(end + 2, src.n_rows)
    column = src.column(boundaries, r0, r1) if isinstance(boundaries, str) else None
    flags = _starts_from(boundaries, r0, r1, column)
    if r0 < start:  # row r0 is context only: whether *it* starts a sequence does not matter
        flags[0] = False
    inner = np.flatnonzero(flags[start - r0 + 1:end - r0 + 1])
    if inner.size:
        raise ValueError(f"the range [{start}, {end}] crosses a sequence boundary at row "
                         f"{start + 1 + int(inner[0])}; select within one sequence")
    words = src.rows_on(np.arange(r0, r1), threshold)
    a, b = np.array([start - r0]), np.array([end - r0])
    starts_seq = start == 0 or flags[start - r0]
    ends_seq = end == src.n_rows - 1 or (end + 1 < r1 and flags[end + 1 - r0])
    on = _apply_off(_and_ranges(words, a, b), words, a, b, np.array([starts_seq]),
                    np.array([ends_seq]), off_before, off_after)
    bits = np.unpackbits(on.view(np.uint8), bitorder="little")[:src.n_cells]
    return np.flatnonzero(bits)


# ----------------------------------------------------------------------------------------------
# Match


def _scan(src, cells, threshold, lo, hi, boundaries, bits=None):
    """First pass: read only the selected columns (or their planes of ``bits``, an OnRows at this
    threshold), from row w0 = lo - 1 (context) on.

    Stops at the first row u >= hi where no selected cell is on or a sequence starts (no run that
    began before hi reaches u; u itself is kept as off-after context), or at the end of the stream.
    Returns (w0, packed on-words of the selected cells, counts of on selected cells, start flags).
    Each block is packed into arrays sized for the rest of the stream (pages never written are
    never touched), so nothing is copied afterwards.
    """
    w0 = max(lo - 1, 0)
    column = boundaries if isinstance(boundaries, str) else None
    value_before = None
    size = src.n_rows - w0
    groups = _plane_groups(cells) if bits is not None and column is None else None
    planes = np.empty((len(groups) if groups else max(1, math.ceil(len(cells) / 8)), size), np.uint8)
    counts = np.empty(size, np.uint8 if len(cells) < 256 else np.int32)
    flags = np.zeros(size, dtype=bool)
    stop = size
    if groups:
        read = sum(len(members) for members in groups)
        blocks = ((b0, bits.planes[:, b0:b1], None) for b0, b1 in _block_rows(w0, src.n_rows, hi))
    else:
        blocks = src.blocks(cells, w0, src.n_rows, column, big_until=hi)
    for row0, block, bcol in blocks:
        r = row0 - w0
        if groups:
            n = block.shape[1]
            _mask_and_count(block, groups, planes[:, r:r + n], counts[r:r + n])
            src.bytes_read += n * read
        else:
            n = len(block[0])
            _pack_and_count(block, threshold, planes[:, r:r + n], counts[r:r + n])
        if boundaries is not None:
            flags[r:r + n] = _starts_from(boundaries, row0, row0 + n, bcol, value_before)
        if bcol is not None and n:
            value_before = bcol[-1]
        if row0 + n > hi and row0 + n < src.n_rows:  # rows >= hi are here: have all runs closed?
            u0 = max(hi, row0) - w0
            closed = np.flatnonzero((counts[u0:r + n] == 0) | flags[u0:r + n])
            if closed.size:
                stop = u0 + int(closed[0]) + 1
                break
    flags[0] = True  # the window starts here (row w0 < lo is context, never a candidate start)
    return w0, planes[:, :stop].T, counts[:stop], flags[:stop]


def _level_runs(counts, seq_starts, k):
    """Maximal runs of counts >= k that stay in one sequence, in compressed row coordinates.

    Returns (rows with counts >= k, index in rows of each run's first row, of each run's last).
    """
    rows = np.flatnonzero(counts >= k)
    brk = np.empty(len(rows), dtype=bool)
    brk[:1] = True
    np.not_equal(np.diff(rows), 1, out=brk[1:])
    at = np.searchsorted(rows, seq_starts)  # a sequence start inside a run also breaks it
    at = at[at < len(rows)]
    brk[at[rows[at] == seq_starts[:len(at)]]] = True
    first = np.flatnonzero(brk)
    last = np.append(first[1:], len(rows)) - 1
    return rows, first, last


def _score_overlap(words, counts, seq_start, seq_end, own, top_k, min_length, max_length,
                   off_before, off_after):
    """Candidates and their overlap, enough of them to decide the top_k exactly.

    Levels are visited from the highest down. A range is a candidate at every level between
    max(c[a-1], c[b+1]) + 1 and min(c[a..b]); it is scored once, at its highest level (the first
    visit; at lower levels it reappears as the very same run). Its overlap cannot exceed that
    level, so once top_k candidates have overlap >= k, no range first seen at a lower level can
    enter the top_k: stop there.
    """
    # Without boundaries only the window's first row starts a sequence: no pass over the flags.
    seq_starts = np.flatnonzero(seq_start) if seq_start[1:].any() else np.zeros(1, np.intp)
    found = []
    at_least = np.zeros(int(counts.max(initial=0)) + 2, dtype=np.int64)  # histogram of overlaps
    above_a = above_b = np.zeros(0, np.intp)  # the runs of the level above
    for k in range(len(at_least) - 2, 0, -1):
        rows, first, last = _level_runs(counts, seq_starts, k)
        a, b = rows[first], rows[last]
        at = np.minimum(np.searchsorted(above_a, a), max(len(above_a) - 1, 0))
        seen = (above_a[at] == a) & (above_b[at] == b) if len(above_a) else np.zeros(len(a), bool)
        above_a, above_b = a, b
        length = b - a + 1
        keep = ~seen & own(a) & (length >= min_length)
        if max_length is not None:
            keep &= length <= max_length
        if not keep.any():
            continue
        on = np.bitwise_and.reduceat(words[rows], first, axis=0)[keep]
        a, b = a[keep], b[keep]
        overlap = _popcount(_apply_off(on, words, a, b, seq_start[a], seq_end[b],
                                       off_before, off_after))
        found.append((a, b, overlap))
        at_least += np.bincount(overlap, minlength=len(at_least))
        if at_least[k:].sum() >= top_k:
            break
    if not found:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.int64)
    a, b, overlap = (np.concatenate(x) for x in zip(*found))
    return a, b, overlap.astype(np.int64)


def match(states_or_source, cells, threshold: float, off_before: bool = False,
          off_after: bool = False, top_k: int = 50, *, boundaries=None,
          min_length: int = DEFAULT_MIN_LENGTH, max_length: int | None = None,
          row_range: tuple[int, int] | None = None, stats: dict | None = None,
          on_rows: OnRows | None = None) -> list[Match]:
    """Rank the ranges of the stream whose on-cells best overlap ``cells`` (see module docstring).

    ``states_or_source``: (T, D) array, or parquet path / directory / ``pyarrow.dataset.Dataset``
    with columns ``u0..u{D-1}``. ``boundaries``: sequence start rows (or a parquet column name such
    as ``example_id``); ranges never cross a sequence. ``row_range=(lo, hi)``: only ranges starting
    in [lo, hi) (one partition; combine partitions with :func:`merge_matches`). ``stats``: a dict
    filled with counters (rows scanned, candidates scored, rows re-read with all cells, bytes read
    in the first pass and in all; for parquet, compressed column-chunk bytes). ``on_rows``: the
    :class:`OnRows` of these states; where its threshold is ``threshold``, the second pass reads
    its packed rows instead of all cells' values (same answer, faster on a column-major array).
    """
    src = _open(states_or_source)
    threshold = _check_threshold(threshold)
    bits = _check_on_rows(on_rows, src, threshold)
    top_k = _check_top_k(top_k)
    cells = _check_cells(cells, src.n_cells)
    boundaries = _check_boundaries(boundaries, src.n_rows)
    if isinstance(min_length, bool) or not isinstance(min_length, numbers.Integral) or min_length < 1:
        raise ValueError(f"min_length must be a positive integer, got {min_length!r}")
    if max_length is not None and (not isinstance(max_length, numbers.Integral)
                                   or max_length < min_length):
        raise ValueError(f"max_length must be None or an integer >= min_length ({min_length}), "
                         f"got {max_length!r}")
    lo, hi = (0, src.n_rows) if row_range is None else row_range
    if not (isinstance(lo, numbers.Integral) and isinstance(hi, numbers.Integral)
            and 0 <= lo <= hi <= src.n_rows):
        raise ValueError(f"row_range must be (lo, hi) with 0 <= lo <= hi <= {src.n_rows}, "
                         f"got {row_range!r}")
    lo, hi = int(lo), int(hi)
    info = {"rows_scanned": 0, "candidates_scored": 0, "scored_all_cells": 0, "rows_read_all_cells": 0}
    if stats is not None:
        stats.update(info, bytes_read_selected_columns=0, bytes_read=0)
    if cells.size == 0 or lo == hi:
        return []

    bytes_before = src.bytes_read
    w0, words, counts, seq_start = _scan(src, cells, threshold, lo, hi, boundaries, bits)
    bytes_scan = src.bytes_read - bytes_before
    n = len(counts)
    seq_end = np.empty(n, dtype=bool)
    seq_end[:-1] = seq_start[1:]
    seq_end[-1:] = w0 + n == src.n_rows
    a, b, overlap = _score_overlap(
        words, counts, seq_start, seq_end, lambda a: (a >= lo - w0) & (a < hi - w0), top_k,
        min_length, max_length, off_before, off_after)
    hit = overlap > 0
    a, b, overlap = a[hit], b[hit], overlap[hit]
    n_candidates = len(a)

    # Only candidates whose overlap reaches the top_k-th best can still rank in the top_k.
    if len(overlap) > top_k:
        kth = np.partition(overlap, len(overlap) - top_k)[len(overlap) - top_k]
        near = overlap >= kth
        a, b, overlap = a[near], b[near], overlap[near]
    by_start = np.argsort(a, kind="stable")
    a, b, overlap = a[by_start], b[by_start], overlap[by_start]

    # Second pass: all cells, only on the rows of these candidates (plus one row each side).
    first, last = np.maximum(a - 1, 0), np.minimum(b + 1, n - 1)
    sizes = last - first + 1
    rows = np.sort(np.repeat(first - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum()))
    rows = rows[np.append(True, rows[1:] != rows[:-1])] if len(rows) else rows  # unique
    if bits is None:
        all_words = src.rows_on(rows + w0, threshold)
    else:
        all_words = bits.words[rows + w0]
        src.bytes_read += all_words.nbytes
    pa, pb = np.searchsorted(rows, a), np.searchsorted(rows, b)
    on_all = _apply_off(_and_ranges(all_words, pa, pb), all_words, pa, pb, seq_start[a],
                        seq_end[b], off_before, off_after)
    selected = np.zeros((1, src.n_cells), dtype=bool)
    selected[0, cells] = True
    extra = _popcount(on_all & ~_pack(selected)).astype(np.int64)

    length = b - a + 1
    order = np.lexsort((a, -length, extra, -overlap))[:top_k]
    info.update(rows_scanned=n, candidates_scored=n_candidates, scored_all_cells=len(a),
                rows_read_all_cells=len(rows))
    if stats is not None:
        stats.update(info, bytes_read_selected_columns=bytes_scan,
                     bytes_read=src.bytes_read - bytes_before)
    return [Match(int(a[i] + w0), int(b[i] + w0), int(overlap[i]), int(extra[i]), int(length[i]))
            for i in order]

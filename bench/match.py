"""Benchmark of the select & match engine (pipeline/analysis/match.py).

    python bench/match.py            # both parts, ~1-3 minutes on a 2-core machine
    python bench/match.py --quick    # smaller sizes, for a smoke run
    python bench/match.py --memory-only   # part 2 only (~1 minute)

Part 1: T = 10,000,000 x D = 128 in a parquet file written once to a temp dir in the store's
layout (zstd, 65,536-row groups, example_id/t/u0..u127; dictionary encoding off unless
--dictionary). Writing and querying run in child processes, and first, while this process is
small: Linux carries a parent's peak RSS into the ru_maxrss of the children it starts, so the
query process' resource.getrusage peak is the query's own. Goal: seconds, bounded memory.
Part 2: T = 1,000,000 x D = 650 in memory, 10 selected cells, median over several queries, for a
column-major (Fortran) array, the same with its match.OnRows (all cells' on-bits at the query's
threshold, built once: byte planes that the first pass reads instead of the selected floats, a byte
per row and cell, and packed rows for the second), and a row-major (C) copy, and for a harder kind of query (10
random cells, rarely on together, so more levels are scored). Beside each, the memory-read limit:
the time to stream the 10 selected float32 columns (40 MB) at this machine's read rate, measured
right before that row's queries (best of 5 max() passes over 256 MiB, more than the caches hold),
on all cores at once (the engine's first pass packs on a thread per core) and on one core, and the
ratios, and the megabytes each query read in all (median). Goal (issue 15): within 2x of the limit.

Data: 128 base cells, each tanh of a leaky random walk (AR(1) with a per-cell coefficient in
0.8..0.995, unit stationary variance, a per-cell bias), so on-runs have varied lengths; the cells
of a data set are these walks with a random time shift and sign each (generating 650 independent
walks of 1M steps costs minutes on 2 cores). Queries are made the way a user makes them: a random
range of 4 steps is selected, 10 of its on-cells are the query.
Wall time is reported with process CPU time beside it: on a shared machine the wall time also
counts other processes' work.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.analysis.match import match, on_rows, select_cells  # noqa: E402

THRESHOLD = 0.3
N_SELECTED = 10
SELECT_LENGTH = 4
TOP_K = 50
ROW_GROUP = 65536  # as pipeline/store.py writes per-step tables
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def leaky_walks(rng, n_steps, n_cells):
    """(n_cells, n_steps) float32, C-order: tanh(AR(1) + bias) per cell."""
    from scipy.signal import lfilter

    out = np.empty((n_cells, n_steps), dtype=np.float32)
    phi = rng.uniform(0.8, 0.995, n_cells)
    groups = np.digitize(phi, np.linspace(0.8, 0.995, 16))
    for g in np.unique(groups):
        cells = np.flatnonzero(groups == g)
        p = float(phi[cells].mean())
        noise = rng.random((len(cells), n_steps), dtype=np.float32)
        noise -= 0.5
        noise *= np.float32(np.sqrt(12 * (1 - p * p)))  # unit stationary variance
        walk = lfilter(np.array([1], np.float32), np.array([1, -p], np.float32), noise, axis=1)
        walk += rng.normal(0, 0.5, (len(cells), 1)).astype(np.float32)
        out[cells] = np.tanh(walk, out=walk)
    return out


def derived_cells(rng, base, n_cells, out=None):
    """(n_cells, T): base walks, each with a random time shift and sign."""
    n_base, n_steps = base.shape
    out = np.empty((n_cells, n_steps), np.float32) if out is None else out
    for j in range(n_cells):
        src, shift = base[rng.integers(n_base)], int(rng.integers(n_steps))
        out[j, :n_steps - shift], out[j, n_steps - shift:] = src[shift:], src[:shift]
        if rng.random() < 0.5:
            np.negative(out[j], out=out[j])
    return out


def make_query(rng, source, n_rows):
    """A user's query: select a random range, keep N_SELECTED of its on-cells."""
    while True:
        s = int(rng.integers(1, n_rows - SELECT_LENGTH - 1))
        e = s + SELECT_LENGTH - 1
        cells = select_cells(source, s, e, THRESHOLD)
        if len(cells) >= N_SELECTED:
            return s, e, np.sort(rng.choice(cells, N_SELECTED, replace=False))


def timed_match(source, cells, **kwargs):
    stats = {}
    wall, cpu = time.perf_counter(), time.process_time()
    result = match(source, cells, THRESHOLD, top_k=TOP_K, stats=stats, **kwargs)
    return result, stats, time.perf_counter() - wall, time.process_time() - cpu


def read_bandwidth(threads=1, n_bytes=256 * 2**20, repeat=5):
    """This machine's memory-read rate in bytes/s: the best of ``repeat`` max() passes over an
    array of ``n_bytes`` (a reduction that streams from memory; far larger than the caches), on
    ``threads`` threads at once, each over its own part (the engine packs on every core)."""
    array = np.ones(n_bytes // 4, np.float32)
    parts = np.array_split(array, threads)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(np.max, parts))
        best = min(_timed_max(pool, parts) for _ in range(repeat))
    return n_bytes / best


def _timed_max(pool, parts):
    started = time.perf_counter()
    list(pool.map(np.max, parts))
    return time.perf_counter() - started


def part_memory(n_steps, n_cells, n_queries, seed=0):
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    base = leaky_walks(rng, n_steps, 128)
    column_major = derived_cells(rng, base, n_cells).T  # (T, D), Fortran order
    del base
    row_major = np.ascontiguousarray(column_major)
    setup = time.perf_counter() - t0
    selected = [make_query(rng, row_major, n_steps) for _ in range(n_queries)]
    # A harder kind: 10 random cells, rarely on together, so more levels must be scored.
    scattered = [(None, None, np.sort(rng.choice(n_cells, N_SELECTED, replace=False)))
                 for _ in range(n_queries)]
    t0 = time.perf_counter()
    bits = on_rows(column_major, THRESHOLD)
    bits_s = time.perf_counter() - t0
    layouts = (("column-major (F)", column_major, {}), ("F + OnRows", column_major, {"on_rows": bits}),
               ("row-major (C)", row_major, {}))
    rows = []
    for kind, queries in (("selected range", selected), ("random cells", scattered)):
        for layout, states, extra in layouts:
            match(states, queries[0][2], THRESHOLD, **extra)  # warm-up
            limit_ms = 1e3 * n_steps * N_SELECTED * 4 / read_bandwidth(CORES)
            one_core_ms = 1e3 * n_steps * N_SELECTED * 4 / read_bandwidth(1)
            walls, cpus, found = [], [], []
            for s, e, cells in queries:
                result, stats, wall, cpu = timed_match(states, cells, **extra)
                walls.append(wall)
                cpus.append(cpu)
                found.append((s, e, result[0], stats))
            rows.append({"kind": kind, "layout": layout, "wall_ms": 1e3 * np.median(walls),
                         "cpu_ms": 1e3 * np.median(cpus), "limit_ms": limit_ms, "one_core_ms": one_core_ms,
                         "wall_all": [round(1e3 * w, 1) for w in walls], "found": found,
                         "read_mb": np.median([f[3]["bytes_read"] for f in found]) / 1e6,
                         "scored": int(np.median([f[3]["candidates_scored"] for f in found]))})
    return setup, bits_s, rows


def write_parquet(path, n_steps, n_cells, dictionary=False, seed=1, chunk=1_000_000):
    """Write n_steps rows, chunk by chunk (bounded memory), in the store's layout.

    pipeline/store.py writes zstd, 65,536-row groups and (as of writing) pyarrow's default
    dictionary encoding; for float unit columns that encoding makes files ~1.4x larger than raw and
    several times slower to write and decode, so the benchmark writes without it unless asked.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    chunk = min(chunk, n_steps)
    base = leaky_walks(rng, chunk, 128)
    values = np.empty((n_cells, chunk), np.float32)
    schema = pa.schema([("example_id", pa.int64()), ("t", pa.int32())]
                       + [(f"u{i}", pa.float32()) for i in range(n_cells)])
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=dictionary) as writer:
        for r0 in range(0, n_steps, chunk):
            n = min(chunk, n_steps - r0)
            derived_cells(rng, base, n_cells, out=values)
            rows = np.arange(r0, r0 + n)
            columns = [pa.array(rows // 1000), pa.array((rows % 1000).astype(np.int32))]
            columns += [pa.array(values[j, :n]) for j in range(n_cells)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=ROW_GROUP)


def peak_rss_kib():
    """resource.getrusage's peak RSS, and the kernel's VmHWM of this process image as a check."""
    hwm = None
    try:
        with open("/proc/self/status") as f:
            hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM")), None)
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm


def part_parquet_child(path, n_queries, seed=2):
    """Runs in a fresh process: queries only, so ru_maxrss is the query's peak."""
    import pyarrow.parquet as pq  # noqa: F401  (imported before the baseline is taken)

    from pipeline.analysis.match import count_rows

    baseline = peak_rss_kib()
    n_rows = count_rows(path)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_queries):
        s, e, cells = make_query(rng, path, n_rows)
        result, stats, wall, cpu = timed_match(path, cells)
        out.append({"select": [s, e], "cells": cells.tolist(), "wall_s": wall, "cpu_s": cpu,
                    "best": result[0].__dict__ if result else None, "stats": stats})
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak_rss_kib(), "queries": out}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: parquet queries in a child
    parser.add_argument("--dictionary", action="store_true",
                        help="write the parquet file with dictionary encoding (the store's current "
                             "default; slow to write and read for float columns)")
    parser.add_argument("--write", nargs=3, help=argparse.SUPPRESS)  # internal: PATH T D
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--memory-only", action="store_true", help="only part 2 (in memory)")
    args = parser.parse_args()
    if args.child:
        part_parquet_child(args.child, args.queries)
        return
    if args.write:
        write_parquet(args.write[0], int(args.write[1]), int(args.write[2]), args.dictionary)
        return

    mem_t, mem_d = (100_000, 650) if args.quick else (1_000_000, 650)
    pq_t, pq_d = (500_000, 128) if args.quick else (10_000_000, 128)
    n_mem_queries, n_pq_queries = 15, 3
    started = time.perf_counter()

    print(f"select & match benchmark — threshold {THRESHOLD}, {N_SELECTED} selected cells from a "
          f"{SELECT_LENGTH}-step selection, top_k {TOP_K}, no off-before/after constraints")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start\n")

    if not args.memory_only:  # part 1 writes and reads a 5 GiB file: minutes
        with tempfile.TemporaryDirectory(prefix="lens-match-bench-") as tmp:
            path = os.path.join(tmp, "h_layer0.parquet")
            t0 = time.perf_counter()
            # Written by a child process, and queried by another, so that this process stays small:
            # Linux carries a parent's peak RSS into ru_maxrss of the children it starts.
            subprocess.run([sys.executable, __file__, "--write", path, str(pq_t), str(pq_d)]
                           + (["--dictionary"] if args.dictionary else []), check=True)
            written = time.perf_counter() - t0
            size = os.path.getsize(path)
            child = subprocess.run([sys.executable, __file__, "--child", path,
                                    "--queries", str(n_pq_queries)],
                                   check=True, capture_output=True, text=True)
            report = json.loads(child.stdout.strip().splitlines()[-1])
        qs = report["queries"]
        print(f"1) parquet: T = {pq_t:,} x D = {pq_d} float32, {size / 2**30:.2f} GiB on disk "
              f"(zstd, {ROW_GROUP:,}-row groups, dictionary encoding {'on' if args.dictionary else 'off'}; "
              f"written in {written:.0f} s), {n_pq_queries} queries, fresh process")
        print(f"   {'query':<7} {'wall':>7} {'CPU':>7} {'bytes read':>11} {'rows re-read':>13}   best match")
        for i, q in enumerate(qs):
            st = q["stats"]
            print(f"   {i + 1:<7} {q['wall_s']:>5.2f} s {q['cpu_s']:>5.2f} s {st['bytes_read'] / 2**20:>7.0f} MiB"
                  f" {st['rows_read_all_cells']:>13,}   {q['best']}")
        (peak, hwm), (base, _) = report["peak_kib"], report["baseline_kib"]
        print(f"   median wall {np.median([q['wall_s'] for q in qs]):.2f} s, median CPU "
              f"{np.median([q['cpu_s'] for q in qs]):.2f} s; read in the first pass (selected columns) "
              f"{np.median([q['stats']['bytes_read_selected_columns'] for q in qs]) / 2**20:.0f} MiB")
        print(f"   peak RSS of the query process (resource.getrusage): {peak / 1024:.0f} MiB "
              f"(VmHWM {hwm / 1024 if hwm else float('nan'):.0f} MiB; {base / 1024:.0f} MiB after imports;"
              f" the data are {pq_t * pq_d * 4 / 2**30:.1f} GiB)\n")
    setup, bits_s, rows = part_memory(mem_t, mem_d, n_mem_queries)
    print(f"2) in memory: T = {mem_t:,} x D = {mem_d} float32 ({mem_t * mem_d * 4 / 2**30:.1f} GiB), "
          f"{n_mem_queries} queries (data generated in {setup:.0f} s; OnRows built in {bits_s:.2f} s)")
    print(f"   memory-read limit: the {N_SELECTED} selected columns are {mem_t * N_SELECTED * 4 / 1e6:.0f} MB, "
          f"streamed at the read rate measured before each row (best max() over 256 MiB) on all "
          f"{CORES} cores (limit) and on one (1 core)")
    print(f"   {'query':<15} {'layout':<17} {'median wall':>11} {'median CPU':>10} {'limit':>8} {'x limit':>8}"
          f" {'1 core':>8} {'x 1 core':>8} {'read':>8} {'scored':>7}   all walls (ms)")
    for r in rows:
        print(f"   {r['kind']:<15} {r['layout']:<17} {r['wall_ms']:>8.1f} ms {r['cpu_ms']:>7.1f} ms"
              f" {r['limit_ms']:>5.2f} ms {r['wall_ms'] / r['limit_ms']:>7.1f}x {r['one_core_ms']:>5.2f} ms"
              f" {r['wall_ms'] / r['one_core_ms']:>7.1f}x {r['read_mb']:>5.1f} MB {r['scored']:>7,}   {r['wall_all']}")
    print("   (read: median bytes read by a query, both passes; scored: median number of candidate ranges "
          "whose overlap was computed)")
    s, e, best, stats = rows[0]["found"][0]
    print(f"   e.g. selection [{s}, {e}] -> best {best}; scored {stats['candidates_scored']:,} "
          f"candidates by overlap, {stats['scored_all_cells']} by all cells "
          f"({stats['rows_read_all_cells']} rows re-read)")

    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()

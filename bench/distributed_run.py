"""Extraction and projection of a run on a dask.distributed LocalCluster against in process.

    python bench/distributed_run.py --runs /tmp/bigruns --run-id synthetic-100000

Takes a complete classification run (e.g. the one ``bench/bigrun.py --examples 100000`` builds)
and rebuilds its extract, attribute and project stages twice, each in a child process and a fresh
sibling folder that shares the run's data and trained model (hard links): once in process, once
with ``--scheduler`` on a LocalCluster of ``--workers`` processes (1 thread each, ``--memory-limit``
each). Printed: each stage's seconds, the peak RSS of the writing process and of every worker, and
whether the two runs' per-step tables and PCA paths are equal (the autoencoders are refitted in
each rebuild, so their paths are compared by their largest difference). The load average is
printed beside the times: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REBUILT = ("extract", "attribute", "project")
KEPT = ("examples.parquet", "history.parquet", "models", "steps/inputs.parquet")


def sibling(runs: Path, run_id: str, mode: str) -> Path:
    """``<runs>/<run_id>-<mode>``: the run's data and model linked in, later stages forgotten."""
    from pipeline import runformat

    source, target = runs / run_id, runs / f"{run_id}-{mode}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for name in KEPT:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, copy_function=os.link)
        elif path.exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target / name)
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["run_id"] = target.name
    (target / "manifest.json").write_text(json.dumps(manifest))
    writer = runformat.RunWriter(runs, target.name)
    writer.invalidate_from(["data", "train", *REBUILT], REBUILT[0])
    writer.write_manifest()
    writer.close()
    return target


def child(runs: Path, run_id: str, mode: str, workers: int, memory_limit: str) -> None:
    """Rebuild in this (fresh) process; print one JSON line."""
    from pipeline import runformat
    from pipeline.kinds import classification

    config = runformat.Run.open(runs, run_id).manifest.config
    cluster = client = None
    if mode == "dask":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, memory_limit=memory_limit)
        client = Client(cluster)
    started = time.perf_counter()
    summary = classification.run_classification(config, runs, f"{run_id}-{mode}", scheduler=client)
    wall = time.perf_counter() - started
    workers_peak = []
    if client is not None:
        workers_peak = sorted(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values())
        client.close()
        cluster.close()
    print(json.dumps({"wall_s": wall, "stages": {s.name: s.seconds for s in summary.stages},
                      "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "workers_peak_kib": workers_peak, "load": os.getloadavg()[0]}))


def compare(runs: Path, run_id: str) -> None:
    from pipeline import runformat

    here, there = (runformat.Run.open(runs, f"{run_id}-{mode}") for mode in ("here", "dask"))
    units = [layer["units"] for layer in here.manifest["layers"]]
    for layer, n_units in enumerate(units):
        for kind in runformat.TENSOR_KINDS:
            equal = all(np.array_equal(here.step_matrix(layer, kind, range(u0, min(u0 + 25, n_units))),
                                       there.step_matrix(layer, kind, range(u0, min(u0 + 25, n_units))))
                        for u0 in range(0, n_units, 25))
            print(f"   layer {layer} {kind:<6s} per-step table equal: {equal}")
    ours, theirs = here.projections(), there.projections()
    for pid in sorted(set(ours["projection"])):
        a = ours[ours["projection"] == pid][["x", "y", "z"]].to_numpy(np.float64)
        b = theirs[theirs["projection"] == pid][["x", "y", "z"]].to_numpy(np.float64)
        same = a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        gap = float(np.nanmax(np.abs(a - b))) if a.shape == b.shape else float("nan")
        print(f"   {pid:<12s} {len(a):>10,} rows  equal: {same}  largest difference {gap:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GiB", help="per worker (dask's memory_limit)")
    parser.add_argument("--child", choices=("here", "dask"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs, args.run_id, args.child, args.workers, args.memory_limit)
        return
    print(f"machine: {os.cpu_count()} cores; cluster: {args.workers} workers x 1 thread, "
          f"memory limit {args.memory_limit} each")
    for mode in ("here", "dask"):
        sibling(args.runs, args.run_id, mode)
        done = subprocess.run([sys.executable, __file__, "--runs", str(args.runs), "--run-id", args.run_id,
                               "--workers", str(args.workers), "--memory-limit", args.memory_limit,
                               "--child", mode], capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            sys.exit(f"{mode} failed: {done.stderr.strip()[-2000:]}")
        r = json.loads(lines[-1])
        stages = ", ".join(f"{name} {s:.0f} s" for name, s in r["stages"].items() if s is not None)
        peaks = ", ".join(f"{k / 1024:.0f}" for k in r["workers_peak_kib"]) or "-"
        print(f"{'in process' if mode == 'here' else 'on Dask':<10s}: {r['wall_s']:.0f} s ({stages}); "
              f"writer peak RSS {r['peak_kib'] / 1024:.0f} MB; workers' peak RSS {peaks} MB; "
              f"load {r['load']:.1f}")
    compare(args.runs, args.run_id)


if __name__ == "__main__":
    main()

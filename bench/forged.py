"""Benchmark of a forged callback request (issue 16, "cost of forged requests"): the example paths
request with 5,000 class names the run does not have (~68 KB), before and after the value guard.

    python bench/forged.py                          # builds an Auslan-sized run in a temp dir (~1 min)
    python bench/forged.py --runs DIR --run ID      # an existing run instead (e.g. real Auslan)

"before" is the dashboard as it was at commit ``BEFORE`` (``git archive`` of that commit into a
temporary folder), "after" is this checkout; both run the same measuring script in a child process
of their own (fresh memos and a fresh shared cache each) against the same run, one after the other
in this one run of the benchmark. Each posts the request through the real Flask app (test client,
no network) ``--repeat`` times with fresh names each time (a repeated request would be a cache hit),
after one ordinary request has warmed the run's reads. Beside the whole request, the paths figure
function alone is timed with the 5,000 names. The load average is printed beside the times: the
machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEFORE = "3b37a45"          # the last commit before the value guard (dashboard/filters.py)
N_NAMES = 5000

MEASURE = r'''
import json, os, statistics, sys, time
from bench.load import component_props, request_body, server_callbacks, split_outputs
from dashboard import data, state
from dashboard.app import create_app
from dashboard.figures.paths import paths_figure

runs, run_id, repeat, n_names = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = create_app(runs).server.test_client()
props = component_props(client.get("/_dash-layout").get_json())
values = {(cid, prop): value for cid, p in props.items() for prop, value in p.items()
          if prop not in ("children", "id")}
values.update({(state.RUN, "value"): run_id, (state.TABS, "value"): "paths"})
dep = next(d for d in server_callbacks(client.get("/_dash-dependencies").get_json())
           if ("paths-graph", "figure") in [(i, p.split("@")[0]) for i, p in split_outputs(d["output"])])

def post(classes):
    body = json.dumps(request_body(dep, {**values, (state.CLASS, "value"): classes}, (state.CLASS, "value")))
    started = time.perf_counter()
    response = client.post("/_dash-update-component", data=body, content_type="application/json")
    return time.perf_counter() - started, response, len(body)

warm, response, _ = post([])                     # reads the run once, as any earlier page view did
assert response.status_code == 200, response.status_code
times, size, answer = [], 0, ""
for r in range(repeat):
    elapsed, response, size = post([f"fake{r}-{i:04d}" for i in range(n_names)])
    times.append(elapsed)
    figure = response.get_json()["response"]["paths-graph"]["figure"]
    notes = figure.get("layout", {}).get("annotations") or []
    answer = (notes[0]["text"] if notes and not figure.get("data") else
              f"a figure of {len(figure.get('data', []))} traces")
run = data.get_run(run_id)
points = data.projection(run, "pca2" if "ae2" not in run.manifest.projection_ids else "ae2")
labels = data.labels(run)
figure_times = []
for r in range(repeat):
    started = time.perf_counter()
    paths_figure(points, labels, highlight=[f"fake{r}-{i:04d}" for i in range(n_names)])
    figure_times.append(time.perf_counter() - started)
print(json.dumps({"request": statistics.median(times), "request_max": max(times), "bytes": size,
                  "status": response.status_code, "answer": answer[:120], "warm": warm,
                  "figure": statistics.median(figure_times), "points": len(points)}))
'''


def measure(tree: Path, runs: Path, run_id: str, repeat: int, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "LSTM_LENS_CACHE": str(cache), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(runs), run_id, str(repeat), str(N_NAMES)],
                          cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measurement in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path)
    parser.add_argument("--run", default="bench-auslan-size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="the commit to measure as 'before'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        runs = args.runs
        if runs is None:
            from bench.views import build_auslan_sized_run
            runs = scratch_path / "runs"
            started = time.perf_counter()
            build_auslan_sized_run(runs, args.run)
            print(f"built an Auslan-sized run in {time.perf_counter() - started:.1f} s")
        before_tree = scratch_path / "before"
        before_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "dashboard", "pipeline",
                                  "bench", "assets"], capture_output=True, check=False)
        if archive.returncode != 0:
            raise SystemExit(f"cannot read commit {args.before} (a git checkout is needed for 'before'): "
                             f"{archive.stderr.decode()[-300:]}")
        subprocess.run(["tar", "-x", "-C", str(before_tree)], input=archive.stdout, check=True)
        print(f"paths request with {N_NAMES:,} unknown class names, run {args.run!r}, median of {args.repeat}:")
        results = {}
        for name, tree in (("before", before_tree), ("after", ROOT)):
            load_before = load()
            results[name] = result = measure(tree, runs, args.run, args.repeat, scratch_path / f"cache-{name}")
            print(f"  {name:6} ({args.before if name == 'before' else 'this checkout'}): request "
                  f"{result['request'] * 1000:9.1f} ms (max {result['request_max'] * 1000:.1f}), "
                  f"{result['bytes'] / 1000:.0f} kB sent, {result['status']}: {result['answer']!r}; "
                  f"paths_figure alone {result['figure'] * 1000:.1f} ms on {result['points']:,} points; "
                  f"load average {load_before} -> {load()}")
        ratio = results["before"]["request"] / max(results["after"]["request"], 1e-9)
        print(f"  the request is {ratio:,.0f}x faster; the figure function "
              f"{results['before']['figure'] / max(results['after']['figure'], 1e-9):,.0f}x")


if __name__ == "__main__":
    main()

"""Benchmark of the dashboard's server side on the real Auslan run: every callback and the page.

    python bench/dashboard.py                        # data/runs/auslan, built first if missing
    python bench/dashboard.py --runs DIR --run-id ID # an existing run
    python bench/dashboard.py --repeat 30            # more calls per callback
    python bench/dashboard.py --sized                # an Auslan-sized run with random weights
                                                     # (bench/views.py builds it, ~10 s, no training)

The Auslan run is built with ``python -m pipeline run auslan --source ../shared/data/auslan``
(a child process; this process never imports TensorFlow) when the runs folder lacks it.

Each server callback is POSTed to /_dash-update-component through Flask's test client exactly as
the page sends it (the page's initial values, the run and the callback's own tab showing, a
misclassified example selected), in two scenarios: every class, and two classes chosen. The first
call is reported as "cold" (parquet reads, caches empty); p50/p95 are over the repeated calls
after it (what a user clicking around pays). The response size is the JSON Dash sends. The page
is the HTML, the layout and the callback graph; the JavaScript bundles (cached after the first
visit) are reported separately, raw and gzipped. Budgets: p95 < 100 ms per callback, page < 2 MB,
no figure response > 3 MB. Wall times on a shared machine include other processes' work, so the
process CPU time of each call (p95) is printed beside them.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import data, state  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.views import VIEWS  # noqa: E402
from pipeline import runformat  # noqa: E402
from load import split_outputs  # noqa: E402  (bench/load.py, beside this file)

P95_BUDGET_MS = 100
PAGE_BUDGET = 2 * 1024 * 1024
FIGURE_BUDGET = 3 * 1024 * 1024
AUSLAN_SOURCE = ROOT.parent / "shared" / "data" / "auslan"


def ensure_run(runs_dir: Path, run_id: str) -> None:
    try:
        data.open_run(runs_dir, run_id)
        return
    except runformat.RunError:
        pass
    if run_id != "auslan":
        raise SystemExit(f"no readable run {run_id!r} in {runs_dir}")
    print(f"building the Auslan run in {runs_dir} (python -m pipeline run auslan) ...", flush=True)
    subprocess.run([sys.executable, "-m", "pipeline", "run", "auslan", "--source", str(AUSLAN_SOURCE),
                    "--runs", str(runs_dir)], cwd=ROOT, check=True)


def page_values(layout: dict) -> dict:
    """``{(id, prop): value}`` of every component with a plain id in a /_dash-layout answer."""
    values = {}

    def walk(node):
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict) and "props" in node:
            props = node["props"]
            if isinstance(props.get("id"), str):
                values.update({(props["id"], k): v for k, v in props.items() if k not in ("id", "children")})
            for value in props.values():
                walk(value)

    walk(layout)
    return values


def body(dep: dict, values: dict) -> dict:
    outputs = [{"id": i, "property": p} for i, p in split_outputs(dep["output"])]
    fill = lambda deps: [{**d, "value": values.get((d["id"], d["property"]))} for d in deps]  # noqa: E731
    first = dep["inputs"][0]
    return {"output": dep["output"], "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": fill(dep["inputs"]), "state": fill(dep.get("state", [])),
            "changedPropIds": [f"{first['id']}.{first['property']}"]}


def view_of(dep: dict) -> str | None:
    """The view whose tab must show for the callback to work: its first output's id prefix."""
    first = split_outputs(dep["output"])[0][0]
    owners = [v.VIEW_ID for v in VIEWS if first.startswith(f"{v.VIEW_ID}-")]
    return max(owners, key=len) if owners else None


def server_callbacks(dependencies: list[dict]) -> list[dict]:
    """Callbacks that run on the server on plain ids, and that the page fires without a click
    (prevent_initial_call ones answer clicks and return at once)."""
    return [d for d in dependencies if not d.get("clientside_function")
            and not d.get("prevent_initial_call")
            and all(isinstance(x["id"], str) and not x["id"].startswith("{")
                    for x in d["inputs"] + d.get("state", []))]


def time_callback(client, payload: dict, repeat: int) -> dict:
    """Wall and process-CPU milliseconds of each call (the first is the cold one)."""
    wall, cpu, size, status = [], [], 0, None
    for _ in range(repeat + 1):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.post("/_dash-update-component", json=payload)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        size, status = len(response.data), response.status_code
    warm, warm_cpu = np.array(wall[1:]), np.array(cpu[1:])
    return {"cold": wall[0], "p50": float(np.percentile(warm, 50)), "p95": float(np.percentile(warm, 95)),
            "cpu_p95": float(np.percentile(warm_cpu, 95)), "bytes": size, "status": status}


def page_sizes(client) -> dict:
    index = client.get("/")
    layout = client.get("/_dash-layout")
    dependencies = client.get("/_dash-dependencies")
    scripts = re.findall(r'src="([^"]+)"', index.get_data(as_text=True))
    raw = zipped = 0
    for src in scripts:
        content = client.get(src.split("?")[0] if "_dash-component-suites" not in src else src).data
        raw += len(content)
        zipped += len(gzip.compress(content, 6))
    return {"html": len(index.data), "layout": len(layout.data), "dependencies": len(dependencies.data),
            "scripts_raw": raw, "scripts_gzip": zipped, "n_scripts": len(scripts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "data" / "runs")
    parser.add_argument("--run-id", default="auslan")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per callback after the first")
    parser.add_argument("--sized", action="store_true",
                        help="build an Auslan-sized run with random weights in a temp dir and time it")
    args = parser.parse_args()
    scratch = None
    if args.sized:
        from views import build_auslan_sized_run  # bench/views.py, beside this file
        scratch = tempfile.TemporaryDirectory()
        args.runs, args.run_id = Path(scratch.name) / "runs", "bench-auslan-size"
        os.environ["LSTM_LENS_CACHE"] = str(Path(scratch.name) / "cache")
        build_auslan_sized_run(args.runs, args.run_id)
    else:
        ensure_run(args.runs, args.run_id)

    app = create_app(args.runs)
    client = app.server.test_client()
    run = data.get_run(args.run_id)
    frame = data.examples(run)
    wrong = frame[~frame["correct"].astype(bool)] if "correct" in frame else frame.iloc[:0]
    selected = int((wrong if len(wrong) else frame)["example_id"].iat[0])
    steps = int(frame["length"].sum())
    print(f"run {args.run_id}: {len(frame):,} examples, {steps:,} steps, {len(run.classes)} classes, "
          f"{len(wrong):,} misclassified; {args.repeat} timed calls per callback after a cold one\n")

    sizes = page_sizes(client)
    values = page_values(client.get("/_dash-layout").get_json())
    values[(state.RUN, "value")] = args.run_id
    values[(state.SELECTED, "data")] = selected
    dependencies = server_callbacks(client.get("/_dash-dependencies").get_json())
    scenarios = {"all classes": [], "two classes": run.classes[:2]}

    rows = []
    for scenario, classes in scenarios.items():
        for dep in dependencies:
            view = view_of(dep)
            scenario_values = {**values, (state.CLASS, "value"): classes,
                               (state.TABS, "value"): view or values[(state.TABS, "value")]}
            result = time_callback(client, body(dep, scenario_values), args.repeat)
            rows.append((scenario, dep["output"].strip("."), result))

    print(f"{'scenario':<12} {'callback (outputs)':<62} {'cold ms':>8} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'cpu p95':>7} {'response':>10}  ok")
    failures = []
    for scenario, output, result in rows:
        name = output if len(output) <= 62 else output[:59] + "..."
        over = result["p95"] >= P95_BUDGET_MS or result["bytes"] > FIGURE_BUDGET or result["status"] >= 400
        if over:
            failures.append((scenario, output, result))
        print(f"{scenario:<12} {name:<62} {result['cold']:8.1f} {result['p50']:7.1f} {result['p95']:7.1f} "
              f"{result['cpu_p95']:7.1f} {result['bytes'] / 1024:8.1f}KB  {'OVER' if over else 'ok'}"
              + (f" (HTTP {result['status']})" if result["status"] >= 400 else ""))
    page = sizes["html"] + sizes["layout"] + sizes["dependencies"]
    print(f"\ninitial page: {page / 1024:.1f} KB (HTML {sizes['html'] / 1024:.1f} KB, layout "
          f"{sizes['layout'] / 1024:.1f} KB, callback graph {sizes['dependencies'] / 1024:.1f} KB)"
          f" -> {'ok' if page < PAGE_BUDGET else 'OVER'} (budget 2 MB)")
    print(f"JavaScript bundles ({sizes['n_scripts']} files, cached after the first visit): "
          f"{sizes['scripts_raw'] / 1e6:.2f} MB raw, {sizes['scripts_gzip'] / 1e6:.2f} MB gzipped")
    largest = max(rows, key=lambda row: row[2]["bytes"])
    print(f"largest response: {largest[2]['bytes'] / 1024:.1f} KB ({largest[1][:60]}, {largest[0]}) "
          f"-> {'ok' if largest[2]['bytes'] <= FIGURE_BUDGET else 'OVER'} (budget 3 MB)")
    worst = max(rows, key=lambda row: row[2]["p95"])
    print(f"slowest p95: {worst[2]['p95']:.1f} ms ({worst[1][:60]}, {worst[0]}) -> "
          f"{'ok' if worst[2]['p95'] < P95_BUDGET_MS else 'OVER'} (budget {P95_BUDGET_MS} ms)")
    if failures:
        print(f"\n{len(failures)} callback(s) over budget")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

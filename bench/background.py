"""The time of one select & match answer in-process, as a DiskcacheManager job and as a Celery job.

    python bench/background.py                          # builds a parenthesis run in a temp folder first
    python bench/background.py --runs data/runs --run text-python --repeat 5

In-process: ``select_match.match_view`` (the plain callback's work). The two background managers:
a Flask test client of the app (LSTM_LENS_BACKGROUND=1, then LSTM_LENS_CELERY_BROKER on a
redis-server of its own with one ``celery -A dashboard.worker worker`` process) posts the page's
request and polls every 5 ms until the answer: so the times are the server's, without the browser's
poll interval (Dash's default: 1 s). The selection is the longest run of one nesting depth, as in
tests/test_background.py. Medians (and min-max) of ``--repeat`` answers after one warm-up each;
the load average is printed beside them (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import background, data  # noqa: E402
from dashboard.views import select_match  # noqa: E402
from dashboard.views import text_heatmap  # noqa: E402

CALLBACK = "/_dash-update-component"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def build_run(runs: Path, documents: int) -> str:
    subprocess.run([sys.executable, "-m", "pipeline", "run", "text", "--corpus", "parens", "--documents",
                    str(documents), "--epochs", "3", "--units", "64", "--runs", str(runs), "--run-id", "parens",
                    "--quiet"], cwd=ROOT, check=True)
    return "parens"


def chosen_selection(run_id: str) -> dict:
    corpus = text_heatmap.corpus_text(data.get_run(run_id))
    group = max(re.finditer(r"\(3+", corpus), key=lambda m: (len(m.group()), -m.start()))
    _, _, chosen = select_match.select_view(run_id, "last", "h", group.start(), group.start(), group.end() - 1,
                                            0.3, [], "")
    if not chosen or not chosen["cells"]:
        raise SystemExit("error: the selection has no cells on; pick another run")
    return chosen


def request_body(chosen: dict) -> dict:
    return {"output": f"..{select_match.SUMMARY}.children...{select_match.RESULTS}.children..",
            "outputs": [{"id": select_match.SUMMARY, "property": "children"},
                        {"id": select_match.RESULTS, "property": "children"}],
            "inputs": [{"id": select_match.HYPOTHESIS, "property": "data", "value": chosen},
                       {"id": select_match.COLOUR_BY, "property": "value", "value": ""},
                       {"id": "view-tabs", "property": "value", "value": select_match.VIEW_ID}],
            "changedPropIds": [f"{select_match.HYPOTHESIS}.data"], "state": []}


def background_answer(client, body: dict) -> tuple[float, str]:
    """Seconds from the page's request to the answer, and the answer's summary."""
    started = time.perf_counter()
    first = client.post(CALLBACK, data=json.dumps(body), content_type="application/json").get_json()
    query = f"?cacheKey={first['cacheKey']}&job={first['job']}"
    while True:
        polled = client.post(CALLBACK + query, data=json.dumps(body), content_type="application/json").get_json()
        if polled and "response" in polled:
            return time.perf_counter() - started, polled["response"][select_match.SUMMARY]["children"]
        if time.perf_counter() - started > 120:
            raise SystemExit("error: no answer within 120 s")
        time.sleep(0.005)


def timed(answer, repeat: int) -> tuple[list[float], str]:
    answer()                                            # warm-up: the states read and cached
    results = [answer() for _ in range(repeat)]
    return [seconds for seconds, _ in results], results[-1][1]


def start_celery(runs: Path, folder: Path) -> tuple[str, list[subprocess.Popen]]:
    import redis
    if shutil.which("redis-server") is None:
        raise SystemExit("error: no redis-server (apt-get install redis-server)")
    port = free_port()
    with open(folder / "redis.log", "w") as log:       # the child keeps its own copy of the file
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                   "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    else:
        raise SystemExit("error: redis-server did not start")
    env = dict(os.environ, LSTM_LENS_RUNS=str(runs), **{background.BROKER_ENV: url})
    with open(folder / "worker.log", "w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "dashboard.worker", "worker",
                                   "--loglevel=WARNING", "--concurrency=1", "--without-mingle", "--without-gossip"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return url, [worker, server]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, help="a runs folder (default: build a parenthesis run in a temp one)")
    parser.add_argument("--run", help="a language-model run in --runs")
    parser.add_argument("--documents", type=int, default=2000, help="lines of the parenthesis run built")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    from dashboard.app import create_app

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        os.environ["LSTM_LENS_CACHE"] = str(folder / "cache")
        runs = args.runs or folder / "runs"
        run_id = args.run if args.runs and args.run else build_run(runs, args.documents)
        data.configure(runs)
        chosen = chosen_selection(run_id)
        body = request_body(chosen)
        rows = data.get_run(run_id).step_matrix(chosen["layer"], chosen["kind"]).shape
        print(f"run {run_id}: {rows[0]:,} steps x {rows[1]} units, {len(chosen['cells'])} cells selected; "
              f"load average {load()}")

        def in_process():
            started = time.perf_counter()
            summary, _ = select_match.match_view(chosen, "")
            return time.perf_counter() - started, summary

        times = {"in-process": timed(in_process, args.repeat)}
        os.environ[background.BACKGROUND_ENV] = "1"
        disk_client = create_app(runs).server.test_client()
        times["DiskcacheManager"] = timed(lambda: background_answer(disk_client, body), args.repeat)
        url, processes = start_celery(runs, folder)
        try:
            os.environ[background.BROKER_ENV] = url
            celery_client = create_app(runs).server.test_client()
            times["CeleryManager + Redis"] = timed(lambda: background_answer(celery_client, body), args.repeat)
        finally:
            for child in processes:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(timeout=30)
        for name, (seconds, summary) in times.items():
            ms = sorted(s * 1000 for s in seconds)
            print(f"{name:>22}: median {statistics.median(ms):7.1f} ms (min {ms[0]:.1f}, max {ms[-1]:.1f}) "
                  f"over {len(ms)}; {summary.split(' in ')[0]}")
        print(f"load average {load()}")


if __name__ == "__main__":
    main()

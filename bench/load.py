"""Load benchmark: simulated users replay the dashboard's real callback requests against gunicorn.

    python bench/load.py --runs DIR --run-id auslan [--users 16] [--seconds 30] [--workers 2]
    python bench/load.py --runs DIR --run-id auslan --scenario all   # repeated, then varied use

Starts gunicorn (dashboard/gunicorn_conf.py, the Docker image's server) on a free 127.0.0.1 port,
reads the page's layout and callback map over HTTP (``/_dash-layout``, ``/_dash-dependencies``)
and builds every request as the browser does: each simulated user keeps the page's state (the
layout's values, then its own changes), makes one change at a time (a tab, the class filter, the
split, correct/misclassified, the selected example, a view's option), sends every server
callback that has the changed property as an input, one request after another, then looks at the
result for --think seconds (on average; 0: no pause, a saturation test). Prints requests/s,
p50/p95/p99 latency and the error count (HTTP status >= 400 or no answer). Traffic goes to
127.0.0.1 only and stops after --seconds or --max-requests.

Two scenarios (``--scenario``): "repeated" is the one above (a few values per control, so most
answers soon come from the memo); "varied" has users pick a random *valid* value for any control
some server callback listens to (``VariedUser``): the filters (classes, splits, hands,
correct/misclassified), the selected example and every view option -- radio items, checklists,
dropdowns, sliders and range sliders (on their step grid), number inputs such as a cell index --
with the values the run offers, read through pipeline.runformat and from the app's own callbacks
that fill options for a run (layer pickers, projections, slider marks). Graph clicks and buttons
are left out (the selected example stands for a click). "all" runs repeated with --users, then
varied with 1 user and with --users, each on a fresh server and an empty shared cache, and prints
p50/p95/p99 per callback side by side.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import state  # noqa: E402
from pipeline import runformat  # noqa: E402

TAB = (state.TABS, "value")
HIDDEN = " [tab hidden]"
HIDDEN_ANY = "any callback" + HIDDEN      # every request answered with no_update, together


# -- what the page sends ----------------------------------------------------------------------

def component_props(layout: dict) -> dict:
    """``{component id: props}`` for every component with a string id in a ``/_dash-layout``."""
    found: dict = {}

    def walk(node):
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict) and "props" in node:
            props = node["props"]
            if isinstance(props.get("id"), str):
                found[props["id"]] = props
            for value in props.values():
                walk(value)

    walk(layout)
    return found


def split_outputs(output: str) -> list[tuple[str, str]]:
    """``"..a.b...c.d.."`` or ``"a.b@hash"`` -> ``[(id, property), ...]``."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(part.rsplit(".", 1)) for part in parts]


def server_callbacks(dependencies: list[dict]) -> list[dict]:
    """The callbacks the server runs whose inputs are plain component ids (the pattern-matching
    ones answer clicks on generated lists; clientside ones never reach the server)."""
    keep = []
    for dep in dependencies:
        if dep.get("clientside_function"):
            continue
        ids = [d["id"] for d in dep["inputs"] + dep.get("state", [])]
        if all(isinstance(i, str) and not i.startswith("{") for i in ids):
            keep.append(dep)
    return keep


def request_body(dep: dict, values: dict, changed: tuple[str, str] | None = None) -> dict:
    """The JSON body the browser posts to /_dash-update-component for ``dep`` given ``values``
    (``{(id, prop): value}``)."""
    outputs = [{"id": i, "property": p} for i, p in split_outputs(dep["output"])]
    inputs = [{"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}
              for d in dep["inputs"]]
    states = [{"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}
              for d in dep.get("state", [])]
    first = f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}" if dep["inputs"] else None
    changed_id = f"{changed[0]}.{changed[1]}" if changed else first
    return {"output": dep["output"], "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": inputs, "changedPropIds": [changed_id] if changed_id else [], "state": states}


def page_values(props: dict) -> dict:
    return {(cid, prop): value for cid, p in props.items() for prop, value in p.items()
            if prop not in ("children", "id")}


def owning_view(dep: dict, view_ids: list[str]) -> str | None:
    """The view whose tab must show for ``dep`` to do work (its first output's id prefix)."""
    first_id = split_outputs(dep["output"])[0][0]
    prefix = first_id.split("-")[0]
    return prefix if prefix in view_ids else None


def all_bodies(dependencies: list[dict], props: dict, overrides: dict, with_initial_only=True) -> list:
    """One body per server callback, each with its view's tab showing: what the page sends when
    it loads with ``overrides`` (``{(id, prop): value}``) applied, tab by tab."""
    view_ids = tab_values(props)
    bodies = []
    for dep in server_callbacks(dependencies):
        if with_initial_only and dep.get("prevent_initial_call"):
            continue
        values = {**page_values(props), **overrides}
        view = owning_view(dep, view_ids)
        if view is not None:
            values[TAB] = view
        bodies.append(request_body(dep, values))
    return bodies


def tab_values(props: dict) -> list[str]:
    tabs = props.get(state.TABS, {}).get("children") or []
    return [tab["props"]["value"] for tab in tabs if isinstance(tab, dict)]


# -- a simulated user -------------------------------------------------------------------------

class User:
    """One browser tab: the page's values, changed one at a time, and the requests each change fires."""

    def __init__(self, seed: int, dependencies: list[dict], props: dict, run_id: str,
                 classes: list[str], example_ids: np.ndarray, views: list[str]):
        self.rng = random.Random(seed)
        self.callbacks = [d for d in server_callbacks(dependencies) if not d.get("prevent_initial_call")]
        self.values = page_values(props)
        self.values[(state.RUN, "value")] = run_id
        self.classes, self.example_ids, self.views = classes, example_ids, views
        self.all_views = tab_values(props)
        self.options = {(cid, "value"): [o["value"] if isinstance(o, dict) else o for o in p["options"]]
                        for cid, p in props.items()
                        if isinstance(p.get("options"), list) and p["options"] and "-" in cid
                        and cid.split("-")[0] in views}

    def change(self) -> tuple[str, str]:
        """Make one change a person would make; returns the (id, prop) that changed."""
        roll = self.rng.random()
        view = self.values.get(TAB)
        own = [key for key in self.options if key[0].startswith(f"{view}-")]
        if roll < 0.2:
            key, value = TAB, self.rng.choice(self.views)
        elif roll < 0.4:
            key, value = (state.CLASS, "value"), self.rng.sample(self.classes, self.rng.randint(0, 3))
        elif roll < 0.5:
            key = (state.SPLIT, "value")
            value = [s for s in state.SPLITS if self.rng.random() < 0.7] or ["test"]
        elif roll < 0.6:
            key, value = (state.CORRECT, "value"), self.rng.choice(state.CORRECTNESS)
        elif roll < 0.8 or not own:
            key, value = (state.SELECTED, "data"), int(self.rng.choice(self.example_ids))
        else:
            key = self.rng.choice(own)
            value = self.rng.choice(self.options[key])
            if isinstance(self.values.get(key), list):    # a checklist used as a switch
                value = [value] if self.rng.random() < 0.5 else []
        self.values[key] = value
        return key

    def requests(self, changed: tuple[str, str]) -> list[dict]:
        return [request_body(dep, self.values, changed) for dep in self.callbacks
                if any((d["id"], d["property"]) == changed for d in dep["inputs"])]


class VariedUser(User):
    """A user who sets any control some server callback listens to, to a random valid value.

    ``domains``: ``{(id, prop): draw(rng, values) -> value}``, built by ``control_domains`` from
    the layout, the run-specific options the app's callbacks answered, and the run itself."""

    def __init__(self, seed: int, dependencies: list[dict], props: dict, run_id: str, domains: dict,
                 views: list[str]):
        super().__init__(seed, dependencies, props, run_id, [], np.zeros(1, np.int64), views)
        self.domains = domains
        if views and self.values.get(TAB) not in views:
            self.values[TAB] = views[0]

    def change(self) -> tuple[str, str]:
        view = self.values.get(TAB)
        shared = [key for key in self.domains if not any(key[0].startswith(f"{v}-") for v in self.views)]
        own = [key for key in self.domains if key[0].startswith(f"{view}-")]
        if self.rng.random() < 0.15 or not shared + own:
            key = TAB
            self.values[key] = self.rng.choice(self.views)
            return key
        key = self.rng.choice(shared + own)
        self.values[key] = self.domains[key](self.rng, self.values)
        return key


def _option_values(options) -> list:
    return [o["value"] if isinstance(o, dict) else o for o in options or []
            if not (isinstance(o, dict) and o.get("disabled"))]


def run_offered(post, dependencies: list[dict], props: dict, run_id: str) -> dict:
    """What the app's callbacks fill in for the run (options, slider marks and bounds):
    ``{id: {prop: value}}``, from every server callback whose inputs are only the run picker.
    ``post(body) -> answer``: one callback request (``http_post`` to a server, or a test client)."""
    offered: dict = {}
    values = {**page_values(props), (state.RUN, "value"): run_id}
    for dep in server_callbacks(dependencies):
        if {d["id"] for d in dep["inputs"]} != {state.RUN}:
            continue
        if not {p for _, p in split_outputs(dep["output"])} & {"options", "marks", "min", "max"}:
            continue
        answer = post(request_body(dep, values))
        for cid, answered in (answer.get("response") or {}).items():
            offered.setdefault(cid, {}).update(answered)
    return offered


def http_post(port: int):
    """``post(body) -> answer`` on the server at 127.0.0.1:port."""
    client = Client(port)

    def post(body: dict) -> dict:
        status, _, answer = client.post(body)
        return json.loads(answer) if status == 200 and answer else {}
    return post


def control_domains(dependencies: list[dict], props: dict, offered: dict, run: runformat.Run,
                    views: list[str]) -> dict:
    """``{(id, prop): draw}`` for every control a server callback listens to whose valid values can
    be told from the layout, the run's offered options and the run (pipeline.runformat)."""
    manifest = run.manifest
    examples = run.read_table(runformat.EXAMPLES_FILE)
    example_ids = examples["example_id"].to_numpy()
    units = min((layer.units for layer in manifest.layers), default=1)
    layer_values = [str(layer.index) for layer in manifest.layers[:-1]] + ["last"]
    projections = manifest.projection_ids
    epochs = run.kept_epochs
    classes = list(run.classes)
    listened = {(d["id"], d["property"]) for dep in server_callbacks(dependencies) for d in dep["inputs"]}
    domains: dict = {}

    def subset(choices, allow_empty=False):
        def draw(rng, _values):
            picked = [c for c in choices if rng.random() < 0.6]
            return picked if picked or allow_empty else [rng.choice(choices)]
        return draw

    def one(choices):
        return lambda rng, _values: rng.choice(choices)

    if classes:
        domains[(state.CLASS, "value")] = lambda rng, _v: rng.sample(classes, min(len(classes), rng.choice([0, 1, 1, 2, 3, 5])))
    domains[(state.SPLIT, "value")] = subset(list(state.SPLITS))
    if "hand_usage" in examples and examples["hand_usage"].notna().any():
        domains[(state.HAND, "value")] = subset(list(state.HANDS))
    if "correct" in examples:
        domains[(state.CORRECT, "value")] = one(list(state.CORRECTNESS))
    domains[(state.SELECTED, "data")] = lambda rng, _v: int(rng.choice(example_ids))
    for cid, prop in sorted(listened):
        if (cid, prop) in domains or prop != "value" or "-" not in cid or cid.split("-")[0] not in views:
            continue
        p = {**props.get(cid, {}), **offered.get(cid, {})}
        value = p.get("value")
        if cid.endswith("-layer"):
            domains[(cid, prop)] = one(layer_values)
        elif cid.endswith("-epoch"):
            if epochs:
                domains[(cid, prop)] = one(epochs)
        elif isinstance(p.get("options"), list):
            choices = _option_values(p["options"])
            if cid.endswith(("-projection", "-method")):
                choices = [c for c in choices if any(str(i).startswith(str(c)) for i in projections)]
            if not choices:
                continue
            domains[(cid, prop)] = subset(choices, allow_empty=True) if isinstance(value, list) else one(choices)
        elif p.get("step") and p.get("min") is not None and p.get("max") is not None:
            lo, hi, step = float(p["min"]), float(p["max"]), float(p["step"])
            grid = [round(lo + i * step, 10) for i in range(int(round((hi - lo) / step)) + 1)]
            if isinstance(value, list) and len(value) == 2:     # a range slider: two values, low < high
                domains[(cid, prop)] = lambda rng, _v, grid=grid: sorted(rng.sample(grid, 2))
            else:
                domains[(cid, prop)] = one(grid)
        elif p.get("type") == "number" and cid.endswith(("-unit", "-cell")):
            domains[(cid, prop)] = lambda rng, _v: rng.randrange(units)
    return domains


# -- the server and the clients ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(runs: Path, port: int, workers: int, threads: int,
                   cache: Path | None = None) -> subprocess.Popen:
    """gunicorn serving ``runs``; ``cache``: the shared figure cache's folder (an empty one: cold)."""
    env = {**os.environ, "LSTM_LENS_RUNS": str(runs), "LSTM_LENS_WORKERS": str(workers),
           "LSTM_LENS_THREADS": str(threads), "LSTM_LENS_BIND": f"127.0.0.1:{port}"}
    if cache is not None:
        env["LSTM_LENS_CACHE"] = str(cache)
    for name in ("LSTM_LENS_USERS", "LSTM_LENS_PASSWORD", "LSTM_LENS_AUTH_FILE"):
        env.pop(name, None)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "dashboard/gunicorn_conf.py",
                               "app:server"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}):\n{server.stderr.read()}")
        try:
            status, _ = get(port, "/healthz")
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Client:
    """One keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, body: dict) -> tuple[int, float, bytes]:
        """(HTTP status or 0 for no answer, seconds, the answer). A keep-alive connection the server closed
        while the user was idle is reopened and the request sent again, as browsers do."""
        payload = json.dumps(body)
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.connection.request("POST", "/_dash-update-component", payload,
                                        {"Content-Type": "application/json"})
                response = self.connection.getresponse()
                answer = response.read()
                return response.status, time.perf_counter() - started, answer
            except (OSError, http.client.HTTPException) as error:
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                idle_closed = isinstance(error, (http.client.RemoteDisconnected, BrokenPipeError,
                                                 ConnectionResetError))
                if attempt == 2 or not idle_closed:
                    break
        return 0, time.perf_counter() - started, b""


# What the value guard (dashboard/filters.py) answers for a value the page would never send: the
# varied users must never meet it (their values are valid), so the report counts these answers.
REFUSALS = (b"is not one of the choices", b"is not a layer", b"has no layer", b"is not an examples filter",
            b"numbers from", b"has no example", b"kept no picture of epoch", b"must be a list")


def run_users(port: int, users: list[User], seconds: float, max_requests: int,
              think: float = 0.0) -> tuple[list, list]:
    """Every user changes and sends until time or the request budget runs out.

    Returns ``[(callback output, seconds), ...]`` and the failed requests' statuses."""
    latencies: list[tuple[str, float]] = []
    errors: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    budget = [max_requests]

    def loop(user: User):
        client = Client(port)
        while time.monotonic() < stop_at:
            for body in user.requests(user.change()):
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                status, seconds_taken, answer = client.post(body)
                view = owning_view(body, user.all_views)
                # A view's callback while another tab shows answers no_update at once: kept apart.
                output = body["output"] + (HIDDEN if view is not None and view != user.values.get(TAB) else "")
                with lock:
                    latencies.append((output, seconds_taken))
                    if status == 0 or status >= 400:
                        errors.append(status)
                    elif any(refusal in answer for refusal in REFUSALS):
                        refused.append(output)
                if time.monotonic() >= stop_at:
                    return
            if think > 0:
                time.sleep(min(user.rng.uniform(0.5 * think, 1.5 * think), max(0.0, stop_at - time.monotonic())))

    threads = [threading.Thread(target=loop, args=(user,), daemon=True) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    if refused:
        print(f"          {len(refused)} answers refused a value (first: {callback_name(refused[0])})", flush=True)
    return latencies, errors


def report(label: str, latencies: list[tuple[str, float]], errors: list[int], seconds: float,
           slowest: int = 0) -> dict:
    ms = np.asarray([t for _, t in latencies]) * 1000 if latencies else np.zeros(1)
    result = {"phase": label, "requests": len(latencies), "seconds": round(seconds, 1),
              "requests_per_s": round(len(latencies) / seconds, 1),
              "p50_ms": round(float(np.percentile(ms, 50)), 1),
              "p95_ms": round(float(np.percentile(ms, 95)), 1),
              "p99_ms": round(float(np.percentile(ms, 99)), 1),
              "max_ms": round(float(ms.max()), 1), "errors": len(errors),
              "error_statuses": sorted(set(errors))}
    print(f"{label:>8}: {result['requests']:6d} requests in {seconds:5.1f} s = "
          f"{result['requests_per_s']:7.1f} req/s | p50 {result['p50_ms']:7.1f} ms  "
          f"p95 {result['p95_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  max "
          f"{result['max_ms']:7.1f} ms | errors {result['errors']}"
          + (f" (statuses {result['error_statuses']})" if errors else ""), flush=True)
    by_output: dict[str, list[float]] = {}
    for output, taken in latencies:
        by_output.setdefault(output, []).append(taken * 1000)
        if output.endswith(HIDDEN):
            by_output.setdefault(HIDDEN_ANY, []).append(taken * 1000)
    ranked = sorted(by_output.items(), key=lambda item: (item[0] == HIDDEN_ANY, -np.percentile(item[1], 95)))
    result["callbacks"] = {output: {"requests": len(times), "p50_ms": round(float(np.median(times)), 1),
                                    "p95_ms": round(float(np.percentile(times, 95)), 1),
                                    "p99_ms": round(float(np.percentile(times, 99)), 1)}
                           for output, times in ranked}
    for output, times in ranked[:slowest]:
        print(f"          {len(times):5d} x {callback_name(output):40s} p50 {np.median(times):7.1f} ms  "
              f"p95 {np.percentile(times, 95):7.1f} ms  p99 {np.percentile(times, 99):7.1f} ms", flush=True)
    return result


def callback_name(output: str) -> str:
    """A callback by its outputs' ids: ``gates-over-time+gates-histogram``."""
    if output == HIDDEN_ANY:
        return "(any callback, its tab hidden)"
    hidden = output.endswith(HIDDEN)
    output = output.removesuffix(HIDDEN)
    name = "+".join(dict.fromkeys(cid for cid, _ in split_outputs(output)))
    return (name[:40] + " (hidden)") if hidden else name[:48]


def side_by_side(results: dict[str, dict]) -> None:
    """Per callback, each scenario's p50/p95/p99 (ms), the slowest p95 of any scenario first."""
    names = list(results)
    outputs = {o for r in results.values() for o in r["callbacks"]
               if not o.endswith(HIDDEN) or o == HIDDEN_ANY}
    worst = {o: max(r["callbacks"].get(o, {}).get("p95_ms", 0) for r in results.values()) for o in outputs}
    print("\nper callback, p50 / p95 / p99 ms (requests):")
    print(f"  {'callback':<44}" + "".join(f"{n:>27}" for n in names))
    for output in sorted(outputs, key=lambda o: -worst[o]):
        cells = []
        for name in names:
            c = results[name]["callbacks"].get(output)
            cells.append(f"{c['p50_ms']:6.0f}/{c['p95_ms']:6.0f}/{c['p99_ms']:6.0f} ({c['requests']:4d})"
                         if c else f"{'-':>27}")
        print(f"  {callback_name(output):<44}" + "".join(f"{c:>27}" for c in cells))
    print("  " + " | ".join(f"{n}: overall p95 {results[n]['p95_ms']:.0f} ms, {results[n]['errors']} errors"
                            for n in names))


def make_users(seed: int, count: int, dependencies: list[dict], props: dict, run: runformat.Run,
               example_ids: np.ndarray, views: list[str], domains: dict | None) -> list[User]:
    """``count`` users of the repeated scenario, or of the varied one when ``domains`` is given."""
    if domains is not None:
        return [VariedUser(seed + i, dependencies, props, run.run_id, domains, views) for i in range(count)]
    return [User(seed + i, dependencies, props, run.run_id, run.classes, example_ids, views)
            for i in range(count)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, type=Path, help="runs folder")
    parser.add_argument("--run-id", required=True, help="the run the users look at")
    parser.add_argument("--scenario", choices=("repeated", "varied", "all"), default="repeated",
                        help="repeated (a few values per control), varied (random valid values for "
                             "every control: 1 user, then --users), or all (default %(default)s)")
    parser.add_argument("--users", type=int, default=16, help="simulated users (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=30, help="measured time (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds of the same load before measuring (fills the caches)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds a user looks before the next change (default %(default)s; 0: none)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument("--views", help="comma-separated tabs the users look at (default: every tab "
                                             "that applies to the run), e.g. gates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    run = runformat.Run.open(args.runs, args.run_id)
    example_ids = run.read_table(runformat.EXAMPLES_FILE, columns=["example_id"])["example_id"].to_numpy()
    scenarios = {"repeated": [("repeated", args.users)],
                 "varied": [("varied x1", 1), (f"varied x{args.users}", args.users)]}
    plan = scenarios["repeated"] + scenarios["varied"] if args.scenario == "all" else scenarios[args.scenario]
    print(f"gunicorn: {args.workers} workers x {args.threads} threads; run {args.run_id!r} "
          f"({len(example_ids)} examples, {len(run.classes)} classes); think {args.think:g} s; "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    measured: dict[str, dict] = {}
    results = []
    for name, n_users in plan:
        with tempfile.TemporaryDirectory(prefix="lens-load-cache-") as cache:
            port = free_port()
            server = start_gunicorn(args.runs.resolve(), port, args.workers, args.threads, Path(cache))
            try:
                layout = json.loads(get(port, "/_dash-layout")[1])
                dependencies = json.loads(get(port, "/_dash-dependencies")[1])
                props = component_props(layout)
                views = [view for view in tab_values(props) if applies(port, dependencies, props, args.run_id, view)
                         and (not args.views or view in args.views.split(","))]
                domains = (control_domains(dependencies, props, run_offered(http_post(port), dependencies, props, args.run_id),
                                           run, views) if name.startswith("varied") else None)
                crowd = functools.partial(make_users, count=n_users, dependencies=dependencies, props=props,
                                          run=run, example_ids=example_ids, views=views, domains=domains)
                print(f"\n{name}: {n_users} user(s) on 127.0.0.1:{port}, empty shared cache; views "
                      f"{', '.join(views)}" + (f"; {len(domains)} controls varied" if name.startswith("varied")
                                               else ""), flush=True)
                if args.warmup > 0:
                    started = time.monotonic()
                    latencies, errors = run_users(port, crowd(args.seed + 10_000), args.warmup, args.max_requests, args.think)
                    results.append(report("warm-up", latencies, errors, time.monotonic() - started))
                started = time.monotonic()
                latencies, errors = run_users(port, crowd(args.seed), args.seconds, args.max_requests, args.think)
                measured[name] = report("measured", latencies, errors, time.monotonic() - started, slowest=5)
                measured[name]["phase"] = name
                results.append(measured[name])
            finally:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
    side_by_side(measured)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results[-1]


def applies(port: int, dependencies: list[dict], props: dict, run_id: str, view: str) -> bool:
    """Whether the shell enables ``view``'s tab for the run (its ``tab-<view>.disabled`` output)."""
    for dep in server_callbacks(dependencies):
        outputs = split_outputs(dep["output"])
        if (f"tab-{view}", "disabled") in outputs:
            values = {**page_values(props), (state.RUN, "value"): run_id}
            client = Client(port)
            payload = json.dumps(request_body(dep, values))
            client.connection.request("POST", "/_dash-update-component", payload,
                                      {"Content-Type": "application/json"})
            answer = json.loads(client.connection.getresponse().read())
            return not answer["response"].get(f"tab-{view}", {}).get("disabled", False)
    return True


if __name__ == "__main__":
    main()

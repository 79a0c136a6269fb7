"""Faults: corrupt or missing run files, malformed callback requests, and a run rewritten while the
dashboard reads it. Everything goes through the real Flask app and callbacks, on copies of the
small synthetic run (tests/conftest.py) or runs written with the store's real writer."""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pandas as pd
import pytest

from factories import CALLBACK, post

from bench.load import all_bodies, component_props, request_body, server_callbacks, split_outputs
from dashboard import data, state
from dashboard.views import paths
from pipeline import runformat

REWRITTEN = "This run is being rewritten; reload the page in a moment."






def page(client):
    return (component_props(client.get("/_dash-layout").get_json()),
            client.get("/_dash-dependencies").get_json())


def callback_for(dependencies, output: str) -> dict:
    """The server callback with ``output`` ("id.property") among its outputs."""
    wanted = tuple(output.rsplit(".", 1))
    return next(dep for dep in server_callbacks(dependencies)
                if wanted in [(i, p.split("@")[0]) for i, p in split_outputs(dep["output"])])


def page_values(props) -> dict:
    return {(cid, prop): value for cid, p in props.items() for prop, value in p.items()}


def figure_texts(answer: dict) -> list[str]:
    """Every text a callback answer shows: text outputs and figure titles/annotations."""
    texts = []
    for props in answer.get("response", {}).values():
        for prop, value in props.items():
            if prop == "figure" and isinstance(value, dict):
                layout = value.get("layout", {})
                texts += [a.get("text", "") for a in layout.get("annotations", [])]
                title = layout.get("title")
                texts.append(title.get("text", "") if isinstance(title, dict) else str(title or ""))
            elif isinstance(value, str):
                texts.append(value)
    return texts


def has_traces(answer: dict) -> bool:
    return any(prop == "figure" and value.get("data")
               for props in answer.get("response", {}).values() for prop, value in props.items())


# -- corrupt and missing run files ------------------------------------------------------------

@pytest.fixture
def broken_runs(synthetic_runs_dir, tmp_path):
    """``good``; ``corrupt`` with a garbage hidden-state file and projections cut in half;
    ``missing`` without its hidden-state and projections files."""
    runs = tmp_path / "runs"
    for name in ("good", "corrupt", "missing"):
        shutil.copytree(synthetic_runs_dir / "synthetic", runs / name)
    h_file = runformat.steps_file(0, "h")
    (runs / "corrupt" / h_file).write_bytes(b"not a parquet file" * 100)
    projections = runs / "corrupt" / "projections.parquet"
    projections.write_bytes(projections.read_bytes()[: projections.stat().st_size // 2])
    (runs / "missing" / h_file).unlink()
    (runs / "missing" / "projections.parquet").unlink()
    return runs


def test_flt001_corrupt_run_shows_a_message_through_the_view_functions(broken_runs, client_for):
    client_for(broken_runs)
    everything = [list(state.SPLITS), list(state.HANDS), "all"]
    for broken in ("corrupt", "missing"):
        figure = paths.paths_view_figure(broken, [], *everything, None, "ae", "2", [])
        assert len(figure.data) == 0 and "projections.parquet" in json.dumps(figure.to_plotly_json())
    good = paths.paths_view_figure("good", [], *everything, None, "ae", "2", [])
    assert len(good["data"]) > 0


@pytest.mark.parametrize("broken", ["corrupt", "missing"])
def test_flt002_broken_run_answers_every_callback_with_a_message(broken_runs, client_for, broken):
    """Every server callback of every view, for a run with a corrupt or missing hidden-state
    and projections file: HTTP 200/204 (never 500), the failing views say which file; then the
    good run's callbacks still draw figures."""
    client = client_for(broken_runs)
    props, dependencies = page(client)
    answers = {}
    for body in all_bodies(dependencies, props, {(state.RUN, "value"): broken}):
        response = post(client, body)
        assert response.status_code in (200, 204), (body["output"], response.status_code,
                                                    response.get_data(as_text=True)[:300])
        assert b"Traceback" not in response.data
        if response.status_code == 200:
            answers[body["output"]] = response.get_json()
    messages = [text for answer in answers.values() for text in figure_texts(answer)]
    file_name = runformat.steps_file(0, "h")
    assert any(file_name in text for text in messages), "no view named the broken hidden-state file"
    assert any("projections.parquet" in text for text in messages)
    assert all("Traceback" not in text for text in messages)

    good = {}
    for body in all_bodies(dependencies, props, {(state.RUN, "value"): "good"}):
        response = post(client, body)
        assert response.status_code in (200, 204), body["output"]
        if response.status_code == 200:
            good[body["output"]] = response.get_json()
    drawn = [output for output, answer in good.items() if has_traces(answer)]
    assert any("paths-graph" in output for output in drawn)
    assert any("last_step-graph" in output for output in drawn)


def test_flt003_guard_turns_an_unreadable_file_into_a_page_message(broken_runs, client_for, monkeypatch):
    """A read error a view does not catch (here: pyarrow raising from inside data.projection)
    still reaches the page as a message in the callback's figure."""
    import pyarrow as pa
    client = client_for(broken_runs)
    props, dependencies = page(client)

    def unreadable(run, projection_id):
        raise pa.ArrowInvalid("Parquet magic bytes not found in footer (projections.parquet)")

    monkeypatch.setattr(data, "projection", unreadable)
    values = {**page_values(props), (state.RUN, "value"): "good", (state.TABS, "value"): "paths"}
    response = post(client, request_body(callback_for(dependencies, "paths-graph.figure"), values))
    assert response.status_code == 200
    assert any("Cannot read this run" in text and "magic bytes" in text
               for text in figure_texts(response.get_json()))


# -- malformed callback requests ---------------------------------------------------------------

def test_flt010_malformed_requests_get_4xx_and_the_worker_keeps_serving(broken_runs, client_for):
    client = client_for(broken_runs)
    props, dependencies = page(client)
    count = callback_for(dependencies, "filter-count.children")
    values = {**page_values(props), (state.RUN, "value"): "good"}
    valid = request_body(count, values)

    def variant(**changes):
        body = json.loads(json.dumps(valid))
        for index, value in changes.get("values", {}).items():
            body["inputs"][index]["value"] = value
        body.update(changes.get("top", {}))
        return body

    bad_requests = {
        "wrong type: classes as a number": variant(values={1: 5}),
        "wrong type: splits as a number": variant(values={2: 3.5}),
        "unknown output id": variant(top={"output": "no-such-thing.children"}),
        "unknown input id": variant(top={"inputs": [{**valid["inputs"][0], "id": "no-such-input"},
                                                    *valid["inputs"][1:]]}),
        "missing inputs": variant(top={"inputs": valid["inputs"][:2]}),
        "inputs not a list": variant(top={"inputs": "run-picker"}),
        "output not a string": variant(top={"output": ["filter-count.children"]}),
        "huge list": variant(values={1: ["class0"] * 50_000}),
        "deep nesting": variant(values={1: json.loads("[" * 200 + "]" * 200)}),
        "changedPropIds not strings": variant(top={"changedPropIds": [1, 2]}),
        "outputs garbage": variant(top={"outputs": 42}),
    }
    for name, body in bad_requests.items():
        response = post(client, body)
        assert 400 <= response.status_code < 500, (name, response.status_code)
        assert response.is_json and "error" in response.get_json(), name
        assert b"Traceback" not in response.data, name

    raw = {"not JSON": (b"{not json", "application/json"),
           "a JSON list": (b"[1, 2, 3]", "application/json"),
           "empty body": (b"", "application/json"),
           "over a megabyte": (b'{"output": "' + b"x" * (1 << 21) + b'"}', "application/json"),
           "form data": (b"output=x", "application/x-www-form-urlencoded")}
    for name, (payload, content_type) in raw.items():
        response = client.post(CALLBACK, data=payload, content_type=content_type)
        assert 400 <= response.status_code < 500, (name, response.status_code)

    response = post(client, valid)
    assert response.status_code == 200
    assert response.get_json()["response"]["filter-count"]["children"].endswith(" examples")


def test_flt011_every_callback_survives_wrong_value_types(broken_runs, client_for):
    """Each server callback with each of its inputs replaced by values of the wrong type: an
    answer below 500 every time (a message, no update, or 400)."""
    client = client_for(broken_runs)
    props, dependencies = page(client)
    wrong_values = [12345, "not-a-list", ["x", 1, None], {"points": "x"}]
    for dep in server_callbacks(dependencies):
        for item in dep["inputs"]:
            for wrong in wrong_values:
                values = {**page_values(props), (state.RUN, "value"): "good",
                          (item["id"], item["property"]): wrong}
                if (item["id"], item["property"]) != (state.TABS, "value"):
                    view = dep["output"].strip(".").split("-")[0]
                    values[(state.TABS, "value")] = view
                response = post(client, request_body(dep, values, (item["id"], item["property"])))
                assert response.status_code < 500, (dep["output"], item, wrong, response.status_code)


# -- a run rewritten while it is read ------------------------------------------------------------

def write_version(runs, version: int) -> None:
    """Rewrite run ``flip`` the way the pipeline does (runformat.RunWriter; a manifest that forgets the
    stage first, then the files, then the finished manifest). Version 1: 30 examples, classes a*,
    every hidden value 1.0; version 2: 50 examples, classes b*, every value 2.0."""
    n, letter = (30, "a") if version == 1 else (50, "b")
    writer = runformat.RunWriter(runs, "flip")
    writer.invalidate_from(["data"], "data")
    writer.manifest["status"] = "incomplete"
    writer.write_manifest()
    lengths = np.full(n, 4 + version, dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    classes = [f"{letter}{k}" for k in range(3)]
    examples = pd.DataFrame({"example_id": np.arange(n, dtype=np.int32),
                             "label": np.arange(n, dtype=np.int32) % 3,
                             "prediction": np.arange(n, dtype=np.int32) % 3,
                             "split": "test", "length": lengths, "row_start": starts,
                             "confidence": np.float32(0.9)})
    ids = np.repeat(np.arange(n), lengths)
    t = np.concatenate([np.arange(length) for length in lengths])
    values = np.full((len(ids), 6), float(version), dtype=np.float32)
    outputs = [writer.write_table("examples.parquet", examples),
               writer.write_table(runformat.steps_file(0, "h"),
                                  runformat.step_table(ids, t, values, runformat.unit_columns(6)))]
    writer.finish_stage("data", f"version-{version}", 0.0, outputs, kind="classification",
                        classes=classes, n_examples=n, layers=[{"index": 0, "units": 6}],
                        dataset={"name": "flip"}, config={}, metrics={})
    writer.manifest["status"] = "complete"
    writer.write_manifest()


def read_consistently(run_id: str) -> tuple[int, str, float]:
    """What a callback does: open the run, read examples and the last hidden states; on
    RunChanged open it again, once (as dashboard.errors' guard does for a request)."""
    for attempt in (1, 2):
        run = data.get_run(run_id)
        try:
            frame = data.examples(run)
            hidden = data.last_step_matrix(run, 0, "h")
        except runformat.RunChanged:
            if attempt == 2:
                raise
            continue
        letters = {label[0] for label in frame["label"]}
        values = set(np.unique(hidden).tolist())
        return len(frame), "".join(sorted(letters)), next(iter(values)) if len(values) == 1 else -1.0
    raise AssertionError("unreachable")


def test_flt020_a_run_rewritten_while_read_is_seen_whole(tmp_path, client_for):
    """Readers in threads while a writer flips a run between two versions for a few seconds:
    each read sees version 1 whole (30, a, 1.0) or version 2 whole (50, b, 2.0), or is told the
    run is being rewritten; never a mix. The HTTP callbacks answer 200 throughout."""
    runs = tmp_path / "runs"
    write_version(runs, 1)
    client = client_for(runs)
    props, dependencies = page(client)
    count = request_body(callback_for(dependencies, "filter-count.children"),
                         {**page_values(props), (state.RUN, "value"): "flip"})
    seen: dict = {}
    problems: list = []
    stop = threading.Event()

    def writer():
        version = 1
        while not stop.is_set():
            version = 3 - version
            write_version(runs, version)
            time.sleep(0.05)          # each version stays a moment, as a real one does

    def reader():
        while not stop.is_set():
            try:
                result = read_consistently("flip")
            except runformat.RunChanged:
                result = "changed twice"
            except runformat.RunError as error:
                result = "busy" if "incomplete" in str(error) else f"error: {error}"
            except Exception as error:     # a mix shows up as wrong rows: an IndexError or so
                result = f"{type(error).__name__}: {error}"
            seen[result] = seen.get(result, 0) + 1

    def http_reader():
        while not stop.is_set():
            response = post(client, count)
            text = response.get_json()["response"]["filter-count"]["children"] \
                if response.status_code == 200 else f"HTTP {response.status_code}"
            if text not in ("30 examples", "50 examples", "", REWRITTEN):
                problems.append(text)

    threads = [threading.Thread(target=f) for f in (writer, reader, reader, reader, http_reader)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join(30)
    whole = {(30, "a", 1.0), (50, "b", 2.0)}
    mixed = {result: n for result, n in seen.items() if result not in whole | {"busy", "changed twice"}}
    assert mixed == {} and problems == [], (mixed, problems[:3])
    assert sum(n for result, n in seen.items() if result in whole) >= 5, seen
    assert any(result == (50, "b", 2.0) for result in seen), seen    # the rewrite was seen


def test_flt021_reader_detects_the_rewrite_after_its_manifest(tmp_path, client_for):
    """The sequence a reader can hit: manifest v1 read, then the run rewritten, then a file read."""
    runs = tmp_path / "runs"
    write_version(runs, 1)
    client_for(runs)
    run = data.get_run("flip")
    write_version(runs, 2)
    with pytest.raises(runformat.RunChanged):
        data.examples(run)
    assert read_consistently("flip") == (50, "b", 2.0)


# -- several gunicorn workers ---------------------------------------------------------------------

def test_flt030_a_fresh_worker_serves_parallel_script_requests(broken_runs, client_for):
    """A gunicorn worker's first requests are often the browser's parallel script requests (the
    page came from another worker): every one answers 200."""
    import re
    from concurrent.futures import ThreadPoolExecutor
    index = client_for(broken_runs).get("/").get_data(as_text=True)
    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', index)
    assert len(scripts) >= 5
    for _ in range(5):
        fresh = client_for(broken_runs).application
        barrier = threading.Barrier(len(scripts))

        def fetch(path, barrier=barrier, fresh=fresh):
            barrier.wait()
            return fresh.test_client().get(path).status_code

        with ThreadPoolExecutor(len(scripts)) as pool:
            assert list(pool.map(fetch, scripts)) == [200] * len(scripts)

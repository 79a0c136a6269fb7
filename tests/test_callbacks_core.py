"""The shell's and the core views' callbacks, called as functions on the small real synthetic run
(tests/conftest.py): the registered callback functions are taken from the app's callback map."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from contextvars import copy_context
from pathlib import Path

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from factories import decoded, figure_of
from dash._callback_context import context_value
from dash._utils import AttributeDict

from dashboard import data, layout, state
from dashboard.app import create_app
from dashboard.views import inspector, is_hidden, last_step, paths
from pipeline import runformat

ROOT = Path(__file__).resolve().parents[1]
ALL_SPLITS = list(state.SPLITS)
ALL_HANDS = list(state.HANDS)


@pytest.fixture(scope="module")
def app(synthetic_runs_dir):
    return create_app(synthetic_runs_dir)


@pytest.fixture(scope="module")
def run(app, synthetic_runs_dir):
    data.configure(synthetic_runs_dir)
    return data.get_run("synthetic")


@pytest.fixture(scope="module")
def wrong_id(run) -> int:
    frame = data.examples(run)
    wrong = frame[~frame["correct"]]
    assert len(wrong), "the small run must have misclassified examples"
    return int(wrong["example_id"].iat[0])


def callback(app, *output_ids):
    """The function registered for the callback whose outputs include all of ``output_ids``
    (component.prop, ignoring allow_duplicate suffixes)."""
    for key, entry in app.callback_map.items():
        outputs = {part.split("@")[0] for part in key.strip(".").split("...")}
        if set(output_ids) <= outputs:
            return as_figure(entry["callback"].__wrapped__)
    raise KeyError(output_ids)


def as_figure(function):
    """Memoised views answer with the figure as Dash sends it (a dict): read it back as a go.Figure."""
    def call(*args):
        result = function(*args)
        return go.Figure(decoded(result)) if isinstance(result, dict) and "data" in result else result
    return call




def with_trigger(prop_id: str, value, function, *args):
    """Call ``function`` as Dash would after ``prop_id`` changed to ``value``."""
    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": value}]))
        return function(*args)
    return copy_context().run(call)


def message(figure) -> str:
    notes = figure.layout.annotations
    return notes[0].text if notes and not figure.data else ""


def filters(run_id="synthetic", classes=(), splits=ALL_SPLITS, hands=ALL_HANDS, correctness="all"):
    return [run_id, list(classes), list(splits), list(hands), correctness]


# -- data --------------------------------------------------------------------------------------

def test_cbcr001_filtered_examples_follow_the_filter_bar(run):
    frame = data.examples(run)
    assert data.filtered_examples(run, None, None, None, "all").shape[0] == len(frame)
    first = run.classes[0]
    chosen = data.filtered_examples(run, [first], ALL_SPLITS, ALL_HANDS, "all")
    assert set(chosen["label"]) == {first}
    assert data.filtered_examples(run, [], [], ALL_HANDS, "all").empty       # no split ticked
    test = data.filtered_examples(run, [], ["test"], None, "misclassified")
    assert set(test["split"]) <= {"test"} and not test["correct"].any()
    one = data.filtered_examples(run, [], None, ["one-handed"], "all")
    assert set(one["hand_usage"]) == {"one-handed"}


def test_cbcr002_reads_are_cached_by_run_token(run):
    assert data.projection(run, "ae2") is data.projection(run, "ae2")
    matrix = data.step_matrix(run, 0, "h")
    assert matrix.dtype == np.float32 and not matrix.flags.writeable
    assert data.filtered_examples(run, ["a"], None, None, "all") is data.filtered_examples(
        run, ("a",), correctness="all")


def test_cbcr007_a_projection_reads_its_rows_in_step_order_without_its_string_column(run):
    plain = run.read_table(runformat.PROJECTIONS_FILE)
    plain = plain[plain["projection"] == "ae2"].sort_values(["example_id", "t"])
    frame = data.projection(run, "ae2")
    assert list(frame.columns) == ["example_id", "t", "x", "y"]
    assert np.array_equal(frame["example_id"], plain["example_id"]) and np.array_equal(frame["t"], plain["t"])
    assert np.array_equal(frame["x"], plain["x"].astype(np.float32))
    ids, t = frame["example_id"].to_numpy(), frame["t"].to_numpy()
    for block in (1, 2, 7, 1 << 18):                   # the order check, block by block
        assert data.in_step_order(ids, t, block)
        for at in (1, len(ids) // 2, len(ids) - 1):    # one step out of place, anywhere
            swapped = t.copy()
            swapped[at - 1], swapped[at] = t[at], t[at - 1]
            plain_order = pd.DataFrame({"e": ids, "t": swapped}).sort_values(["e", "t"]).index
            expected = bool(np.all(plain_order == np.arange(len(ids)))) and not np.any(
                (np.diff(ids) == 0) & (np.diff(swapped) == 0))
            assert data.in_step_order(ids, swapped, block) == expected
    assert data.in_step_order(ids[:1], t[:1]) and data.in_step_order(ids[:0], t[:0])


def test_cbcr003_nearest_examples_match_brute_force(run, wrong_id):
    hidden = data.last_step_matrix(run, data.last_layer(run))
    on_disk = data.last_step_matrix.shared_value(run, data.last_layer(run), "h")
    assert np.array_equal(on_disk, hidden)          # shared with other workers and restarts
    rows = data.last_step_rows(run)
    assert np.array_equal(hidden, run.step_matrix(data.last_layer(run), "h")[rows])
    frame = data.examples(run)
    position = int(np.flatnonzero(frame["example_id"] == wrong_id)[0])
    distance = np.linalg.norm(hidden - hidden[position], axis=1)
    distance[position] = np.inf
    expected = frame["example_id"].to_numpy()[np.argsort(distance, kind="stable")[:5]]
    found = data.nearest_examples(run, wrong_id, 5)
    assert found["example_id"].tolist() == expected.tolist()
    assert np.all(np.diff(found["distance"].to_numpy()) >= 0)


def test_cbcr004_class_probability_uses_true_prob_and_top_k(run, wrong_id):
    row = data.example_row(run, wrong_id)
    true_prob, k = data.class_probability(run, wrong_id, int(row["label_index"]))
    predicted, _ = data.class_probability(run, wrong_id, int(row["prediction_index"]))
    assert k == run.manifest.get("top_k", k) and len(true_prob) == row["length"]
    assert np.isclose(true_prob[-1], row["true_prob"]) and np.isclose(predicted[-1], row["confidence"])


# -- the core views ------------------------------------------------------------------------------

def test_cbcr005_the_app_runs_blas_on_one_thread_per_request(synthetic_runs_dir):
    """Small products on many BLAS threads fought over two busy cores (40x slower): the app
    limits BLAS to one thread for the whole process, whatever the environment asked."""
    import os
    code = ("import sys; from threadpoolctl import threadpool_info; from dashboard.app import create_app; "
            "before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']; "
            "create_app(sys.argv[1]); "
            "print(before, [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'])")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"
    result = subprocess.run([sys.executable, "-c", code, str(synthetic_runs_dir)], capture_output=True, text=True,
                            env=env, cwd=Path(__file__).resolve().parents[1], timeout=120)
    before, after = (json.loads(part) for part in result.stdout.strip().replace("] [", "]|[").split("|"))
    assert max(before) == 2 and after and set(after) == {1}


def test_cbcr006_a_warmed_worker_answers_its_first_reads_from_memory(run, monkeypatch):
    from dashboard import warm
    from dashboard.views import gates, training, why
    data.clear_memos()
    done = warm.warm()
    projections = data.path_projection_ids(run.manifest)
    layer = gates.gate_layers(run.manifest)[-1]
    assert done == ["examples", *projections, "predictions", "history",
                    *(f"{gate} {layer}" for gate in runformat.SIGMOID_GATES), "attribution"]

    def no_reads(*args, **kwargs):
        raise AssertionError("read again after warming")
    monkeypatch.setattr(runformat.Run, "arrow_table", no_reads)
    monkeypatch.setattr(runformat.Run, "read_table", no_reads)
    monkeypatch.setattr(runformat.Run, "projections", no_reads)
    monkeypatch.setattr(runformat.Run, "step_matrix", no_reads)
    one_class = data.examples(run)["label"].iloc[0]
    cells = gates.cells_figure(run.run_id, [one_class], None, None, "all", None, "end", [0.1, 0.9], "forget_gate",
                               "saturated", "saturation")
    assert cells["data"][0]["type"] == "heatmap"          # under a filter: from the warmed gate table
    assert len(data.examples(run)) and all(len(data.projection(run, p)) for p in projections)
    assert len(data.last_step_projection(run, data.last_step_projection_ids(run.manifest)[0]))
    assert len(data.predictions(run)) and len(training.history(run))
    example = int(data.examples(run)["example_id"].iloc[0])
    attribution, by_class = why.attribution_view(run.run_id, example, "true")     # from the warmed tables
    assert attribution["data"][-1]["type"] == "bar" and by_class["data"][0]["type"] == "heatmap"
    assert warm.warm("no-such-run") == []                               # an unreadable run: nothing, no error


def test_cbcr101_paths_callback_draws_one_scene_and_skips_when_hidden(app, run):
    draw = callback(app, "paths-graph.figure")
    assert draw(*filters(), "last_step", None, "ae", "2", []) is dash.no_update
    figure = draw(*filters(), "paths", None, "ae", "2", [])
    assert not message(figure)
    assert sorted(t.name for t in figure.data) == sorted(set(data.labels(run)))   # one trace per class
    assert all(t.mode == "lines+markers" for t in figure.data)


def test_cbcr102_paths_overlay_two_classes_and_switch_to_3d(app, run):
    draw = callback(app, "paths-graph.figure")
    pair = run.classes[:2]
    figure = draw(*filters(classes=pair), "paths", None, "pca", "3", ["on"])
    names = [t.name for t in figure.data if t.showlegend]
    assert names[:3] == ["other classes", *pair]
    assert all(t.type == "scatter3d" for t in figure.data)
    assert figure.layout.title.text.startswith("PCA 3-D")


def test_cbcr103_last_step_marks_misclassified_per_split(app, run):
    draw = callback(app, "last_step-graph.figure")
    figure = draw(*filters(splits=["test"], correctness="misclassified"), "last_step", None,
                  "ae2", "class", [])
    wrong = data.filtered_examples(run, [], ["test"], ALL_HANDS, "misclassified")
    crosses = [t for t in figure.data if t.name == "misclassified"]
    assert len(crosses) == 1 and crosses[0].marker.symbol == "x"
    assert len(crosses[0].x) == len(wrong)
    by_hand = draw(*filters(), "last_step", None, "tsne2", "hand", [])
    assert {"one-handed", "two-handed"} <= {t.name for t in by_hand.data}


def test_cbcr104_clicks_anywhere_select_the_example(app, wrong_id):
    click = {"points": [{"customdata": [wrong_id, "a", "b"]}]}
    for graph in ("paths-graph", "last_step-graph", "inspector-path"):
        select = next(entry["callback"].__wrapped__ for key, entry in app.callback_map.items()
                      if key.startswith(f"{state.SELECTED}.data") and entry["inputs"][0]["id"] == graph)
        assert select(click) == wrong_id
        assert select(None) is dash.no_update
    choose = next(entry["callback"].__wrapped__ for entry in app.callback_map.values()
                  if "example-link" in json.dumps(entry["inputs"]))
    link = json.dumps({"index": wrong_id, "list": "mistakes", "type": "example-link"},
                      separators=(",", ":"), sort_keys=True)
    assert with_trigger(f"{link}.n_clicks", 1, choose, [1]) == wrong_id
    assert with_trigger(f"{link}.n_clicks", 0, choose, [0]) is dash.no_update


def test_cbcr105_inspector_fills_in_for_a_misclassified_example(app, run, wrong_id):
    summarise = callback(app, "inspector-meta.children", "inspector-nearest.children")
    meta, nearest = summarise("synthetic", "inspector", wrong_id)
    row = data.example_row(run, wrong_id)
    text = json.dumps(meta.to_plotly_json(), default=str)
    assert f"Example {wrong_id}: {row['label']}" in text and "misclassified" in text
    assert len(nearest.children) == inspector.N_NEAREST
    inputs = figure_of(callback(app, "inspector-inputs.figure")("synthetic", "inspector", wrong_id))
    assert len(inputs.data) == len(run.manifest["channels"])
    assert {t.yaxis for t in inputs.data} == {"y", "y2"}                     # two hands
    path = callback(app, "inspector-path.figure")("synthetic", "inspector", wrong_id, "ae2", [])
    assert [t.name for t in path.data][-1] == f"example {wrong_id}"
    confidence = figure_of(callback(app, "inspector-confidence.figure")("synthetic", "inspector", wrong_id))
    assert [t.name.split(":")[0] for t in confidence.data] == ["true", "predicted"]
    assert summarise("synthetic", "paths", wrong_id) == [dash.no_update] * 2
    empty = summarise("synthetic", "inspector", None)
    assert empty[0] == inspector.NOTHING_SELECTED
    assert message(callback(app, "inspector-inputs.figure")("synthetic", "inspector", None))


def test_cbcr106_mistakes_list_holds_the_filtered_misclassified(app, run):
    listing = callback(app, "inspector-mistakes.children")
    first = run.classes[0]
    items = listing(*filters(classes=[first]), "inspector", None)
    wrong = data.filtered_examples(run, [first], ALL_SPLITS, ALL_HANDS, "all")
    wrong = wrong[~wrong["correct"]]
    if wrong.empty:
        assert "None" in json.dumps(items.to_plotly_json())
    else:
        ids = [button.id["index"] for button in items.children]
        assert ids == wrong["example_id"].tolist()[:inspector.MAX_MISTAKES]
        marked = listing(*filters(classes=[first]), "inspector", ids[0])
        assert "selected" in marked.children[0].className


# -- the shell ---------------------------------------------------------------------------------------

def shell_params():
    return layout.all_params()


def test_cbcr201_url_round_trip_reproduces_the_state():
    params = shell_params()
    values = {p.component_id: p.default for p in params}
    values.update({state.RUN: "synthetic", state.TABS: "last_step", state.CLASS: ["think", "crazy"],
                   state.SPLIT: ["test"], state.CORRECT: "misclassified", state.SELECTED: 17,
                   paths.SYMLOG: ["on"], paths.DIMS: "3", last_step.COLOR_BY: "hand"})
    search = state.encode_search(values, params)
    assert "class=think&class=crazy" in search and "example=17" in search
    assert state.decode_search(search, params) == values
    assert state.encode_search({p.component_id: p.default for p in params}, params) == ""
    nothing = dict(values, **{state.SPLIT: []})
    assert state.decode_search(state.encode_search(nothing, params), params)[state.SPLIT] == []


def test_cbcr202_url_and_controls_sync_both_ways_without_a_loop(app):
    params = shell_params()
    sync = callback(app, "url.search", "filter-class.value")
    defaults = [p.default for p in params]
    defaults[0] = "synthetic"
    read = sync("?view=inspector&class=think&example=3", *defaults, False)
    by_id = dict(zip([p.component_id for p in params], read[1:1 + len(params)]))
    assert read[0] is dash.no_update
    assert by_id[state.TABS] == "inspector" and by_id[state.CLASS] == ["think"]
    assert by_id[state.SELECTED] == 3 and by_id[state.RUN] is dash.no_update
    assert read[-2] and read[-3] is True                      # class options come with the values
    assert read[-1][0]["value"] == "synthetic"                # and the run picker's
    # The controls now hold those values: a control change writes the URL once, and nothing else.
    now = [v if v is not dash.no_update else d for v, d in zip(by_id.values(), defaults)]
    written = with_trigger(f"{state.CORRECT}.value", "misclassified", sync, "?view=inspector"
                           "&class=think&example=3", *[("misclassified" if p.component_id ==
                                                        state.CORRECT else v)
                                                       for p, v in zip(params, now)], True)
    assert "correct=misclassified" in written[0] and "run=synthetic" in written[0]
    assert all(v is dash.no_update for v in written[1:])
    again = with_trigger("url.search", written[0], sync, written[0],
                         *[("misclassified" if p.component_id == state.CORRECT else v)
                           for p, v in zip(params, now)], True)
    assert all(v is dash.no_update for v in again[:-2])       # the cycle stops here


def test_cbcr203_changing_run_clears_classes_and_selection():
    params = shell_params()
    values = [p.default for p in params]
    ids = [p.component_id for p in params]
    values[ids.index(state.RUN)] = "other"
    values[ids.index(state.CLASS)] = ["think"]
    values[ids.index(state.SELECTED)] = 4
    out = layout.sync_state("?run=synthetic&class=think&example=4", values, state.RUN, params)
    assert out[0] == "?run=other"
    assert out[1 + ids.index(state.CLASS)] == [] and out[1 + ids.index(state.SELECTED)] is None


@pytest.fixture
def broken_run(synthetic_runs_dir):
    """A run folder written by a future LSTM Lens (schema 999) beside the real run, removed after."""
    broken = Path(synthetic_runs_dir) / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"schema_version": 999, "run_id": "broken"}))
    yield "broken"
    shutil.rmtree(broken)


def test_cbcr204_unreadable_run_gives_a_message_not_a_traceback(app, synthetic_runs_dir, broken_run):
    assert layout.run_choices(data.list_runs(synthetic_runs_dir), broken_run)[-1] == {
        "label": "broken (cannot be read)", "value": "broken"}
    show_run = callback(app, "run-message.children")

    def facts(run_id):
        return dict(zip(layout.RUN_FACTS, show_run(run_id)))

    broken = facts(broken_run)
    assert "schema_version 999" in broken["message"] and broken["summary"] is None
    draw = callback(app, "paths-graph.figure")
    assert "schema_version 999" in message(draw(*filters(run_id=broken_run), "paths", None, "ae", "2", []))
    assert "no finished run" in message(draw(*filters(run_id="missing"), "paths", None, "ae", "2", []))
    ok = facts("synthetic")
    assert ok["message"] is None and "accuracy" in ok["summary"]


def test_cbcr205_csv_download_and_count_follow_the_filters(app, run):
    download = callback(app, "download-csv.data")
    result = download(1, *filters(correctness="misclassified"))
    wrong = data.filtered_examples(run, [], ALL_SPLITS, ALL_HANDS, "misclassified")
    lines = result["content"].strip().splitlines()
    assert result["filename"] == "synthetic-examples.csv" and len(lines) == len(wrong) + 1
    assert download(1, *filters(run_id="missing")) is dash.no_update
    count = callback(app, "filter-count.children")
    assert count(*filters(correctness="misclassified")) == f"{len(wrong):,} examples"


def test_cbcr206_page_and_layout_are_served(app):
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    page = client.get("/_dash-layout").get_json()
    text = json.dumps(page)
    for component_id in (state.RUN, state.CLASS, state.SPLIT, state.HAND, state.CORRECT,
                         state.SELECTED, state.TABS, state.URL):
        assert f'"id": "{component_id}"' in text
    assert is_hidden("paths", "inspector") and not is_hidden("paths", "paths")


def test_cbcr207_serving_never_imports_tensorflow(synthetic_runs_dir):
    code = ("import sys, app; app.server.test_client().get('/_dash-layout');"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"LSTM_LENS_RUNS": str(synthetic_runs_dir), "PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cbcr208_open_run_refuses_paths_outside_the_runs_folder(synthetic_runs_dir):
    with pytest.raises(runformat.RunError):
        data.open_run(synthetic_runs_dir, "../etc")

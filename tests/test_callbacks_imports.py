"""Imported and text runs through every callback: no second-class runs.

An npz import with labels and inputs but no predictions, an LSTMVis project and a PyTorch
``nn.LSTM`` import (tests/browser/import_runs.py), the small text run (tests/conftest.py), and
runs without projections. Requests go through the real Flask app, as the page sends them; the
view functions are also called directly where a figure's content is checked. Also here: the
messages for what a run lacks, Dash's on_error for callbacks that fail, and the shared cache.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading

import numpy as np
import plotly.utils
import pytest

from factories import figure_of, post

from bench.load import all_bodies, component_props, request_body, server_callbacks, split_outputs
from browser.import_runs import CHANNELS, LSTMVIS_RUN, NPZ_RUN, TORCH_RUN, npz_import, session_imports
from dashboard import data, errors, layout, state, views
from dashboard.views import film, inspector, last_step, paths
from pipeline import runformat

EVERYTHING = [list(state.SPLITS), list(state.HANDS), "all"]
NO_PREDICTIONS = "this import has no predictions (give a predictions field, docs/import-format.md)"


@pytest.fixture(scope="module")
def imports(tmp_path_factory):
    """(runs folder, {"npz": id, "lstmvis": id, "torch": id}) plus the small text run copied in."""
    runs, ids = session_imports(tmp_path_factory)
    return runs, ids






def answers_for(client, run_id: str, selected: int | None = 0) -> dict:
    """Every server callback's answer for ``run_id`` with its view's tab showing and an example
    selected: ``{output: JSON answer}``; asserts none fails."""
    props = component_props(client.get("/_dash-layout").get_json())
    dependencies = client.get("/_dash-dependencies").get_json()
    found = {}
    for body in all_bodies(dependencies, props, {(state.RUN, "value"): run_id,
                                                 (state.SELECTED, "data"): selected}):
        response = post(client, body)
        assert response.status_code in (200, 204), (run_id, body["output"], response.status_code)
        assert b"Traceback" not in response.data
        if response.status_code == 200:
            found[body["output"].strip(".")] = response.get_json()["response"]
    return found


def texts_of(answers: dict) -> list[str]:
    """Every message a set of answers shows: text outputs and empty figures' annotations."""
    found = []
    for response in answers.values():
        for props in response.values():
            for prop, value in props.items():
                if prop in ("figure", "data") and isinstance(value, dict) and "layout" in value and not value.get("data"):
                    found += [a.get("text", "") for a in value.get("layout", {}).get("annotations", [])]
                elif isinstance(value, str):
                    found.append(value)
    return found


def answer(answers: dict, output: str) -> dict:
    """The props of component ``output`` ("id") in whichever answer has it."""
    for response in answers.values():
        if output in response:
            return response[output]
    raise KeyError(output)


def tabs(answers: dict) -> dict[str, bool]:
    """{view id: enabled} from the shell's run facts."""
    return {view.VIEW_ID: not answer(answers, f"tab-{view.VIEW_ID}")["disabled"] for view in views.VIEWS}


def as_text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


def traces(figure) -> list:
    figure = figure if isinstance(figure, dict) else figure.to_plotly_json()
    return figure.get("data", [])


def message(figure) -> str:
    figure = figure if isinstance(figure, dict) else json.loads(figure.to_json())
    notes = figure.get("layout", {}).get("annotations", [])
    return notes[0]["text"] if notes and not figure.get("data") else ""


FAILURE_WORDS = ("failed", "Traceback", "Cannot read", "KeyError", "rebuild", "Rebuild")


# -- an npz import: labels and inputs, no predictions -----------------------------------------------

def test_cbim001_npz_import_without_predictions_answers_every_callback(imports, client_for):
    runs, _ = imports
    answers = answers_for(client_for(runs), NPZ_RUN)
    assert tabs(answers) == {"paths": True, "last_step": True, "inspector": True, "gates": False,
                             "cells": True, "training": False, "film": True, "text": False, "write": False,
                             "match": False, "patterns": False, "confusion": False, "decisive": False,
                             "compare": False, "study": False, "examples": True, "attention": False}
    shown = texts_of(answers)
    assert not [text for text in shown if any(word in text for word in FAILURE_WORDS)], shown
    assert answer(answers, layout.CORRECT_BOX)["style"] == {"display": "none"}       # nothing to filter by
    assert answer(answers, layout.CLASS_BOX)["style"] is None
    assert NO_PREDICTIONS in answer(answers, layout.FILTER_NOTE)["children"]
    assert answer(answers, layout.FILTER_COUNT)["children"] == "36 examples"
    for graph in ("paths-graph", "last_step-graph", "inspector-inputs", "inspector-path"):
        assert traces(answer(answers, graph)["figure"]), graph
    assert traces(answer(answers, film.SOURCE)["data"])          # the film's figure, expanded in the browser
    assert message(answer(answers, "inspector-confidence")["figure"]) == NO_PREDICTIONS


def test_cbim002_npz_inspector_shows_inputs_and_says_it_has_no_predictions(imports, client_for):
    runs, _ = imports
    client_for(runs)
    run = data.get_run(NPZ_RUN)
    assert data.has_inputs(run.manifest) and not data.has_predictions(run.manifest)
    figure = figure_of(inspector.inspect_inputs(NPZ_RUN, 4))
    assert [trace.name for trace in figure.data] == CHANNELS
    rows = data.example_steps(data.inputs(run), run, 4)
    np.testing.assert_allclose(figure.data[0].y, rows["x"].to_numpy())
    meta, nearest = inspector.inspect_summary(NPZ_RUN, 4)
    assert NO_PREDICTIONS in as_text(meta) and len(nearest.children) == 8
    assert NO_PREDICTIONS in as_text(inspector.mistakes_list(NPZ_RUN, [], *EVERYTHING))
    assert "→" not in as_text(nearest)                               # no predicted class to point at
    path = inspector.inspect_path(NPZ_RUN, 4, "ae2", False)
    assert path.data[-1].name == "example 4"
    # the filters: "misclassified" means nothing without predictions, so it keeps every example
    every = data.filtered_examples(run, [], list(state.SPLITS), None, "misclassified")
    assert len(every) == 36
    assert layout.selection_text(NPZ_RUN, 4).startswith("Selected: example 4, ")
    last = last_step.last_step_view_figure(NPZ_RUN, [], *EVERYTHING, 4, "ae2", "class", [])
    assert NO_PREDICTIONS in last["layout"]["title"]["text"]
    assert not any(trace.get("name") == "misclassified" for trace in last["data"])


# -- an LSTMVis project: a language model's stream ------------------------------------------------

def test_cbim010_lstmvis_project_opens_paths_last_step_film_and_the_text_views(imports, client_for):
    runs, _ = imports
    answers = answers_for(client_for(runs), LSTMVIS_RUN)
    enabled = tabs(answers)
    assert {view for view, on in enabled.items() if on} == {"paths", "last_step", "film", "text", "match",
                                                            "patterns"}
    shown = texts_of(answers)
    problems = [text for text in shown if any(word in text for word in FAILURE_WORDS)
                and "inspector is for classification" not in text and "compares classes" not in text]
    assert not problems, problems
    assert answer(answers, layout.CLASS_BOX)["style"] == {"display": "none"}
    assert answer(answers, layout.INSPECT_BUTTON)["style"] == {"display": "none"}
    assert answer(answers, layout.FILTER_COUNT)["children"] == "1 document"
    figure = paths.paths_view_figure(LSTMVIS_RUN, [], *EVERYTHING, None, "ae", "2", [])
    assert figure["layout"]["title"]["text"].startswith("PCA 2-D · 1 document, 240 steps")   # no ae: PCA
    (trace,) = figure["data"]
    assert trace["name"] == "tiny books" and trace["text"][5] == "tiny books · step 5"
    assert set(trace["customdata"]) - {-1} == {0}                  # -1: the gap after a path
    assert traces(film.film_figure(LSTMVIS_RUN, [], *EVERYTHING, None, "end"))


# -- a PyTorch nn.LSTM import: gates and predictions ------------------------------------------------

def test_cbim020_torch_import_opens_every_classifier_view(imports, client_for):
    runs, ids = imports
    if "torch" not in ids:
        pytest.skip("PyTorch is not installed")
    client = client_for(runs)
    frame = data.examples(data.get_run(TORCH_RUN))
    wrong = int(frame.loc[~frame["correct"], "example_id"].iat[0])
    answers = answers_for(client, TORCH_RUN, selected=wrong)
    assert {view for view, on in tabs(answers).items() if on} == {
        "paths", "last_step", "inspector", "examples", "confusion", "decisive", "compare", "gates", "cells",
        "film"}
    shown = texts_of(answers)
    assert not [text for text in shown if any(word in text for word in FAILURE_WORDS)], shown
    assert answer(answers, layout.CORRECT_BOX)["style"] is None and not answer(answers, layout.FILTER_NOTE)["children"]
    confidence = answer(answers, "inspector-confidence")["figure"]
    assert [t["name"].split(":")[0] for t in confidence["data"]] == ["true", "predicted"]
    assert len(traces(answer(answers, "inspector-inputs")["figure"])) == len(CHANNELS)
    assert traces(answer(answers, "gates-over-time")["figure"])
    run = data.get_run(TORCH_RUN)
    assert [layer.index for layer in run.layers] == [0, 1] and data.has_predictions(run.manifest)


# -- text runs: document paths ---------------------------------------------------------------

def test_cbim030_text_run_draws_document_paths_and_ignores_classifier_filters(text_runs_dir, client_for):
    client = client_for(text_runs_dir)
    run = data.get_run("text-parens")
    answers = answers_for(client, "text-parens")
    assert tabs(answers)["paths"] and tabs(answers)["last_step"] and not tabs(answers)["inspector"]
    figure = answer(answers, "paths-graph")["figure"]
    frame = data.examples(run)
    assert "200 documents" in figure["layout"]["title"]["text"]
    hover = [text for trace in figure["data"] for text in trace.get("text", []) if text]
    names = set(frame["name"])
    assert hover and all(text.split(" · step ")[0] in names for text in hover)
    drawn = {i for trace in figure["data"] if isinstance(trace["customdata"], list)
             for i in trace["customdata"] if i is not None and i >= 0}
    assert drawn == set(frame["example_id"])
    # a class or correctness choice (from a classifier's URL) changes nothing for documents
    chosen = paths.paths_view_figure("text-parens", ["(", ")"], list(state.SPLITS), None, "misclassified",
                                     None, "pca", "2", [])
    assert chosen["layout"]["title"]["text"] == figure["layout"]["title"]["text"]
    test_only = paths.paths_view_figure("text-parens", [], ["test"], None, "all", None, "pca", "2", [])
    assert f"{int((frame['split'] == 'test').sum())} documents" in test_only["layout"]["title"]["text"]
    assert layout.class_options("text-parens") == []
    assert answer(answers, layout.FILTER_COUNT)["children"] == "200 documents"


def test_cbim031_a_view_that_does_not_apply_gives_way(text_runs_dir, client_for):
    client_for(text_runs_dir)
    assert layout.view_for("text-parens", "inspector") == "paths"
    assert layout.view_for("text-parens", "text") is None
    assert layout.view_for("no-such-run", "inspector") is None


# -- messages that fit the run -----------------------------------------------------------------

@pytest.fixture(scope="module")
def bare_runs(tmp_path_factory, synthetic_runs_dir):
    """``bare``: an npz import without projections; ``trained-bare``: the synthetic run with its
    projections forgotten."""
    from pipeline.importers.arrays import read_arrays
    from pipeline.kinds.imported import write_run
    root = tmp_path_factory.mktemp("bare")
    write_run(read_arrays(npz_import(root / "sources")), root / "runs", "bare", project_settings={"methods": []})
    shutil.copytree(synthetic_runs_dir / "synthetic", root / "runs" / "trained-bare")
    manifest_path = root / "runs" / "trained-bare" / runformat.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["run_id"] = "trained-bare"
    manifest["projections"] = []
    manifest["stages"].pop("project", None)
    manifest_path.write_text(json.dumps(manifest))
    return root / "runs"


@pytest.mark.parametrize("run_id", ["bare", "trained-bare"])
def test_cbim040_a_run_without_projections_is_told_how_to_get_them(bare_runs, client_for, run_id):
    client = client_for(bare_runs)
    expected = f"run {run_id!r} has no projections yet: `python -m pipeline project {run_id} --runs {bare_runs}` computes them"
    assert message(paths.paths_view_figure(run_id, [], *EVERYTHING, None, "ae", "2", [])) == expected
    assert message(last_step.last_step_view_figure(run_id, [], *EVERYTHING, None, "ae2", "class", [])) == expected
    assert message(film.film_figure(run_id, [], *EVERYTHING, None, "end")) == expected
    assert message(inspector.inspect_path(run_id, 0, "ae2", False)) == expected
    answers = answers_for(client, run_id)
    assert not any(tabs(answers)[view] for view in ("paths", "last_step", "film"))
    assert not [text for text in texts_of(answers) if "rebuild" in text.lower()
                or f"python -m pipeline run {run_id}" in text]


def test_cbim041_messages_are_worded_for_the_runs_origin(imports, bare_runs, client_for):
    runs, _ = imports
    client_for(runs)
    imported = data.get_run(NPZ_RUN).manifest
    assert data.no_predictions_message(imported) == NO_PREDICTIONS
    assert data.no_projections_message(imported, "projection 'x'") == (
        f"run {NPZ_RUN!r} has no projection 'x' (it has ae2, ae3, pca2, pca3, tsne2): "
        f"`python -m pipeline project {NPZ_RUN} --runs {runs}` computes them")
    assert "python -m pipeline import" in data.resume_hint(imported)
    assert inspector.no_inputs_message(imported).startswith("this import kept no inputs")
    data.configure(bare_runs)
    trained = data.get_run("trained-bare").manifest
    assert "python -m pipeline run synthetic" in data.resume_hint(trained)
    data.configure("data/runs")
    assert data.no_projections_message(trained) == (
        "run 'trained-bare' has no projections yet: `python -m pipeline project trained-bare` computes them")


# -- callbacks that fail: Dash's on_error --------------------------------------------------------

def paths_request(client, run_id: str) -> dict:
    props = component_props(client.get("/_dash-layout").get_json())
    dependencies = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in server_callbacks(dependencies)
               if ("paths-graph", "figure") in [(i, p.split("@")[0]) for i, p in split_outputs(d["output"])])
    values = {(cid, prop): value for cid, p in props.items() for prop, value in p.items()}
    values.update({(state.RUN, "value"): run_id, (state.TABS, "value"): "paths"})
    return request_body(dep, values)


def test_cbim050_a_failing_callback_shows_a_short_message_and_logs_the_traceback(
        imports, client_for, monkeypatch, caplog):
    runs, _ = imports
    client = client_for(runs)
    body = paths_request(client, NPZ_RUN)

    def broken(*args):
        raise KeyError("correct")

    monkeypatch.setattr(paths, "paths_view_figure", broken)
    with caplog.at_level(logging.ERROR, logger="lstm_lens.errors"):
        response = post(client, body)
    assert response.status_code == 200 and b"Traceback" not in response.data
    figure = response.get_json()["response"]["paths-graph"]["figure"]
    assert message(figure) == errors.FAILED
    assert any(record.exc_info and "KeyError" in str(record.exc_info[0]) for record in caplog.records)

    def unreadable(*args):
        raise runformat.RunError("cannot read npz-import/projections.parquet: bad footer")

    monkeypatch.setattr(paths, "paths_view_figure", unreadable)
    figure = post(client, body).get_json()["response"]["paths-graph"]["figure"]
    assert message(figure) == "Cannot read this run: cannot read npz-import/projections.parquet: bad footer"


def test_cbim051_values_of_a_type_the_page_never_sends_get_400(imports, client_for):
    runs, _ = imports
    client = client_for(runs)
    body = paths_request(client, NPZ_RUN)
    for index, item in enumerate(body["inputs"]):
        if item["id"] == state.SPLIT:
            body["inputs"][index]["value"] = "train"            # a checklist always sends a list
    response = post(client, body)
    assert response.status_code == 400 and "filter-split.value" in response.get_json()["error"]


# -- the shared cache --------------------------------------------------------------------------

def test_cbim060_shared_values_round_trip_without_pickle():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    for value in (array, {"a": [1, 2.5, None, "x"], "b": {"c": True}},
                  ({"by_step": {"input_gate": array}}, 3), [np.int64(4), array[0]]):
        blob = data.encode(value)
        assert blob[:1] in (b"A", b"J", b"T", b"Z") and b"pickle" not in blob
        restored = data.decode(blob)
        assert type(restored) is type(value)
        assert repr(restored) == repr(value).replace("np.int64(4)", "4")
    assert not data.decode(data.encode(array)).flags.writeable
    for unshareable in (np.array(["a", None], dtype=object), {1: "int key"}, object()):
        with pytest.raises(data.NotShareable):
            data.encode(unshareable)


def test_cbim061_another_worker_reads_the_heavy_figures_from_the_shared_cache(
        imports, client_for, monkeypatch, tmp_path):
    runs, _ = imports
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    client_for(runs)
    first = paths.paths_view_figure(NPZ_RUN, [], *EVERYTHING, 3, "pca", "2", [])
    film_first = film.film_figure(NPZ_RUN, [], *EVERYTHING, "pca2", "end")
    data.clear_memos()                              # a fresh worker: nothing in this process

    def never(*args, **kwargs):
        raise AssertionError("computed again instead of read from the shared cache")

    monkeypatch.setattr(paths, "paths_spec", never)
    monkeypatch.setattr(film.figures, "film_source", never)
    assert paths.paths_view_figure(NPZ_RUN, [], *EVERYTHING, 3, "pca", "2", []) == first
    assert film.film_figure(NPZ_RUN, [], *EVERYTHING, "pca2", "end") == film_first
    assert isinstance(data.disk_cache().get(next(iter(data.disk_cache()))), bytes)   # stored as bytes
    # another selection is another figure: computed (here: refused), not served stale
    with pytest.raises(AssertionError, match="computed again"):
        paths.paths_view_figure(NPZ_RUN, [], *EVERYTHING, 5, "pca", "2", [])


def test_cbim069_shared_cache_writes_come_after_the_answer(imports, client_for, monkeypatch, tmp_path):
    runs, _ = imports
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    client_for(runs)
    data.clear_memos()                              # a fresh worker: the film is computed here
    store, stored = data._shared_set, threading.Event()
    go_on = threading.Event()

    def slow_store(*args):
        go_on.wait(30)
        store(*args)
        stored.set()

    monkeypatch.setattr(data, "_shared_set", slow_store)
    figure = film.film_figure(NPZ_RUN, [], *EVERYTHING, "pca2", "end")   # answered while its write waits
    assert figure["data"] and not stored.is_set() and len(data.disk_cache()) == 0
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "another"))         # a later test's folder
    go_on.set()
    data.shared_writes_done()
    assert len(data.disk_cache()) == 0                  # the write went where the answer was computed
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    data.clear_memos()                              # finishes the pending writes first
    assert stored.is_set()
    monkeypatch.setattr(film.figures, "film_source", lambda *args, **kwargs: pytest.fail("computed again"))
    assert film.film_figure(NPZ_RUN, [], *EVERYTHING, "pca2", "end") == figure


def test_cbim062_a_rebuilt_run_misses_the_shared_cache(imports, client_for, monkeypatch, tmp_path):
    runs, _ = imports
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "runs"
    shutil.copytree(runs / NPZ_RUN, copy / NPZ_RUN)
    client_for(copy)
    before = data.last_step_matrix(data.get_run(NPZ_RUN), 0, "c")
    manifest_path = copy / NPZ_RUN / runformat.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["updated"] = "2099-01-01T00:00:00+0000"          # the run was rewritten
    manifest_path.write_text(json.dumps(manifest))
    c_file = copy / NPZ_RUN / runformat.steps_file(0, "c")
    frame = runformat.Run(copy / NPZ_RUN).read_table(runformat.steps_file(0, "c"))
    frame[[c for c in frame if c.startswith("u")]] *= 2
    runformat.write_parquet(frame, c_file)
    last_file = copy / NPZ_RUN / runformat.example_states_file(0, "c", "last")   # the table the views read
    last = runformat.Run(copy / NPZ_RUN).read_table(runformat.example_states_file(0, "c", "last"))
    last[[c for c in last if c.startswith("u")]] *= 2
    runformat.write_parquet(last, last_file)
    data.clear_memos()
    after = data.last_step_matrix(data.get_run(NPZ_RUN), 0, "c")
    np.testing.assert_allclose(after, before * 2)

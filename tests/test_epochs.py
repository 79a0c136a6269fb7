"""The representation forming: a recording with ``every=N`` kept each N-th epoch's picture of its
examples in one common space (``projections_by_epoch.parquet``); the paths and last activations
views show it epoch by epoch on fixed axes. On the small recording of tests/conftest.py
(``epoch_runs_dir``: epochs 2, 4 and 6 kept)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard import data, state
from dashboard.app import create_app
from dashboard.figures.last_step import last_step_figure
from dashboard.figures.paths import paths_figure
from dashboard.views import last_step, paths
from factories import figure_of, post
from pipeline import runformat

EVERY = (list(state.SPLITS), list(state.HANDS), "all")


@pytest.fixture(scope="module")
def run(epoch_runs_dir):
    data.configure(epoch_runs_dir)
    return data.get_run("epochs")



def xy(figure: go.Figure) -> np.ndarray:
    trace = figure.data[0]
    return np.column_stack([np.asarray(trace.x, float), np.asarray(trace.y, float)])


def message(figure: go.Figure) -> str:
    notes = figure.layout.annotations
    return notes[0].text if notes and not figure.data else ""


def test_epo001_the_reader_gives_each_kept_epoch_of_the_recorded_examples(run):
    assert run.kept_epochs == [2, 4, 6]
    whole = run.epoch_projections()
    assert whole["epoch"].unique().tolist() == [2, 4, 6]
    four = run.epoch_projections(4)
    examples = run.examples()
    assert four["epoch"].eq(4).all() and len(four) == int(examples["length"].sum())
    assert set(four["example_id"]) == set(examples["example_id"])
    ends = four[four["last"]]
    assert ends["t"].tolist() == (examples.sort_values("example_id")["length"] - 1).tolist()
    assert not np.allclose(run.epoch_projections(2)[["x", "y"]], run.epoch_projections(6)[["x", "y"]])
    assert runformat.Run.open(run.path.parent, "epochs").kept_epochs == [2, 4, 6]


def test_epo002_figures_of_an_epoch_share_the_axes_of_every_epoch(run):
    ranges = data.epoch_ranges(run)
    first = paths_figure(data.epoch_picture(run, 2), data.labels(run), ranges=ranges)
    last = paths_figure(data.epoch_picture(run, 6), data.labels(run), ranges=ranges)
    assert first.layout.xaxis.range == last.layout.xaxis.range and first.layout.xaxis.autorange is False
    assert first.layout.yaxis.range == last.layout.yaxis.range
    low, high = first.layout.xaxis.range
    whole = data.epoch_projections(run)
    assert low < whole["x"].min() and whole["x"].max() < high           # every epoch fits
    assert not np.allclose(np.nan_to_num(xy(first)), np.nan_to_num(xy(last)))
    ends = last_step_figure(data.epoch_picture(run, 2, last_only=True), data.examples(run).drop(
        columns=["prediction", "correct", "confidence"]), run.classes, ranges=data.epoch_ranges(run, True))
    assert len(ends.data[0].x) == len(data.examples(run))
    assert ends.layout.xaxis.range is not None
    assert not [t for t in ends.data if t.name == "misclassified"]     # verdicts are the final model's
    free = paths_figure(data.epoch_picture(run, 2), data.labels(run))
    assert free.layout.xaxis.range is None                              # without ranges: plotly's


def test_epo003_the_paths_callback_draws_the_chosen_epoch(run, epoch_runs_dir):
    app = create_app(epoch_runs_dir)
    draw = next(entry["callback"].__wrapped__ for key, entry in app.callback_map.items()
                if key.startswith("paths-graph.figure"))
    args = ("epochs", [], *EVERY, "paths", None, "pca", "2", [])
    normal = figure_of(draw(*args))
    assert normal.layout.title.text.startswith("PCA 2-D")
    two, six = (figure_of(draw(*args, ["on"], epoch)) for epoch in (2, 6))
    assert two.layout.title.text.startswith("epoch 2 (1 of 3 kept)")
    assert six.layout.title.text.startswith("epoch 6 (3 of 3 kept)")
    assert two.layout.xaxis.range == six.layout.xaxis.range
    assert not np.allclose(np.nan_to_num(xy(two)), np.nan_to_num(xy(six)))
    assert figure_of(draw(*args, ["on"], None)).layout.title.text.startswith("epoch 6")   # the last kept
    chosen = figure_of(draw("epochs", ["up"], *EVERY, "paths", 3, "pca", "2", [], ["on"], 4))
    assert [t.name for t in chosen.data][:2] == ["other classes", "up"] and chosen.data[-1].name == "example 3"
    assert message(figure_of(draw(*args, ["on"], 3))) == "run 'epochs' kept no picture of epoch 3 (it kept 2, 4, 6)"
    assert message(figure_of(draw(*args, ["on"], "4"))).startswith("an epoch is a whole number")


def test_epo004_the_last_activations_callback_draws_the_chosen_epoch(run):
    two, six = (figure_of(last_step.last_step_view_figure("epochs", [], *EVERY, None, "pca2", "class", [],
                                                          ["on"], epoch)) for epoch in (2, 6))
    assert two.layout.title.text.startswith("epoch 2") and "last step of 30 examples" in two.layout.title.text
    assert two.layout.xaxis.range == six.layout.xaxis.range
    assert not np.allclose(xy(two), xy(six))
    assert not [t for t in two.data if t.name == "misclassified"]
    final = figure_of(last_step.last_step_view_figure("epochs", [], *EVERY, None, "pca2", "class", []))
    assert final.layout.title.text.startswith("PCA 2-D")


def test_epo005_the_slider_shows_only_for_runs_that_kept_epochs(run, synthetic_runs_dir):
    style, low, high, marks = paths.epoch_slider("epochs")
    assert style is None and (low, high) == (2, 6) and marks == {2: "2", 4: "4", 6: "6"}
    param = next(p for p in paths.URL_PARAMS if p.key == "paths_epoch")
    assert paths.epoch_value("epochs", "?paths_epoch=4", param) == 4           # a link's epoch
    assert paths.epoch_value("epochs", "?paths_epoch=5", param) == 6           # not kept: the last
    assert paths.epoch_value("epochs", "", param) == 6
    assert paths.applies_to(run.manifest) and last_step.applies_to(run.manifest)
    data.configure(synthetic_runs_dir)
    try:
        assert paths.epoch_slider("synthetic")[0] == paths.HIDDEN
        assert paths.epoch_value("synthetic", "?paths_epoch=4", param) is None
    finally:
        data.configure(run.path.parent)


def test_epo006_the_request_guard_refuses_an_epoch_the_run_did_not_keep(epoch_runs_dir):
    from bench.load import component_props, request_body, server_callbacks, split_outputs
    client = create_app(epoch_runs_dir).server.test_client()
    props = component_props(client.get("/_dash-layout").get_json())
    values = {(cid, prop): value for cid, p in props.items() for prop, value in p.items()}
    dep = next(d for d in server_callbacks(client.get("/_dash-dependencies").get_json())
               if ("last_step-graph", "figure") in [(i, p.split("@")[0]) for i, p in split_outputs(d["output"])])
    values.update({(state.RUN, "value"): "epochs", (state.TABS, "value"): "last_step",
                   (last_step.BY_EPOCH, "value"): ["on"]})
    answers = {}
    for epoch in (4, 5):
        response = post(client, request_body(dep, {**values, (last_step.EPOCH, "value"): epoch}))
        assert response.status_code == 200
        answers[epoch] = json.loads(response.get_data())["response"]["last_step-graph"]["figure"]
    assert answers[4]["layout"]["title"]["text"].startswith("epoch 4")
    assert answers[5]["layout"]["annotations"][0]["text"] == "run 'epochs' kept no picture of epoch 5 (it kept 2, 4, 6)"

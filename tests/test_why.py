"""The inspector's why panels: attribution per step and channel on the confidence's time axis, mean
attribution by class, and what-if edits recomputed from the run's weights.npz (figures as pure
functions, view functions and callbacks on the small synthetic run of tests/conftest.py)."""

from __future__ import annotations

import shutil

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import data, state
from dashboard.app import create_app
from dashboard.figures.why import attribution_figure, class_attribution_figure, whatif_figure
from dashboard.views import inspector, why
from factories import callbacks_of, figure_of
from pipeline import runformat
from pipeline.analysis import whatif


@pytest.fixture(scope="module")
def run(synthetic_runs_dir):
    data.configure(synthetic_runs_dir)
    return data.get_run("synthetic")


@pytest.fixture(scope="module")
def mistake(run) -> pd.Series:
    frame = data.examples(run)
    return frame[~frame["correct"]].iloc[0]


def _message(figure) -> str:
    figure = go.Figure(figure)
    return figure.layout.annotations[0].text if figure.layout.annotations and not figure.data else ""


def test_why001_attribution_rows_share_the_time_axis_and_one_colour_scale_centred_on_zero():
    t = np.arange(6)
    table = pd.DataFrame({"left_x": [0, 1, -2, 0, 0, 0], "left_y": 0.0, "right_x": [0, 0, 0, 4, 0, 0], "t": t})
    groups = {"left": ["left_x", "left_y"], "right": ["right_x"]}
    figure = attribution_figure(t, table, groups, np.linspace(0, 1, 6), np.linspace(1, 0, 6), "a", "b", "b",
                                occlusion=np.full(6, 0.1), gap=0.02)
    kinds = [trace.type for trace in figure.data]
    assert kinds == ["scatter", "scatter", "heatmap", "heatmap", "bar"]
    left, right = figure.data[2], figure.data[3]
    assert np.asarray(left.z).shape == (2, 6) and list(left.y) == ["x", "y"]         # channels x steps
    assert np.asarray(right.z)[0, 3] == 4
    assert left.zmin == right.zmin == -4 and left.zmax == 4 and left.zmid == 0
    assert [trace.xaxis for trace in figure.data] == ["x", "x", "x2", "x3", "x4"]      # one row each
    assert [figure.layout[name].matches for name in ("xaxis", "xaxis2", "xaxis3")] == ["x4"] * 3   # one time axis
    assert "completeness gap 2.0%" in figure.layout.title.text
    texts = [a.text for a in figure.layout.annotations]
    assert any("left hand" in text for text in texts) and any("right hand" in text for text in texts)


def test_why002_class_attribution_is_a_tenth_by_channel_map_per_hand_and_class():
    table = pd.DataFrame({"label": 0, "part": range(10), "left_x": np.arange(10.0), "right_x": 1.0})
    figure = class_attribution_figure({"a": table, "b": table.assign(left_x=0.0)},
                                      {"left": ["left_x"], "right": ["right_x"]})
    assert len(figure.data) == 4
    assert list(figure.data[0].x)[0] == "0-10%" and np.asarray(figure.data[0].z).shape == (1, 10)
    assert figure.data[0].zmax == 9
    assert "No attribution" in _message(class_attribution_figure({}, {"left": ["left_x"]}))


def test_why003_the_selected_examples_attribution_is_the_stored_table_hands_apart(run, mistake):
    example = int(mistake["example_id"])
    for target in ("predicted", "true"):
        figure, by_class = map(figure_of, why.attribution_view("synthetic", example, target))
        stored = data.example_steps(run.read_table(runformat.ATTRIBUTION_FILES[target]), run, example)
        heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
        assert [trace.name for trace in heatmaps] == ["left", "right"]
        hands = run.manifest.get("hands")
        channels = run.manifest.get("channels")
        for trace, hand in zip(heatmaps, ("left", "right")):
            names = [channels[i] for i in hands[hand]]
            np.testing.assert_allclose(np.asarray(trace.z), stored[names].to_numpy().T, rtol=1e-6)
        label = mistake["prediction"] if target == "predicted" else mistake["label"]
        assert repr(label) in figure.layout.title.text
        occlusion = data.example_steps(run.read_table(runformat.OCCLUSION_FILE), run, example)
        bar = next(trace for trace in figure.data if trace.type == "bar")
        np.testing.assert_allclose(bar.y, occlusion[f"{target}_drop"].to_numpy(), rtol=1e-6)
        confidence = [trace for trace in figure.data if trace.type == "scatter"]
        assert [trace.name.split(":")[0] for trace in confidence] == ["true", "predicted"]
        assert len(confidence[0].x) == int(mistake["length"])
    titles = [a.text for a in by_class.layout.annotations]
    assert any(t.startswith(f"{mistake['label']}:") for t in titles) and any(
        t.startswith(f"{mistake['prediction']}:") for t in titles)
    nothing, _ = why.attribution_view("synthetic", None, "predicted")
    assert "Select an example" in _message(nothing)
    forged, _ = why.attribution_view("synthetic", example, "both")
    assert "not one of the choices" in _message(forged)


def test_why004_a_run_without_attribution_files_gets_no_panel_and_a_short_message(run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(run.path, runs / "synthetic")
    for name in (*runformat.ATTRIBUTION_FILES.values(), runformat.OCCLUSION_FILE, runformat.ATTRIBUTION_BY_CLASS_FILE,
                 runformat.WEIGHTS_FILE):
        (runs / "synthetic" / name).unlink()
    previous = data.runs_dir()
    data.configure(runs)
    try:
        why_style, why_note, whatif_style, whatif_note = why.panels_for("synthetic")
        assert why_style == why.HIDDEN and "has no attribution" in why_note
        assert whatif_style == why.HIDDEN and runformat.WEIGHTS_FILE in whatif_note
        figure, _ = why.attribution_view("synthetic", 0, "predicted")
        assert "has no attribution" in _message(figure)
    finally:
        data.configure(previous)
    assert why.panels_for("synthetic") == [None, None, None, None]


def test_why005_what_if_without_an_edit_is_the_run_itself_and_edits_are_the_analysis_recompute(run, mistake):
    example = int(mistake["example_id"])
    steps = data.example_steps(data.predictions(run), run, example)
    old = why.original_answer(run, example)
    probabilities = old["probabilities"]
    np.testing.assert_allclose(probabilities[:, int(mistake["label_index"])], steps["true_prob"], atol=1e-5)
    np.testing.assert_allclose(probabilities[:, int(mistake["prediction_index"])], steps["predicted_prob"], atol=1e-5)
    np.testing.assert_allclose(old["h"], data.example_steps(run.steps("layer0-h"), run, example)
                               .drop(columns=["example_id", "t"]).to_numpy(), atol=1e-5)
    frames = why.example_frames(run, example)
    weights = why.network(run)
    length = int(mistake["length"])
    figure = go.Figure(why.whatif_view("synthetic", example, "mask", [2, 6], "left", 3))
    expected = whatif.answer(weights, whatif.mask_window(frames, weights, 2, 6))["probabilities"]
    after = next(t for t in figure.data if t.name.startswith("true") and t.name.endswith("(after)"))
    np.testing.assert_allclose(after.y, expected[:, int(mistake["label_index"])], atol=1e-6)
    assert "frames 2-5 masked" in figure.layout.title.text
    assert (figure.layout.shapes[0].x0, figure.layout.shapes[0].x1) == (1.5, 5.5)
    cut = go.Figure(why.whatif_view("synthetic", example, "cut", [2, 6], "left", 3))
    after = next(t for t in cut.data if t.name.startswith("true") and t.name.endswith("(after)"))
    assert len(after.x) == 3 and f"cut after 3 of {length} steps" in cut.layout.title.text
    path = next(t for t in cut.data if t.name == "path after")
    assert len(path.x) == 3
    hand = go.Figure(why.whatif_view("synthetic", example, "hand", None, "right", None))
    right = run.manifest.get("hands")["right"]
    dropped = whatif.answer(weights, whatif.drop_channels(frames, weights, right))["probabilities"]
    after = next(t for t in hand.data if t.name.startswith("predicted") and t.name.endswith("(after)"))
    np.testing.assert_allclose(after.y, dropped[:, int(mistake["prediction_index"])], atol=1e-6)
    unchanged = go.Figure(why.whatif_view("synthetic", example, "mask", [0, 0], "left", 3))
    before = next(t for t in unchanged.data if t.name.endswith("(before)"))
    after = next(t for t in unchanged.data if t.name.endswith("(after)"))
    np.testing.assert_allclose(before.y, after.y, atol=1e-7)
    assert "unchanged" in unchanged.layout.title.text


def test_why006_forged_edits_are_refused_and_the_sliders_fit_the_example(run, mistake):
    example = int(mistake["example_id"])
    length = int(mistake["length"])
    for edit, window, hand, cut, words in (("hand", None, "middle", None, "no 'middle' hand"),
                                           ("mask", [3, "x"], "left", 3, "is not 2 numbers"),
                                           ("cut", None, "left", 0, "is not 1 numbers"),
                                           ("paint", None, "left", 3, "not an edit")):
        assert words in _message(why.whatif_view("synthetic", example, edit, window, hand, cut)), edit
    assert "has no example" in _message(why.whatif_view("synthetic", 10 ** 9, "mask", [0, 1], "left", 3))
    top, window, cut_max, cut = why.slider_ranges("synthetic", example)
    assert top == cut_max == length and 0 <= window[0] <= window[1] <= length and 1 <= cut <= length
    assert why.slider_ranges("synthetic", None) == [dash.no_update] * 4
    assert set(why.VALUE_CHECKS) <= set(inspector.VALUE_CHECKS)


def test_why007_what_if_figure_shows_a_new_top_class_and_the_paths_before_and_after():
    old = {"probabilities": np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]), "h": np.zeros((2, 3))}
    new = {"probabilities": np.array([[0.2, 0.2, 0.6]]), "h": np.ones((1, 3))}
    plane, centre = np.eye(3)[:2], np.zeros(3)
    context = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "label": ["a", "b"]})
    figure = whatif_figure(old, new, 1, 0, ["a", "b", "c"], plane, centre, "cut after 1 of 2 steps", (1, 2), context)
    names = [trace["name"] for trace in figure["data"]]
    assert "now top: c (after)" in names and "path before" in names and "path after" in names
    assert "prediction 'a' now 'c'" in figure["layout"]["title"]["text"]
    go.Figure(figure)                                                   # a valid figure


def test_why008_the_panels_callbacks_exist_and_do_no_work_on_another_tab(synthetic_runs_dir):
    app = create_app(synthetic_runs_dir)
    found = [(outputs, cb) for outputs, cb in callbacks_of(app, [inspector])
             if any(o.startswith(("inspector-why", "inspector-whatif")) for o in outputs)]
    assert len(found) == 4
    for outputs, callback in found:
        names = [item["id"] for item in callback["inputs"]]
        result = callback["callback"].__wrapped__(*[{state.RUN: "synthetic", state.TABS: "paths"}.get(n)
                                                    for n in names])
        results = result if isinstance(result, (tuple, list)) else (result,)
        assert all(r is dash.no_update for r in results), outputs

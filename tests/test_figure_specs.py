"""The figures built as plain dicts (``*_spec``) are sent exactly as the same ``go.Figure`` would be:
``figures.sent`` skips plotly's validation, so each spec must already be in the form it leaves."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.figures import as_sent, sent
from dashboard.figures import cells, confusion, decisive, film, gates, inspector, series, training, why
from dashboard.figures.last_step import last_step_spec
from dashboard.figures.paths import paths_spec

CLASSES = ["drink", "danger", "think", "crazy"]


def same_as_validated(spec: dict) -> None:
    assert orjson.loads(orjson.dumps(sent(spec))) == as_sent(go.Figure(spec))


def points(lengths, three_d=False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"example_id": np.repeat(np.arange(len(lengths)), lengths),
                          "t": np.concatenate([np.arange(n) for n in lengths])})
    for axis in "xyz"[:3 if three_d else 2]:
        frame[axis] = rng.normal(size=len(frame)).astype(np.float32)
    return frame


LABELS = pd.Series([CLASSES[i % 4] for i in range(8)], index=pd.RangeIndex(8))


@pytest.mark.parametrize("three_d", [False, True])
@pytest.mark.parametrize("options", [{}, {"highlight": ["think", "drink"], "selected": 3},
                                     {"chosen_ids": [1, 2, 6], "symlog": True, "axis_title": "PCA"},
                                     {"ranges": {"x": (-3.0, 3.0), "y": (-2.0, 2.0)}, "title": "t"}])
def test_spc001_paths_spec_is_sent_as_its_figure(three_d, options):
    if three_d and "ranges" in options:
        options = {"title": "t"}
    same_as_validated(paths_spec(points([5, 3, 6, 2, 4, 7, 3, 5], three_d), LABELS, **options))
    same_as_validated(paths_spec(points([3])[:0], LABELS))                      # the message


@pytest.mark.parametrize("selected", [None, 102])
def test_spc002_film_spec_is_sent_as_its_figure(selected):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 5, 8)).astype(np.float32)
    x[1, :3] = y[1, :3] = np.nan                                        # a shorter example, aligned at the end
    probability = rng.uniform(size=(5, 8)).astype(np.float32)
    same_as_validated(film.film_spec(x, y, np.array([0, 1, 2, 0, 1]), ["a", "b", "c"], np.arange(100, 105),
                                     [f"ex{i}" for i in range(5)], "end", film.frame_positions(8, 4),
                                     probability, "pca2", note="5 of 5", selected=selected, pictures="0:h"))


@pytest.mark.parametrize("options", [{}, {"color_by": "hand", "selected": 2}, {"chosen_ids": [0, 1, 5]},
                                     {"highlight": ["think"], "symlog": True, "name_all": True, "title": "t"}])
def test_spc003_last_step_spec_is_sent_as_its_figure(options):
    n = 12
    label = np.array([CLASSES[i % 4] for i in range(n)], dtype=object)
    prediction = label.copy()
    prediction[[1, 5]] = "crazy"
    examples = pd.DataFrame({"example_id": np.arange(n), "label": label, "prediction": prediction,
                             "correct": label == prediction,
                             "hand_usage": ["one-handed", "two-handed", None] * 4})
    rng = np.random.default_rng(2)
    last = pd.DataFrame({"example_id": np.arange(n), "x": rng.normal(size=n).astype(np.float32),
                         "y": rng.normal(size=n).astype(np.float32)})
    same_as_validated(last_step_spec(last, examples, CLASSES, **options))


@pytest.mark.parametrize("selected", [None, 1])
def test_spc004_cells_and_gates_specs_are_sent_as_their_figures(selected):
    grid = np.arange(12, dtype=np.float32).reshape(4, 3) / 12
    grid[0, 0] = np.nan
    same_as_validated(cells.cell_activation_spec(grid, ["a", "a", "b", "c"], [5, 7, 1, 2], "end", 3, "c",
                                                 n_total=10, selected=selected))
    stats = {"low": np.full(6, 0.2), "high": np.full(6, 0.1), "examples": np.linspace(10, 60, 6)}
    same_as_validated(gates.saturation_spec({"input_gate": stats, "forget_gate": stats}, "start", 0.1, 0.9, 60, 0))
    edges, fractions = gates.gate_histograms({"input_gate": grid[1:].ravel(), "output_gate": grid[1:].ravel()})
    same_as_validated(gates.gate_histogram_spec(edges, fractions, 0.15, 0.85))
    for statistic, order in (("saturated", "saturation"), ("mean", "index")):
        same_as_validated(gates.cell_heatmap_spec(grid, "end", "forget_gate", statistic, order))


def verdicts(n: int) -> pd.DataFrame:
    """Examples with known labels, predictions, splits and decisive steps (two never decided)."""
    label = np.array([CLASSES[i % 4] for i in range(n)], dtype=object)
    prediction = label.copy()
    prediction[[1, 6, 7]] = ["crazy", "drink", "think"]
    steps = np.arange(n) % 9
    steps[[2, 9]] = -1
    return pd.DataFrame({"example_id": np.arange(100, 100 + n), "label": label, "prediction": prediction,
                         "correct": label == prediction, "split": np.array(["train", "validation", "test"])[np.arange(n) % 3],
                         "decisive_step": steps, "length": np.full(n, 9)})


@pytest.mark.parametrize("marked", [None, ("think", "drink"), ("no such", "drink")])
def test_spc005_confusion_and_accuracy_specs_are_sent_as_their_figures(marked):
    frame = verdicts(16)
    index = {name: i for i, name in enumerate(CLASSES)}
    matrix = confusion.confusion_counts(frame["label"].map(index), frame["prediction"].map(index), len(CLASSES))
    order = confusion.similarity_order(matrix)
    same_as_validated(confusion.confusion_spec(matrix, CLASSES, order, marked=marked))
    same_as_validated(confusion.confusion_spec(matrix, CLASSES, order, title="t"))
    same_as_validated(confusion.confusion_spec(matrix * 0, CLASSES, order))                  # the message
    table = confusion.per_class_accuracy(frame, CLASSES + ["unseen"], ["train", "test"])
    assert table.set_index(["class", "split"]).at[("unseen", "test"), "examples"] == 0
    same_as_validated(confusion.accuracy_spec(table, [CLASSES[i] for i in order] + ["unseen"]))


@pytest.mark.parametrize("options", [{}, {"selected": 103, "title": "t"}, {"selected": 102}])
def test_spc006_decisive_spec_is_sent_as_its_figure(options):
    frame = verdicts(20)
    same_as_validated(decisive.decisive_spec(frame, ["think", "drink", "crazy"], **options))
    same_as_validated(decisive.decisive_spec(frame.iloc[:0], CLASSES))                        # the message


def history(val=True) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"epoch": np.arange(1, 9, dtype=np.int32), "loss": rng.uniform(size=8),
                          "accuracy": rng.uniform(size=8), "grad_norm": rng.uniform(size=8)})
    if val:
        frame["val_loss"], frame["val_accuracy"] = rng.uniform(size=(2, 8))
    for layer in (0, 1):
        for gate in ("input_gate", "forget_gate", "output_gate"):
            frame[f"layer{layer}_{gate}_mean"], frame[f"layer{layer}_{gate}_saturated"] = rng.uniform(size=(2, 8))
    return frame


@pytest.mark.parametrize("options", [{}, {"metrics": {"test": {"loss": 0.4, "accuracy": 0.9}}}, {"best": 2}])
def test_spc007_training_spec_is_sent_as_its_figure(options):
    same_as_validated(training.training_spec(history(), **options))
    same_as_validated(training.training_spec(history(val=False).drop(columns=["grad_norm"]), **options))
    same_as_validated(training.training_spec(history()[["epoch", "loss", "val_loss"]], **options))


@pytest.mark.parametrize("occlusion", [None, np.linspace(0, 0.3, 6)])
def test_spc008_why_specs_are_sent_as_their_figures(occlusion):
    t = np.arange(6)
    table = pd.DataFrame({"left_x": [0, 1, -2, 0, 0, 0], "left_y": 0.5, "right_x": [0, 0, 0, 4, 0, 0], "t": t})
    groups = {"left": ["left_x", "left_y"], "right": ["right_x"]}
    for true, predicted in (("a", "b"), ("a", "a")):
        same_as_validated(why.attribution_spec(t, table, groups, np.linspace(0, 1, 6), np.linspace(1, 0, 6),
                                               true, predicted, predicted, occlusion, gap=0.02))
    same_as_validated(why.attribution_spec(t[:0], table[:0], groups, t[:0], t[:0], "a", "b", "b"))   # the message
    parts = pd.DataFrame({"label": 0, "part": range(10), "left_x": np.arange(10.0), "right_x": 1.0})
    for tables in ({"a": parts}, {"a": parts, "b": parts.assign(left_x=0.0)}):
        same_as_validated(why.class_attribution_spec(tables, {"left": ["left_x"], "right": ["right_x"]}))


@pytest.mark.parametrize("window", [series.WHOLE, series.Window(100.0, 900.0)])
def test_spc009_inspector_series_specs_are_sent_as_their_figures(window):
    t = np.arange(3000)
    wave = np.sin(t / 50).astype(np.float32)
    steps = pd.DataFrame({"t": t, "left_x": wave, "left_roll": -wave, "right_x": wave * 2})
    groups = {"left": ["left_x", "left_roll"], "right": ["right_x"]}
    same_as_validated(inspector.inputs_spec(steps, groups, window, revision="inputs-r-1"))
    same_as_validated(inspector.inputs_spec(steps, {"inputs": ["left_x"]}))
    same_as_validated(inspector.inputs_spec(steps[:0], groups))                       # the message
    predicted = np.where(t % 7 == 0, np.nan, 0.5).astype(np.float32)                   # gaps: not in the top k
    for labels in (("drink", "danger"), ("drink", "drink")):
        same_as_validated(inspector.confidence_spec(t, np.linspace(0, 1, len(t)), predicted, *labels, 5, window))
    same_as_validated(inspector.confidence_spec(t[:0], t[:0], t[:0], "a", "b"))

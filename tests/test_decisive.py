"""The decisive step view: per-class distributions of decisive steps as a fraction of the sign's
length, as pure functions and as the view's callback on the small synthetic run."""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
import pytest

from dashboard import data, state
from dashboard.app import create_app
from dashboard.figures.decisive import LATE, class_summary, decided, decisive_figure, sorted_classes
from dashboard.views import decisive
from factories import callbacks_of, figure_of

ALL_SPLITS = list(state.SPLITS)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "example_id": [0, 1, 2, 3, 4, 5, 6],
        "label": ["early", "early", "late", "late", "flip", "flip", "early"],
        "length": [10, 20, 10, 10, 10, 10, 10],
        "decisive_step": [0, 2, 6, 7, 9, 0, -1],           # -1: no per-step predictions
        "correct": [True, True, True, False, False, True, True],
        "prediction": ["early", "early", "late", "flip", "late", "flip", "early"],
    })


def test_dec001_decisive_fraction_per_class_and_the_share_decided_in_the_last_tenth():
    part = decided(_frame())
    assert part["example_id"].tolist() == [0, 1, 2, 3, 4, 5]
    assert part["fraction"].tolist() == pytest.approx([0, 0.1, 0.6, 0.7, 0.9, 0])
    summary = class_summary(_frame(), ["early", "late", "flip", "unused"])
    assert summary.index.tolist() == ["early", "late", "flip"]
    assert summary.loc["late", "median"] == pytest.approx(0.65)
    assert summary.loc["flip", "late"] == 0.5 and summary.loc["late", "late"] == 0.0   # 0.9 >= LATE
    assert LATE == 0.9
    assert sorted_classes(summary, "late") == ["late", "flip", "early"]
    assert sorted_classes(summary, "flip") == ["flip", "late", "early"]
    assert sorted_classes(summary, "class") == ["early", "late", "flip"]


def test_dec002_figure_has_a_box_per_class_and_a_clickable_point_per_example():
    figure = decisive_figure(_frame(), ["late", "flip", "early"], selected=3, title="t")
    box, correct, wrong, ring = figure.data
    assert list(figure.layout.xaxis.ticktext) == ["late", "flip", "early"]
    assert sorted(c[0] for c in correct.customdata) == [0, 1, 2, 5]
    assert sorted(c[0] for c in wrong.customdata) == [3, 4]
    assert ring.customdata[0][0] == 3 and ring.y[0] == pytest.approx(0.7)
    by_id = {c[0]: (x, y) for c, x, y in zip(wrong.customdata, wrong.x, wrong.y)}
    assert round(by_id[4][0]) == 1 and by_id[4][1] == pytest.approx(0.9)           # flip's column
    assert state.example_from_click({"points": [{"customdata": wrong.customdata[0]}]}) == wrong.customdata[0][0]
    assert "misclassified as" in wrong.customdata[0][4]
    empty = decisive_figure(_frame().assign(decisive_step=-1), ["early"])
    assert "No examples" in empty.layout.annotations[0].text


@pytest.fixture(scope="module")
def run(synthetic_runs_dir):
    data.configure(synthetic_runs_dir)
    return data.get_run("synthetic")


def test_dec003_view_follows_the_filters_sorts_and_names_the_latest_classes(run):
    frame = data.examples(run)
    figure = figure_of(decisive.decisive_view("synthetic", [], ["test"], None, "all", None, "late"))
    points = [c[0] for trace in figure.data[1:] for c in trace.customdata]
    test = frame[(frame["split"] == "test") & (frame["decisive_step"] >= 0)]
    assert sorted(points) == sorted(test["example_id"].tolist())
    medians = (test["decisive_step"] / test["length"]).groupby(test["label"]).median()
    order = list(figure.layout.xaxis.ticktext)
    assert [medians[name] for name in order] == sorted(medians, reverse=True)
    assert order[0] in figure.layout.title.text
    one = frame["label"].iat[0]
    narrowed = figure_of(decisive.decisive_view("synthetic", [one], ALL_SPLITS, None, "misclassified", None, "flip"))
    wrong = frame[(frame["label"] == one) & ~frame["correct"]]
    assert sorted(c[0] for t in narrowed.data[1:] for c in t.customdata) == sorted(wrong["example_id"].tolist())
    refused = decisive.decisive_view("synthetic", [], ALL_SPLITS, None, "all", None, "sideways")
    assert "not one of the choices" in refused.layout.annotations[0].text


def test_dec004_a_click_selects_and_the_view_is_for_classifiers_with_per_step_predictions(run, synthetic_runs_dir):
    import dataclasses
    assert decisive.applies_to(run.manifest)
    assert not decisive.applies_to(dataclasses.replace(run.manifest, stages={}))
    assert not decisive.applies_to(dataclasses.replace(run.manifest, kind="language_model"))
    app = create_app(synthetic_runs_dir)
    found = {tuple(outputs): cb for outputs, cb in callbacks_of(app, [decisive])}
    select = next(cb for cb in app.callback_map.values()
                  if [(i["id"], i["property"]) for i in cb["inputs"]] == [(decisive.GRAPH, "clickData")])
    assert select["callback"].__wrapped__({"points": [{"customdata": [17, "x", 3, 9, ""]}]}) == 17
    assert select["callback"].__wrapped__({"points": []}) is dash.no_update
    draw = next(cb for outputs, cb in found.items() if outputs == (decisive.GRAPH,))
    names = [item["id"] for item in draw["inputs"]]
    assert draw["callback"].__wrapped__(*[{state.RUN: "synthetic", state.TABS: "paths"}.get(n) for n in names]) \
        is dash.no_update
    assert np.isfinite(data.examples(run)["decisive_fraction"]).all()

"""The compare view: the small synthetic run (tests/conftest.py) beside a variant of it whose
predictions differ for every seventh example, and beside runs that do not share its examples."""

from __future__ import annotations

import shutil

import dash
import numpy as np
import pandas as pd
import pytest

from dashboard import data, state
from dashboard.app import create_app
from dashboard.views import compare
from factories import callbacks_of

ALL_SPLITS = list(state.SPLITS)


def _variant(runs, name: str, change) -> None:
    target = runs / name
    shutil.copytree(runs / "synthetic", target)
    frame = change(pd.read_parquet(target / "examples.parquet"))
    frame.to_parquet(target / "examples.parquet")


def _flip(frame: pd.DataFrame) -> pd.DataFrame:
    flip = frame.index[::7]
    frame.loc[flip, "prediction"] = (frame.loc[flip, "label"] + 1) % (int(frame["label"].max()) + 1)
    frame["correct"] = frame["prediction"] == frame["label"]
    return frame


@pytest.fixture(scope="module")
def runs(synthetic_runs_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare") / "runs"
    shutil.copytree(synthetic_runs_dir / "synthetic", folder / "synthetic")
    _variant(folder, "variant", _flip)
    _variant(folder, "fewer", lambda frame: frame.iloc[:-3])
    previous = data.runs_dir()
    data.configure(folder)
    yield folder
    data.configure(previous)


def test_cmp001_two_runs_on_the_same_examples_side_by_side(runs):
    note, cka, accuracy, difference, disagree, paths = compare.compare_view("synthetic", "variant", [], ALL_SPLITS,
                                                                           None, ALL_SPLITS[2])
    a, b = data.examples(data.get_run("synthetic")), data.examples(data.get_run("variant"))
    test_a, test_b = a[a["split"] == "test"], b[b["split"] == "test"]
    assert f"{test_a['correct'].mean():.1%} and {test_b['correct'].mean():.1%}" in note
    cells = [row.children for row in cka.children[1].children]
    assert [cell.children for cell in cells[0][1:]] == ["1.000", "1.000"]       # the same states: CKA 1
    got = dict(zip(accuracy.data[1].x, accuracy.data[1].y))
    for name, value in test_b.groupby("label")["correct"].mean().items():
        assert got[name] == pytest.approx(value)
    z = np.nan_to_num(np.asarray(difference.data[0].z, dtype=float))
    assert np.allclose(z.sum(axis=1), 0)                                         # each class keeps its examples
    changed = test_a["prediction"].to_numpy() != test_b["prediction"].to_numpy()
    assert np.abs(z).sum() == 2 * changed.sum()
    right_a_wrong_b = int((a["correct"] & ~b["correct"]).sum())
    wrong_a_right_b = int((~a["correct"] & b["correct"]).sum())
    assert disagree[0].children.endswith(f": {right_a_wrong_b:,}")
    assert {button.id["index"] for button in disagree[1].children} <= set(a["example_id"][a["correct"] & ~b["correct"]])
    assert any(part.children.endswith(f": {wrong_a_right_b:,}") for part in disagree if isinstance(part.children, str))
    assert "disparity 0.00" in paths.layout.annotations[1].text


def test_cmp002_runs_that_do_not_share_examples_are_refused_with_what_differs(runs):
    note, *_ = compare.compare_view("synthetic", "fewer", [], ALL_SPLITS, None, "test")
    assert "do not share examples" in note and "example ids differ" in note
    nothing, *_ = compare.compare_view("synthetic", None, [], ALL_SPLITS, None, "test")
    assert "Pick a second run" in nothing
    forged, *_ = compare.compare_view("synthetic", "../etc", [], ALL_SPLITS, None, "test")
    assert "not a run id" in forged
    missing, *_ = compare.compare_view("synthetic", "nope", [], ALL_SPLITS, None, "test")
    assert "no finished run" in missing


def test_cmp003_the_second_run_is_offered_from_the_runs_with_as_many_examples(runs):
    options, value = compare.other_choices("synthetic")
    offered = sorted(option["value"] for option in options)
    assert offered == ["fewer", "variant"] and value in offered       # the manifests' counts agree; "fewer"
    assert "synthetic" not in offered                                  # is refused when compared (cmp002)
    app = create_app(runs)
    found = [(outputs, cb) for outputs, cb in callbacks_of(app, [compare]) if outputs[0].startswith("compare-")]
    assert len(found) == 2
    for outputs, callback in found:
        names = [item["id"] for item in callback["inputs"]]
        result = callback["callback"].__wrapped__(*[{state.RUN: "synthetic", state.TABS: "paths"}.get(n)
                                                    for n in names])
        assert all(r is dash.no_update for r in result), outputs

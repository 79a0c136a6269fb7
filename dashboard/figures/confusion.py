"""The confusion matrix and per-class accuracy of one classification run: pure functions.

94 x 94 stays readable because the classes are put in an order where the ones confused with each
other sit side by side (``similarity_order``: average-linkage clustering of the classes' confusion
profiles, leaves in optimal order), the diagonal has its own grey scale so that the mistakes get
the whole colour scale, and empty cells are left blank. Hover names both classes and the count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.cluster.hierarchy import leaves_list, linkage

from dashboard.figures import colorscale, message_spec, spec_layout

SPLIT_COLOURS = {"train": "#7f7f7f", "validation": "#ff7f0e", "test": "#1f77b4"}


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """(true, predicted) example counts, int64 ``(n_classes, n_classes)``."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def similarity_order(matrix: np.ndarray) -> np.ndarray:
    """Class positions in an order where classes confused with each other are neighbours.

    Each class is described by its row of the symmetrised confusion matrix (mistakes either way),
    as fractions of its examples; the rows are clustered (average linkage, Euclidean) and the
    dendrogram's leaves taken in optimal order. Deterministic; classes without examples go where
    the clustering puts an all-zero profile."""
    n = len(matrix)
    if n < 3:
        return np.arange(n)
    both = (matrix + matrix.T).astype(np.float64)
    totals = both.sum(axis=1, keepdims=True)
    profiles = np.divide(both, totals, out=np.zeros_like(both), where=totals > 0)
    tree = linkage(profiles, method="average", metric="euclidean", optimal_ordering=True)
    return leaves_list(tree).astype(np.int64)


def confusion_figure(matrix: np.ndarray, classes: Sequence[str], order: Sequence[int], title: str = "",
                     marked: tuple[str, str] | None = None) -> go.Figure:
    """A heatmap of ``matrix`` (true class rows, predicted columns) in ``order``: mistakes coloured
    by the fraction of the true class's examples, the diagonal in greys, empty cells blank; the
    hover says "true A, predicted B: n examples (x% of A)". ``marked``: (true, predicted) names of
    a cell to outline (the one clicked)."""
    return go.Figure(confusion_spec(matrix, classes, order, title, marked))


def confusion_spec(matrix: np.ndarray, classes: Sequence[str], order: Sequence[int], title: str = "",
                   marked: tuple[str, str] | None = None) -> dict:
    """``confusion_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure:
    plotly's validation of 94 x 94 cells was most of the view's ~250 ms)."""
    if matrix.sum() == 0:
        return message_spec("No examples in this split.")
    order = np.asarray(order, np.int64)
    names = [str(classes[i]) for i in order]
    counts = matrix[np.ix_(order, order)]
    totals = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    diagonal = np.eye(len(order), dtype=bool)
    off = np.where(~diagonal & (counts > 0), fraction, np.nan)
    on = np.where(diagonal & (totals > 0), fraction, np.nan)
    text = [[f"{int(c):,} example{'' if c == 1 else 's'} ({f:.0%} of its class)" for c, f in zip(row, frow)]
            for row, frow in zip(counts.tolist(), fraction.tolist())]
    hover = "true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"
    big = len(order) > 30
    data = [
        {"type": "heatmap", "z": on, "x": names, "y": names, "text": text, "hovertemplate": hover, "name": "correct",
         "colorscale": colorscale("Greys"), "zmin": 0, "zmax": 1, "showscale": False, "hoverongaps": False},
        {"type": "heatmap", "z": off, "x": names, "y": names, "text": text, "hovertemplate": hover,
         "name": "mistakes", "colorscale": colorscale("Reds"),
         "zmin": 0, "zmax": float(np.nanmax(off)) if np.isfinite(off).any() else 1, "hoverongaps": False,
         "colorbar": {"title": {"text": "mistakes<br>(share of<br>true class)"}, "thickness": 12}},
    ]
    shapes = []
    if marked is not None and marked[0] in names and marked[1] in names:
        row, column = names.index(marked[0]), names.index(marked[1])
        shapes.append({"type": "rect", "x0": column - 0.5, "x1": column + 0.5, "y0": row - 0.5, "y1": row + 0.5,
                       "line": {"color": "#1f77b4", "width": 2}})
    tick = {"size": 8 if big else 11}
    wrong = int(counts.sum() - np.trace(counts))
    marks = {"shapes": shapes} if shapes else {}
    return {"data": data, "layout": spec_layout(
        title={"text": title or f"{wrong:,} of {int(counts.sum()):,} examples misclassified", "font": {"size": 13}},
        xaxis={"title": {"text": "predicted class"}, "tickfont": tick, "tickangle": -90, "dtick": 1,
               "side": "bottom", "constrain": "domain"},
        yaxis={"title": {"text": "true class"}, "tickfont": tick, "autorange": "reversed", "dtick": 1,
               "scaleanchor": "x", "constrain": "domain"},
        margin={"l": 110 if big else 90, "r": 20, "t": 40, "b": 110 if big else 90},
        height=900 if big else 620, uirevision="confusion", **marks)}


def per_class_accuracy(frame: pd.DataFrame, classes: Sequence[str], splits: Sequence[str]) -> pd.DataFrame:
    """Per class (the run's class order) and split: ``examples`` and ``accuracy`` (NaN without
    examples), columns ``class, split, examples, correct, accuracy``."""
    position = {name: i for i, name in enumerate(classes)}
    label = frame["label"].astype(str).map(position).to_numpy(np.float64)
    split_of = frame["split"].astype(str).to_numpy()
    right = frame["correct"].to_numpy(bool)
    n_classes = len(classes)
    examples, correct = [], []
    for split in splits:
        keep = (split_of == split) & np.isfinite(label)
        index = label[keep].astype(np.int64)
        examples.append(np.bincount(index, minlength=n_classes))
        correct.append(np.bincount(index, weights=right[keep], minlength=n_classes).astype(np.int64))
    examples, correct = np.concatenate(examples or [[]]).astype(np.int64), np.concatenate(correct or [[]]).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(examples > 0, correct / np.maximum(examples, 1), np.nan)
    return pd.DataFrame({"class": list(classes) * len(splits), "split": np.repeat(list(splits), n_classes).tolist(),
                         "examples": examples, "correct": correct, "accuracy": accuracy},
                        columns=["class", "split", "examples", "correct", "accuracy"])


def accuracy_figure(table: pd.DataFrame, order_names: Sequence[str]) -> go.Figure:
    """Per-class accuracy per split as dots over the classes in the matrix's order; hover names the
    class, split and counts. A click gives the class name (``customdata``)."""
    return go.Figure(accuracy_spec(table, order_names))


def accuracy_spec(table: pd.DataFrame, order_names: Sequence[str]) -> dict:
    """``accuracy_figure`` as a plain dict (``figures.sent``)."""
    if table.empty or table["examples"].sum() == 0:
        return message_spec("No examples to score.")
    names = [str(name) for name in order_names]
    data = []
    for split, part in table.groupby("split", sort=False):
        part = part.set_index("class").reindex(names)
        data.append({
            "type": "scatter", "x": names, "y": part["accuracy"].to_numpy(np.float64), "mode": "markers",
            "name": str(split),
            "marker": {"color": SPLIT_COLOURS.get(str(split), "#333"), "size": 7,
                       "symbol": {"train": "circle-open", "validation": "diamond", "test": "circle"}.get(str(split), "circle")},
            "customdata": names,
            "text": [f"{int(c)} of {int(n)}" for c, n in zip(part["correct"].fillna(0), part["examples"].fillna(0))],
            "hovertemplate": f"%{{x}} · {split}<br>accuracy %{{y:.0%}} (%{{text}})<extra></extra>"})
    big = len(names) > 30
    return {"data": data, "layout": spec_layout(
        yaxis={"range": [-0.03, 1.03], "title": {"text": "accuracy"}, "tickformat": ".0%"},
        xaxis={"tickfont": {"size": 8 if big else 11}, "tickangle": -90, "dtick": 1},
        legend={"orientation": "h", "y": 1.12}, height=340,
        margin={"l": 50, "r": 20, "t": 30, "b": 110 if big else 80}, uirevision="accuracy")}

"""Two runs on the same examples side by side (pure functions): per-class accuracy of both, the
difference of their confusion matrices, and their paths after Procrustes alignment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import base_layout, class_colors, message_figure
from dashboard.figures.paths import gapped

A_COLOUR, B_COLOUR = "#1f77b4", "#d62728"


def accuracy_pair_figure(a: pd.Series, b: pd.Series, names: Sequence[str], run_a: str, run_b: str) -> go.Figure:
    """Per class (``names``, in order) the accuracy of run A and run B (Series by class name)."""
    if not len(names):
        return message_figure("No examples to score.")
    figure = go.Figure()
    for series, run, colour, symbol in ((a, run_a, A_COLOUR, "circle"), (b, run_b, B_COLOUR, "diamond")):
        figure.add_trace(go.Scatter(x=list(names), y=series.reindex(list(names)).to_numpy(np.float64), mode="markers",
                                    name=run, marker={"color": colour, "symbol": symbol, "size": 8},
                                    hovertemplate=f"%{{x}} · {run}: %{{y:.0%}}<extra></extra>"))
    big = len(names) > 30
    return base_layout(figure, yaxis={"range": [-0.03, 1.03], "tickformat": ".0%", "title": {"text": "accuracy"}},
                       xaxis={"tickangle": -90, "dtick": 1, "tickfont": {"size": 8 if big else 11}},
                       legend={"orientation": "h", "y": 1.12}, height=340,
                       margin={"l": 50, "r": 20, "t": 30, "b": 110 if big else 80}, uirevision="compare-accuracy")


def difference_figure(a: np.ndarray, b: np.ndarray, classes: Sequence[str], order: Sequence[int],
                      run_a: str, run_b: str) -> go.Figure:
    """B's confusion counts minus A's (true rows, predicted columns) in ``order``: red where B puts
    more examples, blue where fewer; cells equal in both blank."""
    order = np.asarray(order, np.int64)
    names = [str(classes[i]) for i in order]
    a, b = a[np.ix_(order, order)], b[np.ix_(order, order)]
    difference = (b - a).astype(np.float64)
    z = np.where(difference != 0, difference, np.nan)
    if not np.isfinite(z).any():
        return message_figure(f"The two runs' confusion matrices are the same ({int(a.sum()):,} examples).")
    bound = float(np.nanmax(np.abs(z)))
    text = [[f"{run_a}: {int(x)}, {run_b}: {int(y)}" for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]
    figure = go.Figure(go.Heatmap(z=z, x=names, y=names, text=text, zmin=-bound, zmax=bound, zmid=0,
                                  colorscale="RdBu_r", hoverongaps=False,
                                  colorbar={"title": {"text": f"{run_b[:12]}<br>minus<br>{run_a[:12]}"}, "thickness": 12},
                                  hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"))
    big = len(names) > 30
    tick = {"size": 8 if big else 11}
    return base_layout(figure, xaxis={"title": {"text": "predicted class"}, "tickangle": -90, "dtick": 1, "tickfont": tick},
                       yaxis={"title": {"text": "true class"}, "autorange": "reversed", "dtick": 1, "tickfont": tick,
                              "scaleanchor": "x"},
                       height=900 if big else 600, uirevision="compare-difference",
                       margin={"l": 110 if big else 90, "r": 20, "t": 30, "b": 110 if big else 90})


def aligned_paths_figure(a: pd.DataFrame, b: pd.DataFrame, labels: pd.Series, classes: Sequence[str],
                         run_a: str, run_b: str, disparity: float, axis_title: str = "") -> go.Figure:
    """Run A's paths and run B's (``example_id, t, x, y``, B already aligned onto A) side by side
    on the same axes, one colour per class; a point's customdata is its example id. ``axis_title``:
    what A's projection axes are ("PCA": "PCA 1", "PCA 2")."""
    if a.empty:
        return message_figure("No paths among the filtered examples.")
    figure = make_subplots(rows=1, cols=2, shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=[run_a, f"{run_b}, aligned (Procrustes disparity {disparity:.2f})"])
    colours = class_colors(classes)
    for col, frame in ((1, a), (2, b)):
        names = labels.reindex(frame["example_id"]).to_numpy()
        for name in dict.fromkeys(names):
            arrays = gapped(frame[names == name], ["x", "y", "example_id"])
            figure.add_trace(go.Scattergl(x=arrays["x"], y=arrays["y"], mode="lines", name=str(name),
                                          legendgroup=str(name), showlegend=col == 1,
                                          line={"color": colours.get(name, "#777"), "width": 1},
                                          customdata=arrays["example_id"],
                                          hovertemplate=f"{name}<br>example %{{customdata}}<extra></extra>"),
                             row=1, col=col)
    if axis_title:
        for col in (1, 2):
            figure.update_xaxes(title_text=f"{axis_title} 1", row=1, col=col)
        figure.update_yaxes(title_text=f"{axis_title} 2", row=1, col=1)
    return base_layout(figure, height=520, legend={"font": {"size": 10}}, uirevision="compare-paths",
                       margin={"l": 60, "r": 20, "t": 40, "b": 50})

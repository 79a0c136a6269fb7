"""Training curves from history.parquet: loss, accuracy, gradient norm and gate statistics per epoch.

Early stopping restores the weights of the best epoch, so that epoch is marked on every panel and
the test metrics (measured once, with those weights) are drawn as a point there.
"""

from __future__ import annotations

import copy
import functools
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import spec_layout
from dashboard.figures.gates import GATE_COLOURS, GATES, gate_label

_GATE_COLUMN = re.compile(r"^layer(\d+)_(.+)_(mean|saturated)$")
# Splits in colours the gates (blue, orange, green, as in the gate view) do not use.
SPLIT_STYLE = {"train": {"color": "#555555"}, "validation": {"color": "#9467bd"},
               "test": {"color": "#8c564b"}}
LAYER_DASHES = ("solid", "dash", "dot", "dashdot")
PANELS = {"loss": (1, 1), "accuracy": (1, 2), "gate_mean": (2, 1), "gate_saturated": (2, 2),
          "grad_norm": (3, 1)}


def best_epoch(history: pd.DataFrame) -> int | None:
    """The epoch early stopping keeps: lowest validation loss (first one on ties)."""
    if "val_loss" not in history or history["val_loss"].isna().all():
        return None
    return int(history.loc[history["val_loss"].idxmin(), "epoch"])


def gate_columns(columns) -> list[tuple[str, int, str, str]]:
    """``(column, layer, gate, statistic)`` for each gate statistic column, sorted by layer and gate."""
    found = []
    for column in columns:
        match = _GATE_COLUMN.match(column)
        if match:
            found.append((column, int(match.group(1)), match.group(2), match.group(3)))
    rank = {gate: i for i, gate in enumerate(GATES)}
    return sorted(found, key=lambda item: (item[1], rank.get(item[2], len(rank)), item[2], item[3]))


def training_figure(history: pd.DataFrame, metrics: dict | None = None, best: int | None = None) -> go.Figure:
    """Five panels sharing the epoch axis; ``best`` defaults to ``best_epoch(history)``."""
    return go.Figure(training_spec(history, metrics, best))


@functools.cache
def _grid() -> dict:
    """The five panels' axes and titles, laid out once by ``make_subplots`` (55-75 ms of work)."""
    fig = make_subplots(
        rows=3, cols=2, shared_xaxes=True, vertical_spacing=0.08, horizontal_spacing=0.08,
        specs=[[{}, {}], [{}, {}], [{"colspan": 2}, None]],
        subplot_titles=("Loss", "Accuracy", "Mean gate value", "Saturated gate fraction", "Gradient norm"))
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text="mean", row=2, col=1)
    fig.update_yaxes(title_text="fraction", tickformat=".0%", row=2, col=2)
    fig.update_yaxes(title_text="L2 norm", row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=2, showticklabels=True)
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)
    return layout


def training_spec(history: pd.DataFrame, metrics: dict | None = None, best: int | None = None) -> dict:
    """``training_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure:
    plotly's validation of its ~20 traces was ~180 ms of the view's first answer)."""
    if "epoch" not in history:
        raise ValueError("history has no 'epoch' column")
    metrics = metrics or {}
    best = best_epoch(history) if best is None else best
    epoch = history["epoch"].to_numpy()
    data: list[dict] = []

    def axes(panel) -> dict:
        row, col = PANELS[panel]
        number = "" if (row, col) == (1, 1) else str(2 * (row - 1) + col)
        return {"xaxis": f"x{number}", "yaxis": f"y{number}"}

    def line(panel, y, name, legendgroup, **style):
        data.append({"legendgroup": legendgroup, "mode": "lines", "name": name, "x": epoch,
                     "y": np.asarray(y, dtype=np.float32), "type": "scatter", **style, **axes(panel)})

    for metric in ("loss", "accuracy"):
        for split, column in (("train", metric), ("validation", f"val_{metric}")):
            if column in history:
                line(metric, history[column], f"{split}", split, line=dict(SPLIT_STYLE[split]),
                     showlegend=metric == "loss")
        test = metrics.get("test", {}).get(metric)
        if test is not None and best is not None:
            data.append({"hovertemplate": f"test {metric}: %{{y:.4g}}<extra></extra>", "legendgroup": "test",
                         "marker": {**SPLIT_STYLE["test"], "size": 13, "symbol": "star"}, "mode": "markers",
                         "name": "test (best weights)", "showlegend": metric == "loss", "x": [best],
                         "y": [test], "type": "scatter", **axes(metric)})
    if "grad_norm" in history:
        line("grad_norm", history["grad_norm"], "gradient norm", "grad", line={"color": "#222222"},
             showlegend=False)
    layers = sorted({layer for _, layer, _, _ in gate_columns(history.columns)})
    for column, layer, gate, statistic in gate_columns(history.columns):
        dash = LAYER_DASHES[layers.index(layer) % len(LAYER_DASHES)]
        name = f"{gate_label(gate)} gate" + (f", layer {layer}" if len(layers) > 1 else "")
        line(f"gate_{statistic}", history[column], name, f"gate-{layer}-{gate}",
             line={"color": GATE_COLOURS.get(gate, "#9467bd"), "dash": dash}, showlegend=statistic == "mean")

    layout = copy.deepcopy(_grid())
    drawn = {(trace["xaxis"], trace["yaxis"]) for trace in data}
    for panel in PANELS:
        x_axis, y_axis = axes(panel).values()
        if (x_axis, y_axis) not in drawn:          # a history without, say, gate statistics
            layout[f"yaxis{y_axis[1:]}"].update(range=[0, 1], showticklabels=False)
            layout["annotations"].append({"showarrow": False, "text": "not in this run's history", "x": 0.5,
                                          "xref": f"{x_axis} domain", "y": 0.5, "yref": f"{y_axis} domain",
                                          "font": {"color": "#888888"}})
    if best is not None:
        for panel in PANELS:
            x_axis = axes(panel)["xaxis"]
            layout.setdefault("shapes", []).append(
                {"line": {"color": "#d62728", "dash": "dot", "width": 1}, "type": "line", "x0": best, "x1": best,
                 "xref": x_axis, "y0": 0, "y1": 1, "yref": f"y{x_axis[1:]} domain"})
        layout["annotations"].append({"font": {"color": "#d62728", "size": 11}, "showarrow": False,
                                      "text": f"best epoch {best}", "x": best, "xref": "x", "y": 1,
                                      "yanchor": "bottom", "yref": "y domain"})
    kept = f" (early stopping kept epoch {best})" if best is not None else ""
    layout.update(spec_layout(title="Training history" + kept, margin={"l": 60, "r": 20, "t": 80, "b": 50},
                              hovermode="x unified"),
                  legend={"groupclick": "toggleitem"}, height=820)
    return {"data": data, "layout": layout}

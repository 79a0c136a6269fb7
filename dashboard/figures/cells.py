"""One cell's activation across examples, and which cells tell the chosen classes apart.

The heatmap puts examples in rows grouped by class and steps in columns aligned at the end, so a
cell that fires for one sign shows as a block. The ranking scores every cell with the one-way
ANOVA F statistic of a per-example summary (the last step's value, or the mean over time) across
classes: the between-class variance over the within-class variance.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import base_layout, colorscale, spec_layout
from dashboard.figures.alignment import ALIGNMENTS, step_axis

MAX_ROWS = 2000
SUMMARIES = {"last": "last-step value", "mean": "mean over time"}
_ROW_LABEL = re.compile(r"#(\d+)$")


def row_label(class_name: str, example_id: int) -> str:
    """The heatmap's y value for one example; ``example_id_from_row_label`` reads it back."""
    return f"{class_name} #{int(example_id)}"


def example_id_from_row_label(label) -> int | None:
    match = _ROW_LABEL.search(str(label)) if label is not None else None
    return int(match.group(1)) if match else None


def class_sorted_rows(labels, classes, example_ids, max_rows: int = MAX_ROWS,
                      keep: int | None = None) -> np.ndarray:
    """Row order for the heatmap: grouped by class (in ``classes`` order), then by example id.

    When there are more than ``max_rows`` examples, evenly spaced rows of that order are kept, so
    every class keeps its share; the example ``keep`` (the selected one) stays among them.
    """
    rank = {name: i for i, name in enumerate(classes)}
    labels = np.asarray(labels, dtype=object)
    class_rank = np.array([rank.get(name, len(rank)) for name in labels], dtype=np.int64)
    order = np.lexsort((np.asarray(example_ids), class_rank))
    if len(order) > max_rows:
        spaced = np.linspace(0, len(order) - 1, max_rows).round().astype(np.int64)
        kept = np.flatnonzero(np.asarray(example_ids)[order] == keep) if keep is not None else []
        order = order[np.unique(np.concatenate([spaced, kept]).astype(np.int64))]
    return order


def per_example_summary(values: np.ndarray, length, summary: str = "last") -> np.ndarray:
    """``(examples, units)``: each example's last-step value or mean over its steps.

    ``values`` holds the examples' rows back to back (as ``alignment.example_rows`` gathers them).
    """
    if summary not in SUMMARIES:
        raise ValueError(f"unknown summary {summary!r}; expected one of {', '.join(SUMMARIES)}")
    length = np.asarray(length, dtype=np.int64)
    if np.any(length <= 0):
        raise ValueError("every example needs at least one step")
    ends = np.cumsum(length)
    if summary == "last":
        return np.asarray(values[ends - 1], dtype=np.float64)
    sums = np.add.reduceat(np.asarray(values), ends - length, axis=0, dtype=np.float64)
    return sums / length[:, None]


def separation_scores(summary: np.ndarray, labels, block: int = 8192) -> np.ndarray:
    """One-way ANOVA F statistic per unit: how well the unit's summary separates the classes.

    NaN when it is undefined: fewer than two classes, or no within-class spread (a constant cell).
    Two passes of ``block`` examples at a time (class sums, then squared deviations from the
    class means) in float64: whole-array steps made four float64 copies of the summaries (320 MB
    at 100,000 examples x 100 cells), and fresh pages are slow to fault in on this 2-core VM.
    """
    summary = np.asarray(summary)
    group, names = pd.factorize(np.asarray(labels), use_na_sentinel=False)
    n, k = len(group), len(names)
    if k < 2 or n <= k:
        return np.full(summary.shape[1], np.nan)
    counts = np.bincount(group, minlength=k).astype(np.float64)
    sums = np.zeros((k, summary.shape[1]))
    for b0 in range(0, n, block):
        np.add.at(sums, group[b0:b0 + block], summary[b0:b0 + block].astype(np.float64))
    means = sums / counts[:, None]
    grand = sums.sum(axis=0) / n
    between = (counts[:, None] * (means - grand) ** 2).sum(axis=0) / (k - 1)
    within = np.zeros(summary.shape[1])
    for b0 in range(0, n, block):
        deviation = summary[b0:b0 + block].astype(np.float64) - means[group[b0:b0 + block]]
        within += np.einsum("ij,ij->j", deviation, deviation)
    within /= n - k
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(within > 0, between / within, np.nan)


def ranking_figure(scores: np.ndarray, summary: str, kind: str, selected_unit: int | None = None,
                   top: int = 20, n_classes: int | None = None) -> go.Figure:
    """Horizontal bars of the ``top`` cells by F statistic, best at the top; click one to show it."""
    finite = np.flatnonzero(np.isfinite(scores))
    best = finite[np.argsort(-scores[finite], kind="stable")][:top]
    colours = ["#d62728" if unit == selected_unit else "#1f77b4" for unit in best]
    fig = go.Figure(go.Bar(
        x=scores[best].astype(np.float32), y=[f"u{u}" for u in best], orientation="h",
        # a list, not a numpy array: Dash reads a clicked point's customdata from the figure's data,
        # where a numpy array is still base64 text, so the click would carry no cell
        customdata=[int(unit) for unit in best], marker={"color": colours},
        hovertemplate="cell %{y}: F = %{x:.3g}<extra>click to show</extra>"))
    among = f"{n_classes} classes · " if n_classes else ""
    base_layout(fig).update_layout(
        title={"text": "Cells that separate the classes best"
                       f"<br><sup>{among}{kind} · {SUMMARIES[summary]}</sup>"},
        xaxis_title="F (between / within class variance)", yaxis_title="cell",
        yaxis={"autorange": "reversed", "type": "category"},
        height=max(320, 22 * len(best) + 120), margin={"l": 60, "r": 20, "t": 50, "b": 50})
    if not len(best):
        fig.add_annotation(text="choose at least two classes with several examples each to rank cells",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _class_blocks(sorted_labels: np.ndarray) -> tuple[list[int], list[int]]:
    """Start row of each run of equal labels, and the row after its end."""
    if not len(sorted_labels):
        return [], []
    change = np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(sorted_labels)]])
    return starts.tolist(), ends.tolist()


def cell_activation_figure(grid: np.ndarray, labels, example_ids, align: str, unit: int, kind: str,
                           n_total: int | None = None, max_label_classes: int = 60,
                           selected: int | None = None) -> go.Figure:
    """Examples (rows, already in class order) × aligned steps of one cell; padding is blank.

    ``n_total`` is the number of examples before decimation, for the title. The ``selected``
    example's row, when it is one, is outlined and named at the right edge (rows are a pixel or
    two high at Auslan size, so an outline alone would be lost).
    """
    return go.Figure(cell_activation_spec(grid, labels, example_ids, align, unit, kind, n_total,
                                          max_label_classes, selected))


def cell_activation_spec(grid: np.ndarray, labels, example_ids, align: str, unit: int, kind: str,
                         n_total: int | None = None, max_label_classes: int = 60,
                         selected: int | None = None) -> dict:
    """``cell_activation_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that
    figure), without plotly validating its thousands of row labels."""
    labels = np.asarray(labels, dtype=object)
    x = step_axis(grid.shape[1], align)
    y = [row_label(name, eid) for name, eid in zip(labels, example_ids)]
    finite = grid[np.isfinite(grid)]
    if kind == "c":
        extent = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
        extent = extent or 1.0
    else:
        extent = 1.0
    heatmap = {"type": "heatmap", "z": grid.astype(np.float32), "x": x, "y": y, "colorscale": _RDBU,
               "zmin": -extent, "zmax": extent, "zmid": 0, "colorbar": {"title": {"text": kind, "side": "right"}},
               "hovertemplate": "%{y}<br>step %{x}: %{z:.3f}<extra>click to inspect</extra>"}
    data = [heatmap]
    starts, ends = _class_blocks(labels)
    left, right = (float(x[0] - 0.5), float(x[-1] + 0.5)) if len(x) else (None, None)
    boundary_x, boundary_y = [], []
    for start in starts[1:]:
        boundary_x += [left, right, None]
        boundary_y += [start - 0.5, start - 0.5, None]
    if boundary_x:
        data.append({"type": "scatter", "x": boundary_x, "y": boundary_y, "mode": "lines", "hoverinfo": "skip",
                     "line": {"color": "black", "width": 0.6}, "showlegend": False, "yaxis": "y2"})
    ids = [int(e) for e in example_ids]
    row = ids.index(int(selected)) if selected is not None and int(selected) in ids else None
    marks: dict = {}
    if row is not None and len(x):
        marks = {"shapes": [{"type": "rect", "xref": "x", "yref": "y2", "x0": left, "x1": right, "y0": row - 0.5,
                             "y1": row + 0.5, "line": {"color": "black", "width": 2}, "name": "selected"}],
                 "annotations": [{"xref": "paper", "yref": "y2", "x": 1.0, "y": row, "xanchor": "left",
                                  "showarrow": False, "text": f"◀ #{int(selected)}", "font": {"size": 11},
                                  "name": "selected"}]}
        heatmap["colorbar"]["x"] = 1.06         # the label sits between
    every = max(1, int(np.ceil(len(starts) / max_label_classes)))
    tick_rows = [(s + e - 1) / 2 for s, e in zip(starts, ends)][::every]
    tick_text = [str(labels[s]) for s in starts][::every]
    n_rows = len(y)
    shown = f"{n_rows} examples" if not n_total or n_total == n_rows else \
        f"{n_rows} of {n_total} examples (evenly decimated)"
    xaxis: dict = {"title": {"text": ALIGNMENTS[align]}}
    if len(x):
        xaxis["range"] = [left, right]
    layout = spec_layout(
        title=f"Cell u{unit} ({kind}) per example, grouped by class — {shown}", xaxis=xaxis,
        # Rows are categories (so hover and click name the example); class names are ticks on a
        # numeric twin axis over the same rows.
        yaxis={"type": "category", "autorange": "reversed", "showticklabels": False, "showgrid": False},
        yaxis2={"overlaying": "y", "side": "left", "range": [n_rows - 0.5, -0.5], "tickmode": "array",
                "tickvals": tick_rows, "ticktext": tick_text, "tickfont": {"size": 9}, "showgrid": False,
                "zeroline": False,
                "title": {"text": "class" + (f" (one label in {every})" if every > 1 else "")}},
        height=max(450, min(1000, 11 * len(starts) + 150)),
        margin={"l": 110, "r": 20 if row is None else 60, "t": 50, "b": 50}, **marks)
    return {"data": data, "layout": layout}


_RDBU = colorscale("RdBu_r")

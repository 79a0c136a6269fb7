"""How early each class is recognised: the decisive step of every example as a fraction of its
sign's length, per class (pure functions).

An example's decisive step (examples.parquet, ``pipeline.core.predictions``) is the first step
after which its top class never changes again; as a fraction of its length, 0 means the answer
stood from the first frame, close to 1 that it changed in the last frames (a flip at the end).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import message_spec, spec_layout

LATE = 0.9                       # decided in the last tenth of the sign: "flips at the end"
SORTS = ("late", "flip", "class")
CORRECT_COLOUR, WRONG_COLOUR = "#1f77b4", "#d62728"


def decided(frame: pd.DataFrame) -> pd.DataFrame:
    """The examples with a decisive step (-1 or NaN: no per-step predictions), with ``fraction``."""
    if "decisive_step" not in frame:
        return frame.iloc[:0].assign(fraction=np.float32(0))
    steps = frame["decisive_step"].to_numpy(np.float64)
    keep = np.isfinite(steps) & (steps >= 0)
    part = frame[keep]
    lengths = part["length"].to_numpy(np.float64)
    return part.assign(fraction=(part["decisive_step"].to_numpy(np.float64) / np.maximum(lengths, 1)))


def class_summary(frame: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Per class with decided examples: ``examples``, ``median`` decisive fraction and ``late``
    (share of examples decided in the last tenth, at or after ``LATE``), indexed by class name in
    the run's class order."""
    part = decided(frame)
    grouped = part.groupby("label", observed=True)["fraction"]
    table = pd.DataFrame({"examples": grouped.size(), "median": grouped.median(),
                          "late": grouped.agg(lambda f: float(np.mean(f >= LATE)))})
    return table.reindex([c for c in classes if c in table.index])


def sorted_classes(summary: pd.DataFrame, sort: str) -> list[str]:
    """Class names: ``late`` latest median first, ``flip`` most end-flips first (ties by median),
    ``class`` the run's order."""
    if sort == "late":
        return summary.sort_values(["median", "late"], ascending=False, kind="stable").index.tolist()
    if sort == "flip":
        return summary.sort_values(["late", "median"], ascending=False, kind="stable").index.tolist()
    return summary.index.tolist()


def decisive_figure(frame: pd.DataFrame, order: Sequence[str], selected: int | None = None,
                    title: str = "") -> go.Figure:
    """A box per class (``order``, left to right) of its examples' decisive fractions, with every
    example as a point beside it (blue correct, red misclassified; the selected one ringed); a
    point's ``customdata`` is its example id (a click selects it)."""
    return go.Figure(decisive_spec(frame, order, selected, title))


def decisive_spec(frame: pd.DataFrame, order: Sequence[str], selected: int | None = None, title: str = "") -> dict:
    """``decisive_figure`` as a plain dict (``figures.sent``: plotly's validation of the 2,528
    points' customdata was most of the view's time)."""
    part = decided(frame)
    part = part[part["label"].isin(list(order))]
    if part.empty:
        return message_spec("No examples with a decisive step among the filtered ones.")
    order = [str(name) for name in order]
    position = {name: i for i, name in enumerate(order)}
    x = part["label"].astype(str).map(position).to_numpy(np.float64)
    fraction = part["fraction"].to_numpy(np.float64)
    ids = part["example_id"].to_numpy(np.int64)
    jitter = ((ids * 2654435761) % 1000 / 1000.0 - 0.5) * 0.5             # stable per example
    correct = part["correct"].to_numpy(bool) if "correct" in part else np.ones(len(part), bool)
    hover = ("%{customdata[1]} · example %{customdata[0]}<br>decided at step %{customdata[2]} of "
             "%{customdata[3]} (%{y:.0%})<br>%{customdata[4]}<extra></extra>")
    verdicts = (np.where(correct, "correct", "misclassified as " + part["prediction"].astype(str))
                if "prediction" in part else np.full(len(part), ""))
    custom = [[int(i), str(label), int(step), int(length), str(verdict)] for i, label, step, length, verdict in
              zip(ids.tolist(), part["label"].tolist(), part["decisive_step"].tolist(), part["length"].tolist(),
                  verdicts.tolist())]
    data = [{"type": "box", "x": x, "y": fraction, "name": "classes", "boxpoints": False,
             "fillcolor": "rgba(0,0,0,0)", "line": {"color": "#555", "width": 1}, "showlegend": False,
             "hoverinfo": "skip"}]
    for mask, name, colour in ((correct, "correct", CORRECT_COLOUR), (~correct, "misclassified", WRONG_COLOUR)):
        if mask.any():
            data.append({"type": "scatter", "x": (x + 0.3 + jitter)[mask], "y": fraction[mask], "mode": "markers",
                         "name": name, "marker": {"color": colour, "size": 5, "opacity": 0.7},
                         "customdata": [row for row, m in zip(custom, mask.tolist()) if m], "hovertemplate": hover})
    if selected is not None and selected in set(ids.tolist()):
        i = int(np.flatnonzero(ids == selected)[0])
        data.append({"type": "scatter", "x": [float(x[i] + 0.3 + jitter[i])], "y": [float(fraction[i])],
                     "mode": "markers", "name": f"example {selected}", "customdata": [custom[i]],
                     "hovertemplate": hover,
                     "marker": {"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2}}})
    big = len(order) > 30
    return {"data": data, "layout": spec_layout(
        title={"text": title, "font": {"size": 13}, "y": 0.98, "yanchor": "top"} if title else None,
        xaxis={"tickmode": "array", "tickvals": list(range(len(order))), "ticktext": order,
               "tickangle": -90, "tickfont": {"size": 8 if big else 11}, "range": [-0.6, len(order) - 0.1]},
        yaxis={"range": [-0.03, 1.03], "tickformat": ".0%",
               "title": {"text": "decisive step / sign length"}},
        shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": LATE, "y1": LATE,
                 "line": {"color": "#999", "dash": "dot", "width": 1}}],
        legend={"orientation": "h", "y": 1.01, "yanchor": "bottom", "x": 1, "xanchor": "right"}, height=560,
        margin={"l": 60, "r": 20, "t": 80, "b": 120 if big else 80},
        uirevision="decisive")}

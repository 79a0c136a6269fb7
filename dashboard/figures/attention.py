"""Attention figures (pure): where in a sequence a model's attention pooling puts its weight.

Weights are shown **relative to an even share**: ``weight x length``, so 1 means the step got what
averaging would give it and signs of different lengths compare (a raw weight of a long sign is
small because it is shared among more steps). Time is aligned at the sign's start (``t``), its end
(steps before the last) or as a share of the sign (``part``, twentieths), as the other sign views do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import HIGHLIGHT, base_layout, message_figure
from dashboard.figures.inspector import PREDICTED_COLOUR, TRUE_COLOUR

ALIGNS = ("start", "end", "share")
PARTS = 20                      # bins of the "share" alignment
AXIS_TITLES = {"start": "time step from the sign's start", "end": "steps before the sign's end",
               "share": "share of the sign"}
RELATIVE = "weight x length (1: an even share)"
COLORSCALE = "Blues"
MAX_ROWS = 3000                 # heatmap rows drawn at most (the first ones in class order)


def aligned(attention: pd.DataFrame, lengths: pd.Series, align: str) -> pd.DataFrame:
    """``attention`` (example_id, t, attention) with ``x`` (the aligned time) and ``relative``
    (weight x length); ``lengths`` by example_id."""
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {ALIGNS}, not {align!r}")
    length = lengths.reindex(attention["example_id"]).to_numpy(np.int64)
    t = attention["t"].to_numpy(np.int64)
    if align == "start":
        x = t
    elif align == "end":
        x = t - (length - 1)
    else:
        x = np.minimum(t * PARTS // np.maximum(length, 1), PARTS - 1)
    return attention.assign(x=x, relative=attention["attention"].to_numpy(np.float64) * length)


def class_means(attention: pd.DataFrame, examples: pd.DataFrame, align: str) -> pd.DataFrame:
    """Per class (``label``, a name) and aligned step ``x``: the ``mean`` relative weight of its
    examples and how many examples reach that step (``n``)."""
    lengths = examples.set_index("example_id")["length"]
    part = aligned(attention[attention["example_id"].isin(examples["example_id"])], lengths, align)
    part = part.assign(label=examples.set_index("example_id")["label"].reindex(part["example_id"]).to_numpy())
    if align == "share":        # each example once per part: the mean of its steps there
        part = part.groupby(["label", "example_id", "x"], as_index=False)["relative"].mean()
    grouped = part.groupby(["label", "x"], as_index=False)["relative"]
    return grouped.mean().rename(columns={"relative": "mean"}).merge(
        grouped.size().rename(columns={"size": "n"}), on=["label", "x"])


def example_attention_figure(t: np.ndarray, weights: np.ndarray, inputs: np.ndarray, channels: Sequence[str],
                             true_prob: np.ndarray, predicted_prob: np.ndarray, true_label: str,
                             predicted_label: str, example_id: int) -> go.Figure:
    """One example on one time axis: its attention weights (top), its input channels as a heatmap
    (standardised per channel over the example, middle) and its confidence in the true and the
    predicted class after every step (bottom); a mistake says so in the title, in red."""
    if len(t) == 0:
        return message_figure(f"Example {example_id} has no attention weights.")
    length = len(t)
    figure = go.Figure()
    figure.add_trace(go.Bar(x=t, y=weights * length, name="attention", marker={"color": "#444"},
                            customdata=weights, yaxis="y",
                            hovertemplate="t=%{x}: weight %{customdata:.4f} (x length %{y:.2f})<extra></extra>"))
    spread = inputs.std(axis=0)
    scaled = (inputs - inputs.mean(axis=0)) / np.where(spread > 0, spread, 1)
    figure.add_trace(go.Heatmap(x=t, y=list(channels), z=scaled.T, colorscale="RdBu", zmid=0, yaxis="y2",
                                showscale=False, name="inputs",
                                hovertemplate="%{y}, t=%{x}: %{z:.2f} std<extra></extra>"))
    figure.add_trace(go.Scatter(x=t, y=true_prob, mode="lines", name=f"true: {true_label}", yaxis="y3",
                                line={"color": TRUE_COLOUR, "width": 2}))
    wrong = predicted_label != true_label
    if wrong:
        figure.add_trace(go.Scatter(x=t, y=predicted_prob, mode="lines", name=f"predicted: {predicted_label}",
                                    yaxis="y3", line={"color": PREDICTED_COLOUR, "width": 2}))
    peak = int(t[int(np.argmax(weights))])
    verdict = (f"<span style='color:{PREDICTED_COLOUR}'>misclassified: true {true_label}, predicted "
               f"{predicted_label}</span>" if wrong else f"{true_label}, classified correctly")
    title = f"Example {example_id}: {verdict} · peak weight at step {peak} of {length}"
    return base_layout(
        figure, title={"text": title, "font": {"size": 13}}, bargap=0.1,
        xaxis={"anchor": "y3", "title": {"text": "time step"}, "range": [-0.5, length - 0.5]},
        yaxis={"domain": [0.72, 1.0], "title": {"text": "attention<br>(x length)"}, "rangemode": "tozero"},
        yaxis2={"domain": [0.3, 0.68], "anchor": "x", "tickfont": {"size": 8}, "autorange": "reversed"},
        yaxis3={"domain": [0.0, 0.26], "anchor": "x", "range": [0, 1.02], "title": {"text": "probability"}},
        legend={"orientation": "h", "y": -0.12}, margin={"l": 110, "r": 20, "t": 50, "b": 60},
        uirevision=f"attention-{example_id}")


def class_means_figure(means: pd.DataFrame, classes: Sequence[str], align: str, title: str = "") -> go.Figure:
    """One line per class (``classes``, in that order) of its mean relative weight over the aligned
    time; a dotted line at 1 (an even share)."""
    shown = [name for name in classes if name in set(means["label"])]
    if not shown:
        return message_figure("No attention weights for these classes among the filtered examples.")
    figure = go.Figure()
    for k, name in enumerate(shown):
        part = means[means["label"] == name].sort_values("x")
        x = part["x"].to_numpy(np.float64)
        if align == "share":
            x = (x + 0.5) / PARTS
        figure.add_trace(go.Scatter(x=x, y=part["mean"], mode="lines+markers", name=str(name),
                                    line={"color": HIGHLIGHT[k % len(HIGHLIGHT)], "width": 2}, marker={"size": 4},
                                    customdata=part["n"],
                                    hovertemplate=f"{name}<br>%{{x}}: %{{y:.2f}} (%{{customdata}} examples)"
                                                  f"<extra></extra>"))
    figure.add_hline(y=1, line={"dash": "dot", "color": "#888"})
    return base_layout(figure, title={"text": title, "font": {"size": 13}} if title else None,
                       xaxis={"title": {"text": AXIS_TITLES[align]}, **({"tickformat": ".0%"} if align == "share" else {})},
                       yaxis={"title": {"text": f"mean {RELATIVE}"}, "rangemode": "tozero"},
                       legend={"orientation": "h", "y": -0.2}, uirevision=f"class-means-{align}")


def heatmap_rows(examples: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """The examples in heatmap order: by class (the run's order), mistakes first within a class."""
    order = {name: i for i, name in enumerate(classes)}
    correct = examples["correct"].astype(bool) if "correct" in examples else pd.Series(True, index=examples.index)
    return examples.assign(_class=examples["label"].map(order), _correct=correct.to_numpy()).sort_values(
        ["_class", "_correct", "example_id"], kind="stable").drop(columns=["_class", "_correct"])


def examples_heatmap_figure(attention: pd.DataFrame, examples: pd.DataFrame, classes: Sequence[str], align: str,
                            selected: int | None = None) -> go.Figure:
    """Filtered examples (rows, by class, mistakes first and marked with a red x at the left) by
    aligned time (columns), coloured by relative weight; ``customdata`` is the example id (a click
    selects it); the selected example's row is outlined."""
    if examples.empty:
        return message_figure("No examples pass the filters.")
    rows = heatmap_rows(examples, classes)
    dropped = max(len(rows) - MAX_ROWS, 0)
    rows = rows.iloc[:MAX_ROWS]
    part = aligned(attention[attention["example_id"].isin(rows["example_id"])],
                   rows.set_index("example_id")["length"], align)
    if align == "share":
        part = part.groupby(["example_id", "x"], as_index=False)["relative"].mean()
    columns = np.arange(int(part["x"].min()), int(part["x"].max()) + 1)
    position = pd.Series(np.arange(len(rows)), index=rows["example_id"].to_numpy())
    z = np.full((len(rows), len(columns)), np.nan, np.float32)
    z[position.reindex(part["example_id"]).to_numpy(), part["x"].to_numpy(np.int64) - columns[0]] = part["relative"]
    ids = rows["example_id"].to_numpy()
    labels = [f"{label} · {example}" for label, example in zip(rows["label"], ids)]
    x = (columns + 0.5) / PARTS if align == "share" else columns
    top = float(np.nanquantile(z, 0.99)) if np.isfinite(z).any() else 1.0
    figure = go.Figure(go.Heatmap(
        x=x, y=labels, z=z, zmin=0, zmax=max(top, 1.0), colorscale=COLORSCALE,
        customdata=np.repeat(ids[:, None], len(columns), axis=1),
        colorbar={"title": {"text": "x length"}, "thickness": 10},
        hovertemplate="%{y}<br>%{x}: %{z:.2f}<extra></extra>"))
    if "correct" in rows:
        wrong = ~rows["correct"].astype(bool).to_numpy()
        if wrong.any():
            figure.add_trace(go.Scatter(x=np.full(int(wrong.sum()), x[0]), y=np.asarray(labels)[wrong],
                                        mode="markers", name="misclassified", customdata=ids[wrong],
                                        marker={"symbol": "x", "color": PREDICTED_COLOUR, "size": 7},
                                        xaxis="x2", hovertemplate="%{y}: misclassified<extra></extra>"))
    if selected is not None and selected in set(ids):
        at = int(np.flatnonzero(ids == selected)[0])       # a category's position on the y axis
        figure.add_shape(type="rect", xref="paper", x0=0.03, x1=1, yref="y", y0=at - 0.5, y1=at + 0.5,
                         line={"color": "black", "width": 2})
    note = f" (the first {MAX_ROWS:,} of {len(rows) + dropped:,} in class order)" if dropped else ""
    height = min(max(300, 12 * len(rows) + 120), 2400)
    return base_layout(
        figure, height=height, showlegend=False,
        title={"text": f"{len(rows):,} filtered examples{note} by {AXIS_TITLES[align]}; red x: misclassified",
               "font": {"size": 13}},
        xaxis={"title": {"text": AXIS_TITLES[align]}, "domain": [0.03, 1.0],
               **({"tickformat": ".0%"} if align == "share" else {})},
        xaxis2={"domain": [0.0, 0.03], "visible": False, "anchor": "y"},
        yaxis={"autorange": "reversed", "tickfont": {"size": 8}, "showticklabels": len(rows) <= 150},
        margin={"l": 120 if len(rows) <= 150 else 40, "r": 20, "t": 50, "b": 50}, uirevision=f"heatmap-{align}")


def attention_matrix_figure(matrix: pd.DataFrame, example_id: int) -> go.Figure:
    """A sequence-to-sequence attention matrix (``t_out``, ``t_in``, ``attention`` rows) as a
    heatmap: rows are output steps, columns input steps."""
    if matrix.empty:
        return message_figure(f"Example {example_id} has no attention matrix.")
    n_out, n_in = int(matrix["t_out"].max()) + 1, int(matrix["t_in"].max()) + 1
    z = np.zeros((n_out, n_in), np.float32)
    z[matrix["t_out"].to_numpy(), matrix["t_in"].to_numpy()] = matrix["attention"].to_numpy(np.float32)
    figure = go.Figure(go.Heatmap(z=z, x=np.arange(n_in), y=np.arange(n_out), colorscale=COLORSCALE, zmin=0,
                                  colorbar={"title": {"text": "weight"}, "thickness": 10},
                                  hovertemplate="output %{y}, input %{x}: %{z:.3f}<extra></extra>"))
    return base_layout(figure, title={"text": f"Example {example_id}: attention of each output step over the "
                                              f"input steps (rows sum to 1)", "font": {"size": 13}},
                       xaxis={"title": {"text": "input step"}},
                       yaxis={"title": {"text": "output step"}, "autorange": "reversed"},
                       margin={"l": 60, "r": 20, "t": 50, "b": 50}, uirevision=f"matrix-{example_id}")

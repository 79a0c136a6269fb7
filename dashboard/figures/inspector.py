"""The inspector's figures for one example: its input channels, its path among its true and
predicted classes' paths, and its confidence in both classes over time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import PALETTE, TIME_COLORSCALE, base_layout, message_figure, message_spec, spec_layout
from dashboard.figures.paths import gapped
from dashboard.figures.series import WHOLE, Window, drawn_note, in_window, shown_points, zoomed_axis
from pipeline.analysis.transforms import symlog as symlog_transform

TRUE_COLOUR = "#1f77b4"
PREDICTED_COLOUR = "#d62728"


def hand_groups(channels: Sequence[str], hands: dict[str, list[int]] | None = None) -> dict[str, list[str]]:
    """Channels by hand: from the run's ``hands`` (hand -> channel positions) when it has them,
    else from the names (``left_x`` -> left); channels of no hand go under "inputs"."""
    groups: dict[str, list[str]] = {}
    if hands:
        for hand, positions in hands.items():
            groups[hand] = [channels[i] for i in positions if i < len(channels)]
        rest = [c for c in channels if not any(c in names for names in groups.values())]
        return {**groups, **({"inputs": rest} if rest else {})}
    for name in channels:
        hand = name.split("_", 1)[0] if name.split("_", 1)[0] in ("left", "right") else "inputs"
        groups.setdefault(hand, []).append(name)
    return groups


def inputs_figure(steps: pd.DataFrame, groups: dict[str, list[str]], window: Window = WHOLE,
                  revision: str | bool = True) -> go.Figure:
    """``inputs_spec`` as a ``go.Figure``."""
    return go.Figure(inputs_spec(steps, groups, window, revision))


def inputs_spec(steps: pd.DataFrame, groups: dict[str, list[str]], window: Window = WHOLE,
                revision: str | bool = True) -> dict:
    """One panel per hand (``groups``: hand -> channel names), one line per channel over time;
    a quantity (the name after the hand) has one colour in every panel. A long example is drawn
    decimated (``figures.series``) within the zoom ``window``. ``revision``: the ``uirevision``
    (per example: a zoom or hidden channels last until another example is drawn). A plain dict
    (``figures.sent`` sends it as Dash sends that figure: validating its ~20 lines was ~30 ms)."""
    channels = [name for names in groups.values() for name in names]
    if steps.empty or not channels:
        return message_spec("No input steps for this example.")
    quantities = list(dict.fromkeys(name.split("_", 1)[-1] for name in channels))
    t = steps["t"].to_numpy()
    gap = 0.1
    height = (1 - gap * (len(groups) - 1)) / len(groups)
    bottom = "y" if len(groups) == 1 else f"y{len(groups)}"
    layout: dict = {"xaxis": {"anchor": bottom, "title": {"text": "time step"}, **zoomed_axis(window)}}
    # the channels mix units (positions, angles, finger bends): one value axis per hand
    unit = "value (as recorded)"
    titles = []
    data = []
    drawn = 0
    for row, (hand, names) in enumerate(groups.items()):
        axis = "y" if row == 0 else f"y{row + 1}"
        top = 1 - row * (height + gap)
        layout[f"yaxis{row + 1 if row else ''}"] = {"domain": [max(top - height, 0.0), top],
                                                    "anchor": "x", "title": {"text": unit}}
        titles.append({"text": f"{hand} hand" if hand != "inputs" else hand, "x": 0.5, "y": top,
                       "xref": "paper", "yref": "paper", "showarrow": False, "yanchor": "bottom"})
        for name in names:
            quantity = name.split("_", 1)[-1]
            colour = PALETTE[quantities.index(quantity) % len(PALETTE)]
            values = steps[name].to_numpy(np.float32)
            shown = shown_points(t, values, window)
            drawn = max(drawn, len(shown))
            data.append({"type": "scatter", "x": t[shown], "y": values[shown], "mode": "lines",
                         "name": quantity, "legendgroup": quantity, "showlegend": row == 0,
                         "line": {"color": colour, "width": 1.5}, "yaxis": axis,
                         "hovertemplate": f"{name}<br>t=%{{x}}: %{{y:.3f}}<extra></extra>"})
    note = drawn_note(drawn, in_window(t, window))
    layout.update(spec_layout(
        annotations=titles, title={"text": note, "font": {"size": 11}, "x": 0.99, "xanchor": "right"} if note else None,
        legend={"orientation": "v", "font": {"size": 10}}, uirevision=revision,
        margin={"l": 60, "r": 10, "t": 50 if note else 30, "b": 40}))
    return {"data": data, "layout": layout}


def example_path_figure(points: pd.DataFrame, labels: pd.Series, example_id: int,
                        true_label: str, predicted_label: str, symlog: bool = False,
                        axis_title: str = "", pictures: str = "") -> go.Figure:
    """The example's path (black, points coloured by time) over its true class's paths (blue)
    and, when it was misclassified, its predicted class's paths (red); 2-D projections only.
    ``axis_title``: what the axes are ("PCA": "PCA 1", "PCA 2"); ``pictures``: the layer and
    tensor the projection pictures, for the title."""
    path = points[points["example_id"] == example_id]
    if path.empty:
        return message_figure(f"Example {example_id} is not in this projection.")
    if symlog:
        points = points.assign(x=symlog_transform(points["x"]).astype(np.float32),
                               y=symlog_transform(points["y"]).astype(np.float32))
        path = points[points["example_id"] == example_id]
    others = points[points["example_id"] != example_id]
    other_labels = labels.reindex(others["example_id"]).to_numpy()
    figure = go.Figure()
    roles = [(true_label, TRUE_COLOUR, "true class")]
    if predicted_label != true_label:
        roles.append((predicted_label, PREDICTED_COLOUR, "predicted class"))
    for name, colour, role in roles:
        arrays = gapped(others[other_labels == name], ["x", "y", "example_id"])
        figure.add_trace(go.Scattergl(x=arrays["x"], y=arrays["y"], mode="lines",
                                      name=f"{role}: {name}", line={"color": colour, "width": 1},
                                      opacity=0.35, customdata=arrays["example_id"],
                                      hovertemplate=f"{name}<br>example %{{customdata}}<extra></extra>"))
    figure.add_trace(go.Scattergl(
        x=path["x"].to_numpy(np.float32), y=path["y"].to_numpy(np.float32), mode="lines+markers",
        name=f"example {example_id}", line={"color": "black", "width": 3},
        marker={"color": path["t"].to_numpy(), "colorscale": TIME_COLORSCALE, "size": 7,
                "colorbar": {"title": {"text": "t"}, "thickness": 10}},
        customdata=path["example_id"].to_numpy(), hovertemplate="t = %{marker.color}<extra></extra>"))
    end = path.iloc[-1]
    figure.add_annotation(x=float(end["x"]), y=float(end["y"]), text=f"{true_label} (end)",
                          showarrow=True, arrowhead=2, ax=20, ay=-25, font={"size": 12})
    scale = " (symlog)" if symlog else ""
    return base_layout(figure, legend={"orientation": "h", "y": -0.2},
                       title={"text": f"in {pictures}", "font": {"size": 12}} if pictures else None,
                       xaxis={"zeroline": False, "title": {"text": f"{axis_title} 1{scale}" if axis_title else ""}},
                       yaxis={"zeroline": False, "title": {"text": f"{axis_title} 2{scale}" if axis_title else ""}},
                       margin={"l": 50, "r": 20, "t": 40 if pictures else 20, "b": 50},
                       uirevision=f"path-{example_id}")


def confidence_figure(t: np.ndarray, true_prob: np.ndarray, predicted_prob: np.ndarray,
                      true_label: str, predicted_label: str, top_k: int | None = None,
                      window: Window = WHOLE, revision: str | bool = False) -> go.Figure:
    """``confidence_spec`` as a ``go.Figure``."""
    return go.Figure(confidence_spec(t, true_prob, predicted_prob, true_label, predicted_label, top_k, window,
                                     revision))


def confidence_spec(t: np.ndarray, true_prob: np.ndarray, predicted_prob: np.ndarray,
                    true_label: str, predicted_label: str, top_k: int | None = None,
                    window: Window = WHOLE, revision: str | bool = False) -> dict:
    """Probability of the true and the predicted class after every step, as a plain dict.

    ``predicted_prob`` is NaN at steps where the predicted class was not among the stored top-k;
    those steps are left as gaps and counted in the title. A long example is drawn decimated
    (``figures.series``) within the zoom ``window``; ``revision`` as for ``inputs_spec``.
    """
    if len(t) == 0:
        return message_spec("No predictions for this example.")
    t = np.asarray(t)
    true_prob, predicted_prob = np.asarray(true_prob, np.float32), np.asarray(predicted_prob, np.float32)
    shown = shown_points(t, true_prob, window)
    data = [{"type": "scatter", "x": t[shown], "y": true_prob[shown], "mode": "lines+markers",
             "name": f"true: {true_label}", "line": {"color": TRUE_COLOUR, "width": 2}, "marker": {"size": 4}}]
    notes = []
    drawn = len(shown)
    if predicted_label != true_label:
        shown = shown_points(t, predicted_prob, window)
        drawn = max(drawn, len(shown))
        data.append({"type": "scatter", "x": t[shown], "y": predicted_prob[shown], "mode": "lines+markers",
                     "name": f"predicted: {predicted_label}", "connectgaps": False,
                     "line": {"color": PREDICTED_COLOUR, "width": 2}, "marker": {"size": 4}})
        missing = int(np.isnan(predicted_prob).sum())
        if missing:
            notes.append(f"{predicted_label!r} was not in the top {top_k or 'k'} at {missing} of "
                         f"{len(t)} steps (gaps: its probability was not stored there)")
    notes.append(drawn_note(drawn, in_window(t, window)))
    title = "<br>".join(note for note in notes if note)
    layout = spec_layout(title={"text": title, "font": {"size": 12}} if title else None,
                         yaxis={"range": [0, 1.02], "title": {"text": "probability"}},
                         xaxis={"title": {"text": "time step"}, **zoomed_axis(window)},
                         legend={"orientation": "h", "y": -0.2}, uirevision=revision)
    return {"data": data, "layout": layout}

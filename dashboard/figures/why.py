"""Why did it decide, for one example (pure figure functions): its attribution per step and channel
under its confidence over time on one time axis, the mean attribution of its class by tenth of the
sign, and what-if edits (the new confidence and path beside the old ones)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import colorscale, message_spec, spec_layout
from dashboard.figures.inspector import PREDICTED_COLOUR, TRUE_COLOUR

NEW_COLOUR = "#2ca02c"
ATTRIBUTION_SCALE = "RdBu_r"           # red: the frame raised the class's probability, blue: lowered it
_ATTRIBUTION_COLOURS = colorscale(ATTRIBUTION_SCALE)
_VIRIDIS = colorscale("Viridis")


def _hand_title(hand: str) -> str:
    return f"{hand} hand" if hand in ("left", "right") else hand


def attribution_figure(t: np.ndarray, attribution: pd.DataFrame, groups: Mapping[str, Sequence[str]],
                       true_prob: np.ndarray, predicted_prob: np.ndarray, true_label: str,
                       predicted_label: str, target: str, occlusion: np.ndarray | None = None,
                       gap: float | None = None) -> go.Figure:
    """``attribution_spec`` as a ``go.Figure``."""
    return go.Figure(attribution_spec(t, attribution, groups, true_prob, predicted_prob, true_label,
                                      predicted_label, target, occlusion, gap))


@functools.lru_cache(maxsize=64)
def _grid(rows: int, cols: int, n_titles: int, **options) -> dict:
    """``make_subplots``' layout for a grid, its titles numbered placeholders (``_titled`` fills
    them): laying out and validating the grid was ~70 ms of each why answer, the same few grids
    come back with other titles."""
    options = {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}
    layout = make_subplots(rows=rows, cols=cols, subplot_titles=[str(i) for i in range(n_titles)],
                           **options).layout.to_plotly_json()
    layout.pop("template", None)
    return layout


def _titled(layout: dict, titles: Sequence[str]) -> dict:
    """A copy of a ``_grid`` layout with its subplot titles (annotations in title order)."""
    layout = copy.deepcopy(layout)
    for annotation, title in zip(layout["annotations"], titles):
        annotation["text"] = title
    return layout


def _axis(kind: str, number: int) -> str:
    """Subplot ``number``'s axis reference (``x``, ``x2``, ...)."""
    return kind if number == 1 else f"{kind}{number}"


def _axis_key(kind: str, number: int) -> str:
    """Subplot ``number``'s axis in the layout (``xaxis``, ``xaxis2``, ...)."""
    return f"{kind}axis" if number == 1 else f"{kind}axis{number}"


def attribution_spec(t: np.ndarray, attribution: pd.DataFrame, groups: Mapping[str, Sequence[str]],
                     true_prob: np.ndarray, predicted_prob: np.ndarray, true_label: str,
                     predicted_label: str, target: str, occlusion: np.ndarray | None = None,
                     gap: float | None = None) -> dict:
    """Rows on one shared time axis: the probability of the true and the predicted class after every
    step, then per hand (``groups``: hand -> channel names) a channel x step heatmap of the integrated
    gradients of ``target``'s probability (one diverging scale, centred on 0, for every hand), then,
    with ``occlusion``, the drop of the target's final probability when the step's window is
    masked. A plain dict (``figures.sent`` sends it as Dash sends that figure)."""
    channels = [name for names in groups.values() for name in names if name in attribution]
    if len(t) == 0 or not channels:
        return message_spec("No attribution for this example.")
    hands = [(hand, [n for n in names if n in attribution]) for hand, names in groups.items()]
    hands = [(hand, names) for hand, names in hands if names]
    rows = 1 + len(hands) + (occlusion is not None)
    heights = [0.22] + [0.78 * len(names) / len(channels) * (0.8 if occlusion is not None else 1) for _, names in hands]
    if occlusion is not None:
        heights.append(0.78 * 0.2)
    titles = ["confidence over time"] + [f"attribution to {target!r}: {_hand_title(hand)}" for hand, _ in hands]
    if occlusion is not None:
        titles.append("occlusion: drop of the final probability with the window masked")
    layout = _titled(_grid(rows, 1, len(titles), shared_xaxes=True, vertical_spacing=0.04,
                           row_heights=tuple(round(h, 12) for h in heights)), titles)
    t = np.asarray(t)
    data: list[dict] = [{"type": "scatter", "x": t, "y": np.asarray(true_prob, np.float32), "mode": "lines",
                         "name": f"true: {true_label}", "line": {"color": TRUE_COLOUR, "width": 2},
                         "xaxis": "x", "yaxis": "y"}]
    if predicted_label != true_label:
        data.append({"type": "scatter", "x": t, "y": np.asarray(predicted_prob, np.float32), "mode": "lines",
                     "name": f"predicted: {predicted_label}", "line": {"color": PREDICTED_COLOUR, "width": 2},
                     "xaxis": "x", "yaxis": "y"})
    values = attribution[channels].to_numpy(np.float32)
    bound = float(np.nanmax(np.abs(values))) if values.size else 0.0
    bound = bound or 1e-9
    for row, (hand, names) in enumerate(hands, start=2):
        z = attribution[names].to_numpy(np.float32).T                         # channels x steps
        short = [name.split("_", 1)[1] if hand in ("left", "right") and "_" in name else name for name in names]
        data.append({
            "type": "heatmap", "z": z, "x": t, "y": short, "zmin": -bound, "zmax": bound, "zmid": 0,
            "colorscale": _ATTRIBUTION_COLOURS, "showscale": row == 2,
            "customdata": [[name] * len(t) for name in names],
            "colorbar": {"title": {"text": "IG"}, "thickness": 10, "len": 0.5, "y": 0.45},
            "hovertemplate": "%{customdata} at t=%{x}<br>attribution %{z:.3g}<extra></extra>", "name": hand,
            "xaxis": _axis("x", row), "yaxis": _axis("y", row)})
        layout[_axis_key("y", row)].update(dtick=1, tickfont={"size": 9})        # every channel named
    if occlusion is not None:
        data.append({"type": "bar", "x": t, "y": np.asarray(occlusion, np.float32), "name": "occlusion drop",
                     "marker": {"color": "#8c564b"}, "hovertemplate": "t=%{x}: %{y:.3f}<extra></extra>",
                     "xaxis": _axis("x", rows), "yaxis": _axis("y", rows)})
    layout["yaxis"].update(range=[0, 1.02], title={"text": "probability"})
    layout[_axis_key("x", rows)]["title"] = {"text": "time step"}
    total = float(np.nansum(values))
    title = f"integrated gradients of {target!r}: sum {total:.3f}" + (
        f", completeness gap {gap:.1%}" if gap is not None and np.isfinite(gap) else "")
    layout.update(spec_layout(title={"text": title, "font": {"size": 12}}, height=260 + 14 * len(channels),
                              legend={"orientation": "h", "y": -0.04, "yanchor": "top"},
                              margin={"l": 80, "r": 20, "t": 60, "b": 70}, uirevision=False))
    return {"data": data, "layout": layout}


def class_attribution_figure(tables: Mapping[str, pd.DataFrame], groups: Mapping[str, Sequence[str]]) -> go.Figure:
    """``class_attribution_spec`` as a ``go.Figure``."""
    return go.Figure(class_attribution_spec(tables, groups))


def class_attribution_spec(tables: Mapping[str, pd.DataFrame], groups: Mapping[str, Sequence[str]]) -> dict:
    """Per class (``tables``: class name -> rows ``part`` 0..9 with one column per channel, the mean
    |attribution|), a channel x tenth-of-the-sign heatmap per hand: which part of the sign, and
    which channels, the network looks at for that class. A plain dict, as ``attribution_spec``."""
    tables = {name: table for name, table in tables.items() if not table.empty}
    if not tables:
        return message_spec("No attribution by class for this class.")
    hands = [(hand, list(names)) for hand, names in groups.items() if names]
    names_order = list(tables)
    cols = len(names_order)
    titles = [f"{name}: {_hand_title(hand)}" for hand, _ in hands for name in names_order]
    layout = _titled(_grid(len(hands), cols, len(titles), shared_xaxes=True, shared_yaxes=True,
                           horizontal_spacing=0.04, vertical_spacing=0.06), titles)
    bound = max(float(np.nanmax(table[[c for names in groups.values() for c in names if c in table]].to_numpy()))
                for table in tables.values()) or 1e-9
    parts = [f"{10 * p}-{10 * p + 10}%" for p in range(10)]
    data: list[dict] = []
    for row, (hand, names) in enumerate(hands, start=1):
        for col, name in enumerate(names_order, start=1):
            table = tables[name].set_index("part").reindex(range(10))
            present = [n for n in names if n in table]
            short = [n.split("_", 1)[1] if hand in ("left", "right") and "_" in n else n for n in present]
            number = (row - 1) * cols + col
            data.append({"type": "heatmap", "z": table[present].to_numpy(np.float32).T, "x": parts, "y": short,
                         "zmin": 0, "zmax": bound, "colorscale": _VIRIDIS, "showscale": row == 1 and col == 1,
                         "colorbar": {"title": {"text": "mean |IG|"}, "thickness": 10},
                         "hovertemplate": f"{name} · {hand} %{{y}}<br>%{{x}} of the sign: %{{z:.3g}}<extra></extra>",
                         "xaxis": _axis("x", number), "yaxis": _axis("y", number)})
    for col in range(1, cols + 1):
        layout[_axis_key("x", (len(hands) - 1) * cols + col)]["title"] = {"text": "part of the sign"}
    layout.update(spec_layout(height=180 + 220 * len(hands), margin={"l": 80, "r": 20, "t": 50, "b": 50},
                              uirevision=False))
    return {"data": data, "layout": layout}


def whatif_figure(old: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray], true_index: int,
                  predicted_index: int, classes: Sequence[str], plane: np.ndarray, centre: np.ndarray,
                  edit: str, span: tuple[int, int] | None = None, context: pd.DataFrame | None = None) -> dict:
    """Left: the true and the predicted class's probability after every step, before (dotted) and
    after the edit (solid), plus the edited sequence's own final class when it is another; the
    edited frames shaded (``span``). Right: the old and the new path of the last layer's h in
    ``plane`` (2 x units, around ``centre``), over ``context`` (the true and predicted classes'
    last steps: ``x, y, label``).

    A plain figure dict, not a ``go.Figure``: plotly's validation of a two-panel figure costs
    ~150 ms on the shared cores, twenty times the recompute, and this answers every slider move."""
    old_p, new_p = np.asarray(old["probabilities"]), np.asarray(new["probabilities"])
    t_old, t_new = list(range(len(old_p))), list(range(len(new_p)))
    new_top = int(np.argmax(new_p[-1]))
    shown = [(true_index, TRUE_COLOUR, "true"), (predicted_index, PREDICTED_COLOUR, "predicted")]
    if predicted_index == true_index:
        shown = shown[:1]
    if new_top not in (true_index, predicted_index):
        shown.append((new_top, NEW_COLOUR, "now top"))
    traces: list[dict] = []
    for index, colour, role in shown:
        name = f"{role}: {classes[index]}"
        traces.append({"type": "scatter", "x": t_old, "y": old_p[:, index].tolist(), "mode": "lines",
                       "name": f"{name} (before)", "legendgroup": name, "xaxis": "x", "yaxis": "y",
                       "line": {"color": colour, "width": 1.5, "dash": "dot"}})
        traces.append({"type": "scatter", "x": t_new, "y": new_p[:, index].tolist(), "mode": "lines",
                       "name": f"{name} (after)", "legendgroup": name, "xaxis": "x", "yaxis": "y",
                       "line": {"color": colour, "width": 2.5}})
    if context is not None and not context.empty:
        for label, colour in ((classes[true_index], TRUE_COLOUR), (classes[predicted_index], PREDICTED_COLOUR)):
            part = context[context["label"] == label]
            if len(part):
                traces.append({"type": "scatter", "x": part["x"].tolist(), "y": part["y"].tolist(),
                               "mode": "markers", "name": f"{label}: last steps", "hoverinfo": "skip",
                               "xaxis": "x2", "yaxis": "y2",
                               "marker": {"color": colour, "size": 5, "opacity": 0.35}})
    for path, colour, name in ((old["h"], "#7f7f7f", "before"), (new["h"], "black", "after")):
        xy = (np.asarray(path, np.float32) - centre) @ plane.T
        traces.append({"type": "scatter", "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "mode": "lines+markers",
                       "name": f"path {name}", "xaxis": "x2", "yaxis": "y2", "marker": {"size": 4},
                       "line": {"color": colour, "width": 2 if name == "after" else 1.5,
                                "dash": "solid" if name == "after" else "dot"},
                       "text": [f"t={i}" for i in range(len(xy))], "hovertemplate": f"{name} %{{text}}<extra></extra>"})
    shapes = []
    if span is not None:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": span[0] - 0.5, "x1": span[1] - 0.5,
                       "y0": 0, "y1": 1, "fillcolor": "#999", "opacity": 0.2, "line": {"width": 0}})
    before, after = classes[int(np.argmax(old_p[-1]))], classes[new_top]
    verdict = "unchanged" if before == after else f"now {after!r}"
    title = (f"{edit}: final {classes[true_index]!r} {old_p[-1, true_index]:.2f} -> {new_p[-1, true_index]:.2f}, "
             f"prediction {before!r} {verdict}")
    notes = [{"text": text, "x": x, "y": 1.0, "xref": "paper", "yref": "paper", "showarrow": False,
              "xanchor": "center", "yanchor": "bottom", "font": {"size": 12}}
             for text, x in (("confidence over time, before and after", 0.26),
                             ("path of h (PCA of last steps)", 0.79))]
    layout = {"title": {"text": title, "font": {"size": 12}}, "height": 460, "hovermode": "closest",
              "template": "plotly_white", "uirevision": False, "shapes": shapes, "annotations": notes,
              "legend": {"orientation": "h", "y": -0.18}, "margin": {"l": 50, "r": 20, "t": 70, "b": 40},
              "xaxis": {"domain": [0, 0.52], "title": {"text": "time step"}, "anchor": "y"},
              "yaxis": {"range": [0, 1.02], "title": {"text": "probability"}, "anchor": "x"},
              "xaxis2": {"domain": [0.6, 1], "anchor": "y2", "zeroline": False, "title": {"text": "PCA 1"}},
              "yaxis2": {"anchor": "x2", "zeroline": False, "title": {"text": "PCA 2"}}}
    return {"data": traces, "layout": layout}

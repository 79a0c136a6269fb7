"""Why did it decide, for one example (pure figure functions): its attribution per step and channel
under its confidence over time on one time axis, the mean attribution of its class by tenth of the
sign, and what-if edits (the new confidence and path beside the old ones)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import base_layout, message_figure
from dashboard.figures.inspector import PREDICTED_COLOUR, TRUE_COLOUR

NEW_COLOUR = "#2ca02c"
ATTRIBUTION_SCALE = "RdBu_r"           # red: the frame raised the class's probability, blue: lowered it


def _hand_title(hand: str) -> str:
    return f"{hand} hand" if hand in ("left", "right") else hand


def attribution_figure(t: np.ndarray, attribution: pd.DataFrame, groups: Mapping[str, Sequence[str]],
                       true_prob: np.ndarray, predicted_prob: np.ndarray, true_label: str,
                       predicted_label: str, target: str, occlusion: np.ndarray | None = None,
                       gap: float | None = None) -> go.Figure:
    """Rows on one shared time axis: the probability of the true and the predicted class after every
    step, then per hand (``groups``: hand -> channel names) a channel x step heatmap of the integrated
    gradients of ``target``'s probability (one diverging scale, centred on 0, for every hand), then,
    with ``occlusion``, the drop of the target's final probability when the step's window is
    masked."""
    channels = [name for names in groups.values() for name in names if name in attribution]
    if len(t) == 0 or not channels:
        return message_figure("No attribution for this example.")
    hands = [(hand, [n for n in names if n in attribution]) for hand, names in groups.items()]
    hands = [(hand, names) for hand, names in hands if names]
    rows = 1 + len(hands) + (occlusion is not None)
    heights = [0.22] + [0.78 * len(names) / len(channels) * (0.8 if occlusion is not None else 1) for _, names in hands]
    if occlusion is not None:
        heights.append(0.78 * 0.2)
    titles = ["confidence over time"] + [f"attribution to {target!r}: {_hand_title(hand)}" for hand, _ in hands]
    if occlusion is not None:
        titles.append("occlusion: drop of the final probability with the window masked")
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=heights,
                           subplot_titles=titles)
    figure.add_trace(go.Scatter(x=t, y=true_prob, mode="lines", name=f"true: {true_label}",
                                line={"color": TRUE_COLOUR, "width": 2}), row=1, col=1)
    if predicted_label != true_label:
        figure.add_trace(go.Scatter(x=t, y=predicted_prob, mode="lines", name=f"predicted: {predicted_label}",
                                    line={"color": PREDICTED_COLOUR, "width": 2}), row=1, col=1)
    values = attribution[channels].to_numpy(np.float32)
    bound = float(np.nanmax(np.abs(values))) if values.size else 0.0
    bound = bound or 1e-9
    for row, (hand, names) in enumerate(hands, start=2):
        z = attribution[names].to_numpy(np.float32).T                         # channels x steps
        short = [name.split("_", 1)[1] if hand in ("left", "right") and "_" in name else name for name in names]
        figure.add_trace(go.Heatmap(
            z=z, x=t, y=short, zmin=-bound, zmax=bound, zmid=0, colorscale=ATTRIBUTION_SCALE,
            showscale=row == 2, customdata=np.array(names, dtype=object)[:, None].repeat(len(t), 1),
            colorbar={"title": {"text": "IG"}, "thickness": 10, "len": 0.5, "y": 0.45},
            hovertemplate="%{customdata} at t=%{x}<br>attribution %{z:.3g}<extra></extra>", name=hand),
            row=row, col=1)
    if occlusion is not None:
        figure.add_trace(go.Bar(x=t, y=occlusion, name="occlusion drop", marker={"color": "#8c564b"},
                                hovertemplate="t=%{x}: %{y:.3f}<extra></extra>"), row=rows, col=1)
    figure.update_yaxes(range=[0, 1.02], title={"text": "probability"}, row=1, col=1)
    for row in range(2, 2 + len(hands)):
        figure.update_yaxes(dtick=1, tickfont={"size": 9}, row=row, col=1)        # every channel named
    figure.update_xaxes(title={"text": "time step"}, row=rows, col=1)
    total = float(np.nansum(values))
    title = f"integrated gradients of {target!r}: sum {total:.3f}" + (
        f", completeness gap {gap:.1%}" if gap is not None and np.isfinite(gap) else "")
    return base_layout(figure, title={"text": title, "font": {"size": 12}}, height=260 + 14 * len(channels),
                       legend={"orientation": "h", "y": -0.04, "yanchor": "top"}, hovermode="closest",
                       margin={"l": 80, "r": 20, "t": 60, "b": 70}, uirevision=False)


def class_attribution_figure(tables: Mapping[str, pd.DataFrame], groups: Mapping[str, Sequence[str]]) -> go.Figure:
    """Per class (``tables``: class name -> rows ``part`` 0..9 with one column per channel, the mean
    |attribution|), a channel x tenth-of-the-sign heatmap per hand: which part of the sign, and
    which channels, the network looks at for that class."""
    tables = {name: table for name, table in tables.items() if not table.empty}
    if not tables:
        return message_figure("No attribution by class for this class.")
    hands = [(hand, list(names)) for hand, names in groups.items() if names]
    names_order = list(tables)
    figure = make_subplots(rows=len(hands), cols=len(names_order), shared_xaxes=True, shared_yaxes=True,
                           horizontal_spacing=0.04, vertical_spacing=0.06,
                           subplot_titles=[f"{name}: {_hand_title(hand)}" for hand, _ in hands for name in names_order])
    bound = max(float(np.nanmax(table[[c for names in groups.values() for c in names if c in table]].to_numpy()))
                for table in tables.values()) or 1e-9
    parts = [f"{10 * p}-{10 * p + 10}%" for p in range(10)]
    for row, (hand, names) in enumerate(hands, start=1):
        for col, name in enumerate(names_order, start=1):
            table = tables[name].set_index("part").reindex(range(10))
            present = [n for n in names if n in table]
            short = [n.split("_", 1)[1] if hand in ("left", "right") and "_" in n else n for n in present]
            figure.add_trace(go.Heatmap(z=table[present].to_numpy(np.float32).T, x=parts, y=short, zmin=0, zmax=bound,
                                        colorscale="Viridis", showscale=row == 1 and col == 1,
                                        colorbar={"title": {"text": "mean |IG|"}, "thickness": 10},
                                        hovertemplate=f"{name} · {hand} %{{y}}<br>%{{x}} of the sign: "
                                                      f"%{{z:.3g}}<extra></extra>"), row=row, col=col)
    figure.update_xaxes(title={"text": "part of the sign"}, row=len(hands))
    return base_layout(figure, height=180 + 220 * len(hands), margin={"l": 80, "r": 20, "t": 50, "b": 50},
                       uirevision=False)


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

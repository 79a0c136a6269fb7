"""Example paths (the study's Figures 3 and 5): each example's projected hidden state, step by step.

All paths go into ONE trace per role with NaN gaps between examples (thousands of traces would
stall the browser), in float32, in Scattergl (2-D) or Scatter3d (3-D); long scenes are
decimated by a stride so at most ``max_points`` points are drawn, always keeping each path's
last step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import (FADED, HIGHLIGHT, TIME_COLORSCALE, base_layout, message_figure,
                               spread_labels)
from pipeline.analysis.transforms import symlog as symlog_transform

MAX_POINTS = 100_000
MAX_NAME_LABELS = 30        # more class names than this near the paths' ends would be unreadable
LINE_NEUTRAL = "rgba(90,90,110,0.35)"
FADED_3D = "rgb(215,215,215)"   # WebGL 3-D lines lose a translucent grey against white


def decimate(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Every ``stride``-th step of each path (stride chosen so at most ~max_points remain),
    plus every path's last step, so the sign still ends where it ends."""
    if len(frame) <= max_points:
        return frame
    ids = frame["example_id"].to_numpy()
    last = np.r_[ids[1:] != ids[:-1], True]
    n_paths = int(last.sum())
    stride = int(np.ceil(len(frame) / max(max_points - n_paths, 1)))
    keep = (frame["t"].to_numpy() % stride == 0) | last
    return frame[keep]


def gapped(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays of ``columns`` with a gap after each example's path (one trace, many paths):
    coordinates as float32 with NaN, ``example_id`` and ``t`` as the smallest int type with -1
    (the gap's NaN coordinates keep it undrawn)."""
    ids = frame["example_id"].to_numpy()
    ends = np.flatnonzero(np.r_[ids[1:] != ids[:-1], True]) + 1 if len(ids) else np.zeros(0, int)
    arrays = {}
    for column in columns:
        values = frame[column].to_numpy()
        if column in ("example_id", "t"):
            kind = np.int16 if len(values) == 0 or values.max() < np.iinfo(np.int16).max else np.int32
            arrays[column] = np.insert(values.astype(kind), ends, -1)
        else:
            arrays[column] = np.insert(values.astype(np.float32), ends, np.nan)
    return arrays


def paths_figure(points: pd.DataFrame, labels: pd.Series,
                 highlight: Sequence[str] | None = None, selected: int | None = None,
                 symlog: bool = False, max_points: int = MAX_POINTS, title: str | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None) -> go.Figure:
    """Paths of the examples in ``points`` (``example_id, t, x, y[, z]`` in (example_id, t) order).

    ``labels``: class name by example_id. ``highlight``: classes drawn in colour (one line colour
    per class, in the order chosen) over every other path faded grey; None/[] draws all. Points
    are coloured by time step on one colour scale; the class name sits at the median of its
    paths' last steps. 3-D when ``points`` has a ``z`` column. ``selected`` is drawn on top.
    The example id of each point is its customdata (a click selects it). ``ranges``: fixed 2-D
    axis ranges (``fixed_axes``), e.g. the extent of every epoch of a recording's pictures.
    """
    if points.empty:
        return message_figure("No examples match the filters.")
    three_d = "z" in points.columns
    axes = ["x", "y", "z"] if three_d else ["x", "y"]
    points = decimate(points, max_points)
    if symlog:
        points = points.assign(**{a: symlog_transform(points[a]).astype(np.float32) for a in axes})
    point_labels = labels.reindex(points["example_id"]).to_numpy()
    # Linear in points and classes asked for: one hash pass gives each point the position of its
    # class among the chosen (-1: not chosen), and one stable sort groups the points by it.
    present = set(pd.unique(point_labels))
    chosen = [c for c in dict.fromkeys(highlight or []) if c in present]
    codes = (pd.Categorical(point_labels, categories=chosen).codes if chosen
             else np.zeros(len(points), dtype=np.int8))
    in_colour = codes >= 0
    figure = go.Figure()
    trace = _trace_type(three_d)

    faded = points[~in_colour]
    if len(faded):
        figure.add_trace(trace(**gapped(faded, axes), mode="lines", name="other classes",
                               line={"color": FADED_3D if three_d else FADED, "width": 1},
                               hoverinfo="skip"))
    shown = points[in_colour]
    shown_codes = codes[in_colour]
    order = np.argsort(shown_codes, kind="stable")            # each class's points keep their order
    bounds = np.searchsorted(shown_codes[order], np.arange(len(chosen) + 1))
    t_max = int(points["t"].max())
    for i, name in enumerate(chosen or [None]):
        part = shown if name is None else shown.iloc[order[bounds[i]:bounds[i + 1]]]
        arrays = gapped(part, [*axes, "example_id", "t"])
        marker = {"color": arrays["t"], "colorscale": TIME_COLORSCALE, "cmin": 0, "cmax": t_max,
                  "size": 3 if three_d else 4, "showscale": i == 0,
                  "colorbar": {"title": {"text": "time step"}, "thickness": 12}}
        colour = HIGHLIGHT[i % len(HIGHLIGHT)] if name else LINE_NEUTRAL
        figure.add_trace(trace(**{a: arrays[a] for a in axes}, mode="lines+markers",
                               name=name or "paths", showlegend=bool(name),
                               line={"color": colour, "width": 2 if name else 1}, marker=marker,
                               customdata=arrays["example_id"].tolist(),  # a list: Dash reads clicks from it
                               hovertemplate=f"{name or ''} example %{{customdata}}<br>"
                                             f"t = %{{marker.color}}<extra></extra>"))
    _add_class_names(figure, shown, labels, axes, trace)
    if selected is not None:
        _add_selected(figure, points, selected, axes, trace)
    scene = {"xaxis_title": "", "yaxis_title": "", "zaxis_title": ""}
    return base_layout(figure, title=title, legend={"orientation": "h", "y": -0.08},
                       **({"scene": scene} if three_d else fixed_axes(ranges, symlog)))


def fixed_axes(ranges: Mapping[str, tuple[float, float]] | None, symlog: bool = False,
               margin: float = 0.05) -> dict:
    """2-D axis settings: without ``ranges`` plotly's own (no zero lines); with ``{"x": (low,
    high), "y": ...}`` (before symlog) axes fixed to them plus a margin, whatever part is drawn, so
    that pictures of the same space (a recording's epochs) compare point for point."""
    if not ranges:
        return {"xaxis": {"zeroline": False}, "yaxis": {"zeroline": False}}
    axes = {}
    for axis, (low, high) in ranges.items():
        if symlog:
            low, high = (float(v) for v in symlog_transform([low, high]))
        pad = (high - low) * margin or 1.0
        axes[f"{axis}axis"] = {"zeroline": False, "autorange": False, "range": [low - pad, high + pad]}
    return axes


def _trace_type(three_d: bool):
    return go.Scatter3d if three_d else go.Scattergl


def _add_class_names(figure: go.Figure, shown: pd.DataFrame, labels: pd.Series, axes, trace) -> None:
    """Each class's name at the median of its examples' last steps (the sign's name near its end),
    on a white box, lifted apart where names would overlap."""
    ids = shown["example_id"].to_numpy()
    if len(ids) == 0:
        return
    ends = shown[np.r_[ids[1:] != ids[:-1], True]]
    names = labels.reindex(ends["example_id"]).to_numpy()
    if len(set(names)) > MAX_NAME_LABELS:
        return
    centres = class_medians(ends, names, axes)
    notes = spread_labels(centres["x"], centres["y"], centres.index, _range(shown["x"]),
                          _range(shown["y"]))
    if trace is go.Scatter3d:      # lifted apart as seen from the default camera, roughly
        for note in notes:
            note["z"] = float(centres.at[note["text"], "z"])
        figure.update_layout(scene={"annotations": notes})
    else:
        figure.update_layout(annotations=notes)


def class_medians(frame: pd.DataFrame, names: np.ndarray, axes) -> pd.DataFrame:
    """Median position per class name (sorted by name); numpy per class, no groupby."""
    order = sorted(set(names))
    values = {a: frame[a].to_numpy() for a in axes}
    return pd.DataFrame({a: [float(np.median(values[a][names == name])) for name in order]
                         for a in axes}, index=order)


def _range(values: pd.Series) -> tuple[float, float]:
    return float(np.nanmin(values)), float(np.nanmax(values))


def _add_selected(figure: go.Figure, points: pd.DataFrame, selected: int, axes, trace) -> None:
    path = points[points["example_id"].to_numpy() == int(selected)]
    if path.empty:
        return
    figure.add_trace(trace(**{a: path[a].to_numpy(np.float32) for a in axes}, mode="lines+markers",
                           name=f"example {selected}", line={"color": "black", "width": 4},
                           marker={"color": "black", "size": 4 if trace is go.Scatter3d else 6},
                           customdata=path["example_id"].to_numpy(), hoverinfo="skip"))


MAX_DOCUMENT_POINTS = 60_000   # hover text per point: ~20 bytes each
DOCUMENT_LEGEND = len(HIGHLIGHT)


def document_paths_figure(points: pd.DataFrame, names: pd.Series, selected: int | None = None,
                          symlog: bool = False, title: str | None = None, lines: bool = True,
                          max_points: int = MAX_DOCUMENT_POINTS,
                          ranges: Mapping[str, tuple[float, float]] | None = None) -> go.Figure:
    """A language model's documents as paths through state space (``points``: ``example_id, t,
    x, y[, z]`` in (example_id, t) order; ``names``: document name by example_id), each document
    in its own colour (documents cycle through ten colours; up to ten get a legend entry each).
    Hover names the document and the step; customdata is the example id, so a click selects it.
    ``lines=False`` draws the points only (each document's last step, say); ``ranges`` fixes the
    2-D axes (``fixed_axes``)."""
    if points.empty:
        return message_figure("No documents match the filters.")
    three_d = "z" in points.columns
    axes = ["x", "y", "z"] if three_d else ["x", "y"]
    points = decimate(points, max_points)
    if symlog:
        points = points.assign(**{a: symlog_transform(points[a]).astype(np.float32) for a in axes})
    ids = points["example_id"].to_numpy()
    documents = pd.unique(ids)
    colour_of = {doc: i % len(HIGHLIGHT) for i, doc in enumerate(documents)}
    codes = np.fromiter((colour_of[i] for i in ids), np.int16, len(ids))
    trace = _trace_type(three_d)
    figure = go.Figure()
    per_document = len(documents) <= DOCUMENT_LEGEND
    groups = ([(doc, ids == doc) for doc in documents] if per_document
              else [(None, codes == k) for k in range(len(HIGHLIGHT))])
    for position, (doc, mask) in enumerate(groups):
        part = points[mask]
        if part.empty:
            continue
        colour = HIGHLIGHT[colour_of[doc] if doc is not None else position]
        arrays = gapped(part, [*axes, "example_id", "t"]) if lines else {
            **{a: part[a].to_numpy(np.float32) for a in axes},
            "example_id": part["example_id"].to_numpy(), "t": part["t"].to_numpy()}
        doc_names = names.reindex(np.maximum(arrays["example_id"], 0)).astype(str).to_numpy()
        hover = np.char.add(np.char.add(doc_names.astype(str), " · step "), arrays["t"].astype(str))
        hover[arrays["example_id"] < 0] = ""
        figure.add_trace(trace(
            **{a: arrays[a] for a in axes}, mode="lines+markers" if lines else "markers",
            name=str(names.get(doc, doc)) if doc is not None else "documents",
            showlegend=doc is not None, line={"color": colour, "width": 1.5},
            marker={"color": colour, "size": (3 if three_d else 4) if lines else 9, "opacity": 0.85},
            customdata=arrays["example_id"].tolist(), text=hover.tolist(),
            hovertemplate="%{text}<extra></extra>"))
    if selected is not None:
        _add_selected(figure, points, selected, axes, trace)
    scene = {"xaxis_title": "", "yaxis_title": "", "zaxis_title": ""}
    return base_layout(figure, title=title, legend={"orientation": "h", "y": -0.08},
                       **({"scene": scene} if three_d else fixed_axes(ranges, symlog)))

"""Example paths (the study's Figures 3 and 5): each example's projected hidden state, step by step.

All paths go into ONE trace per class with NaN gaps between examples (a trace per example, thousands,
would stall the browser; a class's trace names its sign on hover without a text per point), in float32, in Scattergl (2-D) or Scatter3d (3-D); long scenes are
decimated by a stride so at most ``max_points`` points are drawn, always keeping each path's
last step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import (FADED, HIGHLIGHT, PALETTE, TIME_COLORSCALE, base_layout, colorscale,
                               message_figure, message_spec, spec_layout, spread_labels, typed)
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
    return _gapped({column: frame[column].to_numpy() for column in columns}, frame["example_id"].to_numpy())


def _gapped(columns: Mapping[str, np.ndarray], ids: np.ndarray) -> dict[str, np.ndarray]:
    """``gapped`` of arrays (``ids``: each row's example, rows in path order)."""
    ends = np.flatnonzero(np.r_[ids[1:] != ids[:-1], True]) + 1 if len(ids) else np.zeros(0, int)
    arrays = {}
    for column, values in columns.items():
        if column in ("example_id", "t"):
            kind = np.int16 if len(values) == 0 or values.max() < np.iinfo(np.int16).max else np.int32
            arrays[column] = np.insert(values.astype(kind), ends, -1)
        else:
            arrays[column] = np.insert(values.astype(np.float32), ends, np.nan)
    return arrays


def paths_figure(points: pd.DataFrame, labels: pd.Series,
                 highlight: Sequence[str] | None = None, selected: int | None = None,
                 symlog: bool = False, max_points: int = MAX_POINTS, title: str | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 chosen_ids: Sequence[int] | None = None, axis_title: str = "") -> go.Figure:
    """Paths of the examples in ``points`` (``example_id, t, x, y[, z]`` in (example_id, t) order).

    ``labels``: class name by example_id. One trace per class (a few dozen traces, never one per
    example), with NaN gaps between its examples' paths, so that hovering any point names its
    sign, example and step without a text per point. ``highlight``: classes drawn in colour (one
    colour per class, in the order chosen, with a legend entry each; marker size grows with the
    time step) over every other path faded grey; ``chosen_ids``: a set of examples (a lasso's)
    drawn that way, the rest faded (with ``highlight``, the chosen set's examples of those
    classes). With neither, every point is coloured by time step on one colour scale. The class
    name sits at the median of its paths' last steps (at most ``MAX_NAME_LABELS`` names). 3-D
    when ``points`` has a ``z`` column. ``selected`` is drawn on top. The example id of each
    point is its customdata (a click selects it, a lasso selects a set). ``ranges``: fixed 2-D
    axis ranges (``fixed_axes``), e.g. the extent of every epoch of a recording's pictures.
    ``axis_title``: what the axes are ("PCA", "autoencoder"): "PCA 1", "PCA 2" on the axes.
    """
    return go.Figure(paths_spec(points, labels, highlight, selected, symlog, max_points, title, ranges,
                                chosen_ids, axis_title))


def paths_spec(points: pd.DataFrame, labels: pd.Series,
               highlight: Sequence[str] | None = None, selected: int | None = None,
               symlog: bool = False, max_points: int = MAX_POINTS, title: str | None = None,
               ranges: Mapping[str, tuple[float, float]] | None = None,
               chosen_ids: Sequence[int] | None = None, axis_title: str = "") -> dict:
    """``paths_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure):
    the views draw it without plotly validating ~190 traces value by value."""
    if points.empty:
        return message_spec("No examples match the filters.")
    three_d = "z" in points.columns
    axes = ["x", "y", "z"] if three_d else ["x", "y"]
    points = decimate(points, max_points)
    columns = {a: points[a].to_numpy() for a in [*axes, "example_id", "t"]}
    if symlog:
        columns.update({a: symlog_transform(columns[a]).astype(np.float32) for a in axes})
    # Labels, classes and colour are an example's: looked up once per example (a run of equal
    # ids), then repeated over its points, which are grouped by class with one stable sort.
    ids = columns["example_id"]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, len(ids)])
    path_labels = labels.reindex(ids[starts]).astype(object).fillna("?").to_numpy()
    present = list(dict.fromkeys(pd.unique(path_labels)))
    chosen = [c for c in dict.fromkeys(highlight or []) if c in set(present)]
    emphasis = chosen_ids is not None or bool(chosen)
    path_in_colour = np.ones(len(starts), dtype=bool)
    if chosen:
        path_in_colour &= pd.Index(chosen).get_indexer(path_labels) >= 0
    if chosen_ids is not None:
        path_in_colour &= np.isin(ids[starts], np.asarray(list(chosen_ids), dtype=np.int64))
    in_colour = np.repeat(path_in_colour, counts)
    kind = "scatter3d" if three_d else "scattergl"
    t_max = max(int(columns["t"].max()), 1)
    data = []
    faded = np.flatnonzero(~in_colour) if emphasis else np.zeros(0, np.int64)
    codes = np.repeat(pd.Index(present).get_indexer(path_labels), counts)
    for k, (name, arrays) in enumerate(_gapped_classes(columns, faded, codes[faded], present)):
        data.append({"type": kind, **{a: arrays[a] for a in axes}, "mode": "lines",
                     "name": "other classes" if k == 0 else name, "legendgroup": "other",
                     "showlegend": k == 0, "line": {"color": FADED_3D if three_d else FADED, "width": 1},
                     "customdata": arrays["example_id"].tolist(), "text": typed(arrays["t"]),
                     "hovertemplate": _hover(name)})
    shown = np.flatnonzero(in_colour)
    order = chosen or list(dict.fromkeys(pd.unique(path_labels[path_in_colour])))
    palette = HIGHLIGHT if len(order) <= len(HIGHLIGHT) else PALETTE
    colour_of = {name: palette[i % len(palette)] for i, name in enumerate(order)}
    codes = np.repeat(pd.Index(order).get_indexer(path_labels), counts)
    first = True
    for name, arrays in _gapped_classes(columns, shown, codes[shown], order):
        if emphasis:      # colour by class; time as marker size (small at the start, large at the end)
            marker = {"color": colour_of[name], "size": _time_sizes(arrays["t"], t_max, three_d)}
            line = {"color": colour_of[name], "width": 2}
        else:
            marker = {"color": arrays["t"], "colorscale": _TIME_SCALE, "cmin": 0, "cmax": t_max,
                      "size": 3 if three_d else 4, "showscale": first,
                      "colorbar": {"title": {"text": "time step"}, "thickness": 12}}
            line = {"color": LINE_NEUTRAL, "width": 1}
        data.append({"type": kind, **{a: arrays[a] for a in axes}, "mode": "lines+markers", "name": name,
                     "showlegend": emphasis, "legendgroup": name, "line": line, "marker": marker,
                     "customdata": arrays["example_id"].tolist(),  # a list: a lasso's points carry it
                     "text": typed(arrays["t"]), "hovertemplate": _hover(name)})
        first = False
    notes = _class_names(columns, shown, labels, axes)
    if selected is not None:
        data.extend(_selected_trace(columns, selected, axes, kind))
    titles = [f"{axis_title} {i + 1}" if axis_title else "" for i in range(len(axes))]
    legend = {"orientation": "h", "y": -0.08}
    if three_d:
        scene: dict = {f"{a}axis": {"title": {"text": text}} for a, text in zip(axes, titles)}
        if notes:
            scene["annotations"] = notes
        return {"data": data, "layout": spec_layout(title=title, legend=legend, scene=scene)}
    layout = fixed_axes(ranges, symlog)
    for axis, text in zip(axes, titles):
        layout[f"{axis}axis"]["title"] = {"text": text}
    if notes:
        layout["annotations"] = notes
    return {"data": data, "layout": spec_layout(title=title, legend=legend, dragmode="lasso", **layout)}


_TIME_SCALE = colorscale(TIME_COLORSCALE)


def _hover(name: str) -> str:
    """Hover text of a class's trace: the sign, the example and the step (from ``text``)."""
    safe = str(name).replace("{", "&#123;").replace("}", "&#125;")
    return f"<b>{safe}</b><br>example %{{customdata}}<br>step %{{text}}<extra></extra>"


def _gapped_classes(columns: Mapping[str, np.ndarray], rows: np.ndarray, codes: np.ndarray, order: Sequence[str]):
    """``(class name, gapped arrays)`` for each class of ``order`` present among ``rows`` of
    ``columns`` (``codes``: each row's class as its position in ``order``, -1 for none), each
    class's rows in their order: one stable sort and one gapping of all rows, then a slice per
    class (each path lies within one class, so its gap ends its class's slice)."""
    if not len(rows):
        return
    sort = np.argsort(codes, kind="stable")
    sort = sort[codes[sort] >= 0]
    picked = rows[sort]
    ids = columns["example_id"][picked]
    arrays = _gapped({c: values[picked] for c, values in columns.items()}, ids)
    bounds = np.searchsorted(codes[sort], np.arange(len(order) + 1))
    ends = np.flatnonzero(np.r_[ids[1:] != ids[:-1], True]) + 1
    starts = bounds + np.searchsorted(ends, bounds, side="right")
    for i, name in enumerate(order):
        if bounds[i + 1] > bounds[i]:
            yield name, {c: values[starts[i]:starts[i + 1]] for c, values in arrays.items()}


def _time_sizes(t: np.ndarray, t_max: int, three_d: bool) -> np.ndarray:
    """Marker sizes growing with the time step (the gaps' -1 get the smallest)."""
    low, high = (1.5, 6.0) if three_d else (2.0, 9.0)
    return (low + (high - low) * np.clip(t, 0, None) / t_max).astype(np.float32)


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


def _class_names(columns: Mapping[str, np.ndarray], shown: np.ndarray, labels: pd.Series, axes) -> list[dict]:
    """Each class's name at the median of its examples' last steps (the sign's name near its end),
    on a white box, lifted apart where names would overlap (``shown``: the rows drawn in colour;
    3-D: lifted apart as seen from the default camera, roughly)."""
    ids = columns["example_id"][shown]
    if len(ids) == 0:
        return []
    ends = shown[np.r_[ids[1:] != ids[:-1], True]]
    names = labels.reindex(columns["example_id"][ends]).to_numpy()
    if len(set(names)) > MAX_NAME_LABELS:
        return []
    centres = class_medians(pd.DataFrame({a: columns[a][ends] for a in axes}), names, axes)
    notes = spread_labels(centres["x"], centres["y"], centres.index, _range(columns["x"][shown]),
                          _range(columns["y"][shown]))
    if "z" in axes:
        for note in notes:
            note["z"] = float(centres.at[note["text"], "z"])
    return notes


def class_medians(frame: pd.DataFrame, names: np.ndarray, axes) -> pd.DataFrame:
    """Median position per class name (sorted by name); numpy per class, no groupby."""
    order = sorted(set(names))
    values = {a: frame[a].to_numpy() for a in axes}
    return pd.DataFrame({a: [float(np.median(values[a][names == name])) for name in order]
                         for a in axes}, index=order)


def _range(values) -> tuple[float, float]:
    return float(np.nanmin(values)), float(np.nanmax(values))


def _selected_trace(columns: Mapping[str, np.ndarray], selected: int, axes, kind: str) -> list[dict]:
    rows = columns["example_id"] == int(selected)
    if not rows.any():
        return []
    return [{"type": kind, **{a: columns[a][rows].astype(np.float32) for a in axes}, "mode": "lines+markers",
             "name": f"example {selected}", "line": {"color": "black", "width": 4},
             "marker": {"color": "black", "size": 4 if kind == "scatter3d" else 6},
             "customdata": columns["example_id"][rows], "hoverinfo": "skip"}]


def _add_selected(figure: go.Figure, points: pd.DataFrame, selected: int, axes, trace) -> None:
    columns = {a: points[a].to_numpy() for a in [*axes, "example_id"]}
    for spec in _selected_trace(columns, selected, axes, "scatter3d" if trace is go.Scatter3d else "scattergl"):
        figure.add_trace(spec)


MAX_DOCUMENT_POINTS = 60_000   # hover text per point: ~20 bytes each
# Steps joined into lines up to this many. A character model's states jump across the plane at
# every step, so its lines are long: in Chromium without a GPU (SwiftShader) 48,000 joined steps
# of the Alice run froze the page for 18-37 s, 5,000 took 2.6 s and 48,000 points alone 0.9 s.
MAX_JOINED_POINTS = 5_000
DOCUMENT_LEGEND = len(HIGHLIGHT)


def document_paths_figure(points: pd.DataFrame, names: pd.Series, selected: int | None = None,
                          symlog: bool = False, title: str | None = None, lines: bool = True,
                          max_points: int = MAX_DOCUMENT_POINTS,
                          ranges: Mapping[str, tuple[float, float]] | None = None) -> go.Figure:
    """A language model's documents as paths through state space (``points``: ``example_id, t,
    x, y[, z]`` in (example_id, t) order; ``names``: document name by example_id), each document
    in its own colour (documents cycle through ten colours; up to ten get a legend entry each).
    Hover names the document and the step; customdata is the example id, so a click selects it.
    ``lines=False`` draws the points only (each document's last step, say), as does a scene of more
    than ``MAX_JOINED_POINTS`` steps, where only the selected document is joined into its path;
    ``ranges`` fixes the 2-D axes (``fixed_axes``)."""
    if points.empty:
        return message_figure("No documents match the filters.")
    three_d = "z" in points.columns
    axes = ["x", "y", "z"] if three_d else ["x", "y"]
    points = decimate(points, max_points)
    if symlog:
        points = points.assign(**{a: symlog_transform(points[a]).astype(np.float32) for a in axes})
    joined = lines and len(points) <= MAX_JOINED_POINTS
    if lines and not joined:
        note = f"{len(points):,} steps as points: select a document to draw its path"
        title = f"{title} · {note}" if title else note
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
        arrays = gapped(part, [*axes, "example_id", "t"]) if joined else {
            **{a: part[a].to_numpy(np.float32) for a in axes},
            "example_id": part["example_id"].to_numpy(), "t": part["t"].to_numpy()}
        doc_names = names.reindex(np.maximum(arrays["example_id"], 0)).astype(str).to_numpy()
        hover = np.char.add(np.char.add(doc_names.astype(str), " · step "), arrays["t"].astype(str))
        hover[arrays["example_id"] < 0] = ""
        figure.add_trace(trace(
            **{a: arrays[a] for a in axes}, mode="lines+markers" if joined else "markers",
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


METHOD_NAMES = {"ae": "Autoencoder", "pca": "PCA", "tsne": "t-SNE"}


def projection_title(projection_id: str) -> str:
    """A projection's id as people say it: "ae2" -> "Autoencoder 2-D", "pca3" -> "PCA 3-D",
    "ae2-seed1" -> "Autoencoder 2-D (seed 1)" (other suffixes are left out: the view names the
    layer and tensor); an id of another form is kept as it is."""
    base, _, rest = str(projection_id).partition("-")
    method = base.rstrip("0123456789")
    dims = base[len(method):]
    if method not in METHOD_NAMES or not dims:
        return str(projection_id)
    extra = f" (seed {rest[4:]})" if rest.startswith("seed") else ""
    return f"{METHOD_NAMES[method]} {dims}-D{extra}"


def axis_name(projection_id: str) -> str:
    """What a projection's axes are called: "PCA" ("PCA 1", "PCA 2"), "Autoencoder code",
    "t-SNE"."""
    method = str(projection_id).partition("-")[0].rstrip("0123456789")
    return {"ae": "Autoencoder code", "pca": "PCA", "tsne": "t-SNE"}.get(method, "")

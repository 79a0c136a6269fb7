"""Big runs' scenes: a 2-D view of more points than WebGL draws well becomes an image
(``figures.raster``), re-drawn on zoom, and points again once a zoomed window holds few enough.

The paths and last activations views call these when ``big_scene`` finds more than
``raster.MAX_VECTOR_POINTS`` (paths: steps) or ``MAX_VECTOR_MARKERS`` (last steps: examples,
each with three strings of hover text) points; below that they draw exactly as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard import data
from dashboard.figures import FADED, HAND_COLORS, HIGHLIGHT, PALETTE, class_colors, raster
from pipeline import runformat
from pipeline.analysis.transforms import symlog as symlog_transform

MAX_VECTOR_MARKERS = 50_000   # last steps: more examples than this and their markers become an image
IMAGE_NOTE = " · drawn as an image: zoom in for points"


def big_scene(points: pd.DataFrame, frame: pd.DataFrame, limit: int | None = None) -> np.ndarray | None:
    """The mask of ``points``' rows of the examples in ``frame`` when they are more than
    ``limit`` (None: ``raster.MAX_VECTOR_POINTS``) and 2-D (an image then), else None (points,
    as always)."""
    limit = raster.MAX_VECTOR_POINTS if limit is None else limit
    if "z" in points or len(points) <= limit:
        return None
    ids = points["example_id"].to_numpy()
    member = np.zeros(int(ids.max()) + 1, dtype=bool)
    wanted = frame["example_id"].to_numpy()
    member[wanted[wanted <= ids.max()]] = True
    rows = member[ids]
    return rows if int(rows.sum()) > limit else None


def picked(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` (a mask), or ``values`` themselves when every row is kept (a scene of the
    whole run, the first one drawn): no copy of millions of values. Read-only either way."""
    return values if rows.all() else values[rows]


def shown_xy(points: pd.DataFrame, rows: np.ndarray, symlog: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``rows`` of ``points``' x and y as drawn (float32, symlog'ed when asked)."""
    x, y = (picked(points[a].to_numpy(np.float32), rows) for a in ("x", "y"))
    if symlog:
        x, y = (symlog_transform(v).astype(np.float32) for v in (x, y))
    return x, y


def window_rows(points: pd.DataFrame, rows: np.ndarray, symlog: bool, window) -> np.ndarray:
    """``rows`` narrowed to the points drawn inside ``window`` (a mask over all of ``points``)."""
    x, y = shown_xy(points, rows, symlog)
    inside = np.zeros(len(points), dtype=bool)
    inside[np.flatnonzero(rows)[raster.in_window(x, y, window)]] = True
    return inside


def class_codes(run: runformat.Run, ids: np.ndarray, classes, chosen) -> tuple:
    """Per point (example ``ids``): ``(codes, colours, legend, faded mask)``. The chosen classes
    (and set) in the highlight colours the vector scenes give them, over the rest faded grey;
    with neither, every class in its run colour (``class_colors``), a legend entry each."""
    examples = data.examples(run)
    label = np.full(int(max(ids.max(initial=0), examples["example_id"].max())) + 1, -1, dtype=np.int16)
    label[examples["example_id"].to_numpy()] = examples["label_index"].to_numpy(np.int16)
    point_class = label[ids]
    names = list(run.classes)
    if not classes and chosen is None:
        palette = class_colors(names)
        colours = [palette[name] for name in names] + [FADED]
        drawn = np.zeros(len(label), dtype=bool)        # the examples with points, then their classes
        drawn[ids] = True
        present = np.unique(label[drawn & (label >= 0)])
        return (np.where(point_class >= 0, point_class, len(names)), colours,
                [(names[i], colours[i]) for i in present], None)
    order = [c for c in dict.fromkeys(classes or []) if c in names] or names
    palette = HIGHLIGHT if len(order) <= len(HIGHLIGHT) else PALETTE
    code_of = np.zeros(len(names) + 1, dtype=np.int16)            # 0: faded (and unknown labels)
    for k, name in enumerate(order):
        code_of[names.index(name)] = k + 1
    codes = code_of[point_class]
    if chosen is not None:
        codes = np.where(np.isin(ids, np.asarray(list(chosen), dtype=ids.dtype)), codes, 0)
    colours = [FADED] + [palette[k % len(palette)] for k in range(len(order))]
    shown = set(np.unique(codes).tolist())
    legend = ([("other classes", FADED)] if 0 in shown else []) + [
        (name, colours[k + 1]) for k, name in enumerate(order) if k + 1 in shown]
    return codes, colours, legend, codes == 0


def raster_scene(run: runformat.Run, points: pd.DataFrame, rows: np.ndarray, classes, selected, chosen,
                 symlog: bool, title: str, axis_title: str, window=None, color_by: str = "class") -> dict:
    """The ``rows`` of ``points`` as one image coloured by class (``class_codes``) or hand usage
    (``hand_codes``), on the full extent or ``window``; the selected example's points on top."""
    x, y = shown_xy(points, rows, symlog)
    ids = picked(points["example_id"].to_numpy(), rows)
    codes, colours, legend, under = (hand_codes(run, ids) if color_by == "hand"
                                     else class_codes(run, ids, classes, chosen))
    figure = raster.raster_figure(x, y, codes, colours, legend, window, title=title + IMAGE_NOTE,
                                  axis_title=axis_title, revision=repr((run.run_id, title, symlog, color_by)),
                                  under=under)
    if selected is not None:
        mine = points["example_id"].to_numpy() == int(selected)
        if mine.any():
            sx, sy = shown_xy(points, mine, symlog)
            figure["data"].append({"type": "scattergl", "x": sx, "y": sy,
                                   "mode": "lines+markers" if mine.sum() > 1 else "markers",
                                   "name": f"example {selected}", "line": {"color": "black", "width": 3},
                                   "marker": {"color": "black", "size": 7},
                                   "customdata": [int(selected)] * len(sx), "hoverinfo": "skip"})
    return figure


def zoomed_vector(figure: dict, window) -> dict:
    """A vector figure (a ``*_spec`` dict) of a zoomed window, on that window's axes."""
    layout = figure.setdefault("layout", {})
    for axis in ("x", "y"):
        layout[f"{axis}axis"] = {**layout.get(f"{axis}axis", {}), "range": list(window[axis]), "autorange": False}
    return figure


def hand_codes(run: runformat.Run, ids: np.ndarray) -> tuple:
    """``class_codes`` for colour by hand usage: the last activations' hand colours."""
    usage = data.examples(run).set_index("example_id")["hand_usage"].reindex(ids).astype(object)
    names = list(HAND_COLORS)
    codes = pd.Index(names).get_indexer(usage.to_numpy())
    codes = np.where(codes >= 0, codes, len(names))
    colours = [*HAND_COLORS.values(), "#999999"]
    present = set(np.unique(codes).tolist())
    return codes, colours, [(n, colours[i]) for i, n in enumerate([*names, "unknown"]) if i in present], None


def zoomed_or_image(run: runformat.Run, points: pd.DataFrame, rows: np.ndarray, window, symlog: bool,
                    limit: int, vector, image) -> dict:
    """A zoom's answer: ``vector(points in the window)`` on the window's axes once they are at
    most ``limit``, else ``image(window)`` (``window`` None: the whole scene as an image)."""
    if window is not None:
        inside = window_rows(points, rows, symlog, window)
        if int(inside.sum()) <= limit:
            return zoomed_vector(vector(points[inside]), window)
    return image(window)

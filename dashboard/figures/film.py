"""The prediction film: examples' 2-D paths growing step by step (Figure 14 of the study).

Each frame redraws two WebGL traces: every chosen example's path so far (one trace, paths split by
NaN gaps, markers coloured by class) and its current step (a bigger head marker); with an example
selected elsewhere, a third: its path so far, thick and black, and its head ringed, so it can be
followed among hundreds of others. Paths are drawn
through the frames' steps only (every k-th step when there are more steps than frames). A frame
carries the whole path up to its step, so the figure grows with examples × frames²; ``film_plan``
caps both to keep the figure a few megabytes in the browser.

(One trace per frame segment, toggled visible, would grow linearly instead; in headless chromium
it drew each frame several times slower than two traces, so the size is bounded by capping.)

The frames repeat the paths, so the dashboard does not send them: ``film_source`` is the figure
without its frames plus the (examples x frames) grids they are cut from, and the browser expands
it (``lens.film`` in assets/lens-film.js, the same steps as ``expand``): at Auslan size 0.40 MB
instead of 2.31 (60 frames of 300 examples).
``film_spec`` is the expanded figure, for notebooks, exports and tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from dashboard.figures import PALETTE, spec_layout
from dashboard.figures.alignment import ALIGNMENTS, step_axis
from dashboard.figures.paths import axis_name

MAX_FRAMES = 60
MIN_FRAMES = 30
MAX_EXAMPLES = 300
PATH_POINT_BUDGET = 150_000     # ~13 bytes of JSON per path point (x, y float32, class int8, base64)


@dataclass
class FilmPlan:
    examples: np.ndarray        # indices into the candidate examples, in drawing order
    positions: np.ndarray       # the aligned step (column) of each frame


def frame_positions(n_steps: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Evenly spaced columns, always ending at the last one (at most ``max_frames``)."""
    if n_steps <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n_steps - 1, min(max_frames, n_steps)).round().astype(np.int64))


def evenly_spaced(order: np.ndarray, count: int) -> np.ndarray:
    if count >= len(order):
        return order
    return order[np.unique(np.linspace(0, len(order) - 1, max(count, 1)).round().astype(np.int64))]


def path_points(present: np.ndarray, positions: np.ndarray) -> int:
    """Points (NaN separators included) all frames' path traces hold for ``present`` (E, T) steps."""
    per_frame = np.cumsum(present[:, positions].sum(axis=0))
    return int(per_frame.sum() + len(positions) * present.shape[0])


def film_plan(present: np.ndarray, class_index: np.ndarray, max_examples: int = MAX_EXAMPLES,
              max_frames: int = MAX_FRAMES, point_budget: int = PATH_POINT_BUDGET,
              min_frames: int = MIN_FRAMES) -> FilmPlan:
    """Which examples and frames to draw: ≤ ``max_examples`` examples and ≤ ``max_frames`` frames
    holding no more path points than ``point_budget``. Frames are dropped first (down to
    ``min_frames``: coarser steps, as many examples), then examples.

    ``present`` is an (examples, steps) bool grid of the aligned steps each example has. Examples
    are taken evenly from their class order so every class keeps its share.
    """
    n = present.shape[0]
    order = np.lexsort((np.arange(n), np.asarray(class_index)))
    wanted = evenly_spaced(order, max_examples)
    frame_counts = sorted({max_frames, *range(min_frames, max_frames, 10)}, reverse=True)
    for count in frame_counts:
        positions = frame_positions(present.shape[1], count)
        if path_points(present[wanted], positions) <= point_budget:
            return FilmPlan(examples=np.sort(wanted), positions=positions)
    chosen = wanted
    for _ in range(8):
        points = path_points(present[chosen], positions)
        if points <= point_budget or len(chosen) <= 1:
            break
        chosen = evenly_spaced(order, int(len(chosen) * point_budget / points * 0.97))
    return FilmPlan(examples=np.sort(chosen), positions=positions)


def _discrete_colorscale(colours: list[str]) -> list:
    """A stepped colour scale: class index ``i`` (with cmin=-0.5, cmax=n-0.5) gets colours[i]."""
    n = max(len(colours), 1)
    scale = []
    for i, colour in enumerate(colours or ["#444444"]):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return scale


def _path_arrays(x_grid: np.ndarray, y_grid: np.ndarray, colour: np.ndarray, columns: int):
    """Flattened paths through the first ``columns`` columns with one NaN after each run of
    points (between examples), none before."""
    gap = np.full((len(x_grid), 1), np.nan, np.float32)
    xs = np.concatenate([x_grid[:, :columns], gap], axis=1)
    ys = np.concatenate([y_grid[:, :columns], gap], axis=1)
    cs = np.broadcast_to(colour[:, None], xs.shape)
    xs, ys, cs = xs.ravel(), ys.ravel(), cs.ravel()
    gap = np.isnan(xs)
    keep = ~gap | np.concatenate([[False], ~gap[:-1]])   # one NaN after a run of points, none before
    return xs[keep], ys[keep], cs[keep]


def _head_customdata(ids: list[int], probability: np.ndarray) -> list[list]:
    """``[example_id, p]`` per head as plain lists: a 2-D numpy array would travel as a typed
    array, and a click would then report each row as ``{"0": id, "1": p}`` instead of a list."""
    rounded = np.round(probability.astype(np.float64), 3).tolist()       # one rounding, not one a head
    return [[i, None if p != p else p] for i, p in zip(ids, rounded)]


def expand(source: dict) -> dict:
    """The whole animated figure from ``film_source``'s (numpy arrays, not yet sent): one frame a
    column of its grids, the traces opening on the last. A figure without a film (a message) is
    returned as it is. assets/lens-film.js does the same in the browser."""
    film = source.get("film")
    if film is None:
        return source
    x_grid, y_grid, colour, ids = film["x"], film["y"], film["colour"], film["ids"]
    probability = film["p"] if film["p"] is not None else np.full(x_grid.shape, np.nan, np.float32)
    mark = film["mark"]

    def frame_data(k):
        """The traces at frame ``k``; frames carry only what changes (styles stay on the traces)."""
        px, py, pc = _path_arrays(x_grid, y_grid, colour, k + 1)
        traces = [{"type": "scattergl", "x": px, "y": py, "marker": {"color": pc}},
                  {"type": "scattergl", "x": x_grid[:, k].copy(), "y": y_grid[:, k].copy(),
                   "customdata": _head_customdata(ids, probability[:, k])}]
        if mark is not None:        # its path so far, the head last (NaN steps before it began)
            sx, sy = x_grid[mark, :k + 1], y_grid[mark, :k + 1]
            traces.append({"type": "scattergl", "x": sx, "y": sy,
                           "marker": {"size": np.where(np.arange(k + 1) == k, 22, 6)}})
        return traces

    drawn = [0, 1, 2] if mark is not None else [0, 1]
    frames = [{"data": frame_data(k), "traces": drawn, "name": name} for k, name in enumerate(film["names"])]
    last = frames[-1]["data"]
    data = [dict(trace) for trace in source["data"]]
    data[0].update(x=last[0]["x"], y=last[0]["y"], marker={**data[0]["marker"], "color": last[0]["marker"]["color"]})
    data[1].update(x=last[1]["x"], y=last[1]["y"], customdata=last[1]["customdata"])
    if mark is not None:
        data[2].update(x=last[2]["x"], y=last[2]["y"], marker={**data[2]["marker"], "size": last[2]["marker"]["size"]})
    return {"data": data, "layout": source["layout"], "frames": frames}


def film_figure(x_grid: np.ndarray, y_grid: np.ndarray, class_index: np.ndarray, classes: list[str],
                example_ids: np.ndarray, hover_text: list[str], align: str, positions: np.ndarray,
                probability: np.ndarray | None = None, projection: str = "ae2",
                note: str = "", colours: list[str] | None = None, legend_title: str = "class",
                selected: int | None = None, pictures: str = "") -> go.Figure:
    """An animated figure: one frame per column in ``positions``; starts on the last frame.

    Grids are (examples, steps) float32, NaN where an example has no step. ``class_index`` points
    into ``classes`` and ``colours`` (default: the class palette in that order). Clicking a head
    marker gives its example id as ``customdata[0]``. ``selected``: an example id among
    ``example_ids`` to mark in every frame (trace 2, named ``selected: #id``). ``pictures``: the
    layer and tensor the projection pictures, for the title.
    """
    return go.Figure(film_spec(x_grid, y_grid, class_index, classes, example_ids, hover_text, align, positions,
                               probability, projection, note, colours, legend_title, selected, pictures))


def film_spec(*args, **kwargs) -> dict:
    """``film_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure): the
    view's 60 frames are not validated trace by trace."""
    return expand(film_source(*args, **kwargs))


def film_source(x_grid: np.ndarray, y_grid: np.ndarray, class_index: np.ndarray, classes: list[str],
                example_ids: np.ndarray, hover_text: list[str], align: str, positions: np.ndarray,
                probability: np.ndarray | None = None, projection: str = "ae2",
                note: str = "", colours: list[str] | None = None, legend_title: str = "class",
                selected: int | None = None, pictures: str = "") -> dict:
    """``film_spec`` before ``expand``: the figure's traces (styles, hover text) and layout, and
    under ``"film"`` what its frames are cut from: the grids' ``positions`` columns (``x``, ``y``,
    ``p``: examples x frames float32), each example's ``colour`` (class index), ``ids``, the
    frames' ``names`` and ``mark`` (the selected example's row, or None)."""
    if colours is None:
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(classes))]
    if not len(positions):
        raise ValueError("a film needs at least one frame")
    axis = step_axis(np.shape(x_grid)[1], align)
    x_grid = np.ascontiguousarray(np.asarray(x_grid, dtype=np.float32)[:, positions])
    y_grid = np.ascontiguousarray(np.asarray(y_grid, dtype=np.float32)[:, positions])
    if probability is not None:
        probability = np.ascontiguousarray(np.asarray(probability, dtype=np.float32)[:, positions])
    class_index = np.asarray(class_index, dtype=np.int8 if len(classes) <= 127 else np.int16)
    ids = [int(i) for i in example_ids]
    mark = ids.index(int(selected)) if selected is not None and int(selected) in ids else None
    names = [str(int(axis[column])) for column in positions]

    path = {"type": "scattergl", "mode": "lines+markers", "name": "paths",
            "hoverinfo": "skip", "showlegend": False, "line": {"color": "rgba(120,120,120,0.25)", "width": 1},
            "marker": {"size": 4, "coloraxis": "coloraxis"}}
    prob_line = "<br>p(true class) at this step: %{customdata[1]:.2f}" if probability is not None else ""
    head = {"type": "scattergl", "mode": "markers", "text": list(hover_text), "showlegend": False,
            "name": "current step",
            "marker": {"size": 10, "color": class_index, "coloraxis": "coloraxis",
                       "line": {"width": 1, "color": "black"}},
            "hovertemplate": "%{text}" + prob_line + "<extra>click to inspect</extra>"}
    data = [path, head]
    if mark is not None:
        data.append({
            "type": "scattergl", "mode": "lines+markers",
            "name": f"selected: #{ids[mark]}", "text": [hover_text[mark]] * len(positions),
            "customdata": [ids[mark]] * len(positions),
            "hovertemplate": "%{text}<extra>selected</extra>", "line": {"color": "black", "width": 4},
            # as the paths and last activations mark it: a black path, its end ringed
            "marker": {"symbol": "circle-open", "color": "black", "line": {"width": 3}}})
    if len(classes) <= 24:      # a legend only where it can be read; hover names the class otherwise
        for i, name in enumerate(classes):
            data.append({"type": "scattergl", "x": [None], "y": [None], "mode": "markers", "name": name,
                         "marker": {"color": colours[i], "size": 9}})

    finite_x, finite_y = x_grid[np.isfinite(x_grid)], y_grid[np.isfinite(y_grid)]

    def extent(values):
        if not values.size:
            return [-1, 1]
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * (hi - lo or 1.0)
        return [lo - pad, hi + pad]

    play = {"frame": {"duration": 150, "redraw": True}, "fromcurrent": True, "transition": {"duration": 0},
            "mode": "immediate"}
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    slider_steps = [{"label": name, "method": "animate",
                     "args": [[name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
                                       "transition": {"duration": 0}}]} for name in names]
    named = axis_name(projection) or projection
    layout = spec_layout(
        title=f"Prediction film: paths in projection {projection!r}" + (f" of {pictures}" if pictures else "")
              + " growing step by step"
              + (f" — {note}" if note else ""),
        # named as the paths view names them ("Autoencoder code 1"), the id for an unknown method
        xaxis={"title": {"text": f"{named} 1"}, "range": extent(finite_x), "autorange": False},
        yaxis={"title": {"text": f"{named} 2"}, "range": extent(finite_y), "autorange": False},
        height=680, margin={"l": 60, "r": 20, "t": 60, "b": 40}, legend={"title": {"text": legend_title}},
        # one colour scale for both traces: class index i (cmin -0.5, cmax n - 0.5) gets colours[i]
        coloraxis={"colorscale": _discrete_colorscale(colours), "cmin": -0.5,
                   "cmax": len(classes) - 0.5, "showscale": False},
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.08, "xanchor": "left",
                      "yanchor": "top", "pad": {"t": 30, "r": 10}, "showactive": False,
                      "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, play]},
                                  {"label": "❚❚ Pause", "method": "animate", "args": [[None], pause]}]}],
        sliders=[{"active": len(names) - 1, "steps": slider_steps, "x": 0.16, "len": 0.84, "y": -0.08,
                  "yanchor": "top", "pad": {"t": 20},
                  "currentvalue": {"prefix": f"{ALIGNMENTS[align]}: ", "visible": True}}])
    film = {"x": x_grid, "y": y_grid, "p": probability, "colour": class_index, "ids": ids, "names": names,
            "mark": mark}
    return {"data": data, "layout": layout, "film": film}

"""Gate saturation: how often the input, forget and output gates sit at an extreme.

A gate near 0 blocks and near 1 passes; a unit whose gate stays saturated no longer responds to
its input. These functions reduce per-step gate tables to small arrays (by step, by cell, by
value bin) with grouped numpy sums, then draw them; they never see Dash or a run directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse
import plotly.graph_objects as go

from dashboard.figures import colorscale, spec_layout
from dashboard.figures.alignment import ALIGNMENTS, step_axis
from dashboard.figures.series import WHOLE, Window, drawn_note, in_window, shown_points, zoomed_axis

GATES = ("input_gate", "forget_gate", "output_gate")
GATE_COLOURS = {"input_gate": "#1f77b4", "forget_gate": "#ff7f0e", "output_gate": "#2ca02c"}
CELL_STATISTICS = {"saturated": "fraction of examples saturated", "mean": "mean gate value"}
DEFAULT_LOW, DEFAULT_HIGH = 0.1, 0.9
MAX_HEATMAP_STEPS = 1500    # the cell heatmap's columns at most (wider grids are averaged in bins)


def gate_label(gate: str) -> str:
    return gate.replace("_gate", "")


def _check_thresholds(low: float, high: float) -> None:
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"saturation thresholds must satisfy 0 <= low < high <= 1, got {low}, {high}")


BLOCK_VALUES = 2 ** 24      # values converted to float32 at a time (64 MB)
SUM_BLOCK_VALUES = 2 ** 20  # values of a block summed by step (cache-sized: faster than bigger)


def row_blocks(values: np.ndarray, rows: np.ndarray | None = None,
               block_values: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """``values[rows]`` (every row when None) as float32 blocks of about ``block_values`` values,
    (``BLOCK_VALUES`` when None), each with the slice of ``rows`` it covers, so a memory-mapped
    table of a big run is never copied whole (``dashboard.step_maps``)."""
    values = values if isinstance(values, np.ndarray) else np.asarray(values)
    n = len(values) if rows is None else len(rows)
    step = max(1, (block_values or BLOCK_VALUES) // max(1, values.shape[1]))
    for start in range(0, n, step):
        part = slice(start, min(n, start + step))
        yield part, np.asarray(values[part] if rows is None else values[rows[part]], dtype=np.float32)


def saturation_by_step(values: np.ndarray, position: np.ndarray, n_steps: int,
                       low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH,
                       rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per aligned step: the fraction of (example, unit) pairs below ``low`` and above ``high``.

    ``values[rows]`` (``values`` when ``rows`` is None) is ``(n, units)``; ``position`` gives each
    of its rows' column. Steps no example reaches are NaN. Returns ``{"low", "high", "examples"}``,
    each of length ``n_steps``.
    """
    _check_thresholds(low, high)
    units = np.shape(values)[1]
    examples = np.bincount(position, minlength=n_steps).astype(np.float64)
    below, above = np.zeros(n_steps), np.zeros(n_steps)
    for part, block in row_blocks(values, rows):
        below += np.bincount(position[part], weights=(block < low).sum(axis=1), minlength=n_steps)
        above += np.bincount(position[part], weights=(block > high).sum(axis=1), minlength=n_steps)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = examples * units
        return {"low": below / pairs, "high": above / pairs, "examples": examples}


def cell_step_sums(values: np.ndarray, position: np.ndarray, n_steps: int, statistic: str = "saturated",
                   low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH,
                   rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(sums, counts)`` of ``values[rows]`` (``values`` when ``rows`` is None), whose rows sit at
    ``position``: per step and cell the float64 sum of the values (``"mean"``) or the number outside
    ``low``..``high`` (``"saturated"``, float32: counts are exact below 2**24, at twice float64's
    speed and half its size in the shared cache), ``(n_steps, units)``, and the rows at each step.

    Each block's rows are added per step in row order as a sparse (steps x rows) one-hot matrix
    times the block: the sums the extract stage precomputes (``pipeline.core.aggregates``), in
    10k-row blocks (~0.4 s for 490k x 100 values of a float16 memory map, where one sort and
    ``np.add.reduceat`` took 1.0-1.6 s).
    """
    if statistic not in CELL_STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; expected one of {', '.join(CELL_STATISTICS)}")
    _check_thresholds(low, high)
    kind = np.float32 if statistic == "saturated" else np.float64
    sums = np.zeros((n_steps, np.shape(values)[1]), kind)
    low32, high32 = np.float32(low), np.float32(high)
    for part, block in row_blocks(values, rows, SUM_BLOCK_VALUES):
        steps, local = np.unique(position[part], return_inverse=True)     # only the steps it reaches
        one_hot = scipy.sparse.csr_matrix((np.ones(len(block), kind), (local, np.arange(len(block)))),
                                          shape=(len(steps), len(block)))
        added = ((block < low32) | (block > high32)) if statistic == "saturated" else block
        sums[steps] += one_hot @ added.astype(kind)
    return sums, np.bincount(position, minlength=n_steps)


def cell_grid_of(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The ``(units, n_steps)`` float32 grid of ``cell_step_sums``' sums over counts (NaN where a
    step has no rows)."""
    grid = np.full((sums.shape[1], len(counts)), np.nan, dtype=np.float32)
    present = np.flatnonzero(counts)
    grid[:, present] = (sums[present] / np.asarray(counts)[present, None]).T
    return grid


def cell_step_matrix(values: np.ndarray, position: np.ndarray, n_steps: int, statistic: str = "saturated",
                     low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH,
                     rows: np.ndarray | None = None) -> np.ndarray:
    """A ``(units, n_steps)`` float32 grid: per cell and step, the fraction of examples in which the
    cell's gate is saturated (``statistic="saturated"``) or its mean value (``"mean"``), over
    ``values[rows]`` (``values`` when ``rows`` is None), whose rows sit at ``position``."""
    return cell_grid_of(*cell_step_sums(values, position, n_steps, statistic, low, high, rows))


def gate_histograms(values_by_gate: dict[str, np.ndarray], bins: int = 50,
                    rows: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bin edges over [0, 1] and, per gate, the fraction of its values (of ``rows`` when given)
    in each bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    fractions = {}
    for gate, values in values_by_gate.items():
        values = values if isinstance(values, np.ndarray) else np.asarray(values)
        counts = np.zeros(bins, dtype=np.int64)
        for _, block in row_blocks(values if values.ndim == 2 else values.reshape(-1, 1), rows):
            counts += np.histogram(block.ravel(), bins=edges)[0]
        total = counts.sum()
        fractions[gate] = counts / total if total else counts.astype(np.float64)
    return edges, fractions


def sort_cells(grid: np.ndarray, order: str = "saturation") -> np.ndarray:
    """Cell indices for the heatmap rows: most saturated (highest mean) first, or by index."""
    if order == "index":
        return np.arange(grid.shape[0])
    if order != "saturation":
        raise ValueError(f"unknown cell order {order!r}; expected 'saturation' or 'index'")
    overall = np.nan_to_num(np.nanmean(grid, axis=1) if grid.shape[1] else np.zeros(grid.shape[0]),
                            nan=-np.inf)
    return np.argsort(-overall, kind="stable")


def nice_ticks(top: float, ticks: int = 5) -> tuple[float, float]:
    """A tick step of 1, 2 or 5 times a power of ten giving about ``ticks`` ticks from 0 to
    ``top``, and the axis top (``top`` rounded up to a step): ticks a reader can add up."""
    top = float(top) if np.isfinite(top) and top > 0 else 1.0
    raw = top / ticks
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step, float(np.ceil(top / step - 1e-9) * step)


def percent_axis(top: float) -> dict:
    """A 0..``top`` fraction axis in percent with as many decimals as its step needs, so no two
    ticks read the same (".0%" on a 0.5 % step shows 0%, 1%, 1%, 2%...)."""
    step, end = nice_ticks(top)
    decimals = max(0, int(np.ceil(-np.log10(step * 100) - 1e-9)))
    return {"range": [0, end * 1.02], "tick0": 0, "dtick": float(step), "tickmode": "linear",
            "tickformat": f".{decimals}%"}


def _x_title(align: str) -> str:
    return ALIGNMENTS[align]


def saturation_figure(stats_by_gate: dict[str, dict[str, np.ndarray]], align: str, low: float, high: float,
                      n_examples: int, layer: int | None = None, window: Window = WHOLE) -> go.Figure:
    """One line per gate: the fraction of (example, unit) pairs saturated at each aligned step."""
    return go.Figure(saturation_spec(stats_by_gate, align, low, high, n_examples, layer, window))


def saturation_spec(stats_by_gate: dict[str, dict[str, np.ndarray]], align: str, low: float, high: float,
                    n_examples: int, layer: int | None = None, window: Window = WHOLE) -> dict:
    """``saturation_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure).
    Past ``series.MAX_SERIES_POINTS`` aligned steps each line is decimated within the zoom
    ``window`` (``figures.series``)."""
    data = []
    drawn = total_steps = 0
    for gate, stats in stats_by_gate.items():
        x = step_axis(len(stats["low"]), align)
        total = stats["low"] + stats["high"]
        shown = shown_points(x, total, window)
        drawn, total_steps = max(drawn, len(shown)), len(x)
        data.append({
            "type": "scattergl", "x": x[shown], "y": total[shown].astype(np.float32), "mode": "lines",
            "name": gate_label(gate), "line": {"color": GATE_COLOURS.get(gate), "width": 2},
            "customdata": np.column_stack([stats["low"], stats["high"], stats["examples"]])[shown].astype(np.float32),
            "hovertemplate": (f"{gate_label(gate)} gate, step %{{x}}<br>saturated %{{y:.1%}}"
                              f" (&lt;{low:g}: %{{customdata[0]:.1%}}, &gt;{high:g}: %{{customdata[1]:.1%}})"
                              "<br>%{customdata[2]:.0f} examples<extra></extra>")})
    counts: dict = {"rangemode": "tozero"}
    if stats_by_gate:
        stats = next(iter(stats_by_gate.values()))
        step, end = nice_ticks(np.nanmax(stats["examples"], initial=0))
        # its own round ticks (0, 500, 1000...), not the percent axis' grid divided into fifths
        counts = {"range": [0, end], "tick0": 0, "dtick": float(step), "tickmode": "linear", "tickformat": ",d"}
        x = step_axis(len(stats["examples"]), align)
        shown = shown_points(x, stats["examples"], window)
        data.append({
            "type": "scattergl", "x": x[shown], "y": stats["examples"][shown].astype(np.float32), "yaxis": "y2",
            "mode": "lines", "name": "examples at step",
            "line": {"color": "#aaa", "width": 1, "dash": "dot"}, "hovertemplate": "%{y:.0f} examples<extra></extra>"})
    where = f"layer {layer}, " if layer is not None else ""
    note = drawn_note(drawn, in_window(step_axis(total_steps, align), window))
    layout = spec_layout(
        title=f"Saturated gates over time ({where}{n_examples} examples; "
              f"value &lt; {low:g} or &gt; {high:g})" + (f"<br><sup>{note}</sup>" if note else ""),
        xaxis={"title": {"text": _x_title(align)}, **zoomed_axis(window)},
        yaxis={"title": {"text": "fraction of units × examples saturated"}, "range": [0, 1], "tickformat": ".0%"},
        # Few long examples reach the far steps: the dotted count says how much a value rests on.
        yaxis2={"title": {"text": "examples at step"}, "overlaying": "y", "side": "right", "showgrid": False,
                **counts},
        legend={"title": {"text": "gate"}, "x": 1.08}, margin={"l": 60, "r": 20, "t": 60 if note else 50, "b": 50},
        hovermode="x unified")
    return {"data": data, "layout": layout}


def binned_steps(grid: np.ndarray, max_steps: int = MAX_HEATMAP_STEPS) -> tuple[np.ndarray, np.ndarray, int]:
    """``(grid, first column of each bin, bin width)``: past ``max_steps`` columns, adjacent steps
    are averaged in bins of equal width (a heatmap cannot show more columns than its pixels)."""
    n_steps = grid.shape[1]
    width = max(1, -(-n_steps // max_steps))
    starts = np.arange(0, n_steps, width)
    if width == 1:
        return grid, starts, 1
    with np.errstate(invalid="ignore"):        # an all-NaN bin (no example there) stays NaN
        sums = np.add.reduceat(np.nan_to_num(grid, nan=0.0), starts, axis=1)
        counts = np.add.reduceat(np.isfinite(grid).astype(np.float32), starts, axis=1)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), starts, width


def cell_heatmap_figure(grid: np.ndarray, align: str, gate: str, statistic: str = "saturated",
                        cell_order: str = "saturation", low: float = DEFAULT_LOW,
                        high: float = DEFAULT_HIGH) -> go.Figure:
    """Cells (rows) × aligned steps: cells stuck at an extreme show as a solid band."""
    return go.Figure(cell_heatmap_spec(grid, align, gate, statistic, cell_order, low, high))


def cell_heatmap_spec(grid: np.ndarray, align: str, gate: str, statistic: str = "saturated",
                      cell_order: str = "saturation", low: float = DEFAULT_LOW,
                      high: float = DEFAULT_HIGH) -> dict:
    """``cell_heatmap_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure)."""
    order = sort_cells(grid, cell_order)
    axis = step_axis(grid.shape[1], align)
    grid, starts, width = binned_steps(grid)
    x = axis[starts]
    labels = [f"u{i}" for i in order]
    if statistic == "saturated":
        colour = {"colorscale": _VIRIDIS, "zmin": 0, "zmax": 1,
                  "colorbar": {"title": {"text": "saturated", "side": "right"}, "tickformat": ".0%"}}
        what = f"fraction of examples with {gate_label(gate)} gate &lt; {low:g} or &gt; {high:g}"
        value = "%{z:.1%}"
    else:
        colour = {"colorscale": _RDBU, "zmin": 0, "zmax": 1, "zmid": 0.5,
                  "colorbar": {"title": {"text": "mean", "side": "right"}}}
        what = f"mean {gate_label(gate)} gate value"
        value = "%{z:.3f}"
    heatmap = {"type": "heatmap", "z": grid[order].astype(np.float32), "x": x, "y": labels, **colour,
               "hovertemplate": f"cell %{{y}}, step %{{x}}<br>{value}<extra></extra>"}
    sorted_by = "most saturated first" if cell_order == "saturation" else "by index"
    binned = f"; steps averaged in bins of {width}, each column from its first step" if width > 1 else ""
    layout = spec_layout(
        title=f"Per cell: {what} (cells {sorted_by}{binned})", xaxis={"title": {"text": _x_title(align)}},
        yaxis={"title": {"text": "cell"}, "autorange": "reversed", "type": "category", "tickfont": {"size": 9}},
        height=max(420, min(900, 12 * len(labels) + 120)), margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return {"data": [heatmap], "layout": layout}


def gate_histogram_figure(edges: np.ndarray, fractions: dict[str, np.ndarray], low: float = DEFAULT_LOW,
                          high: float = DEFAULT_HIGH) -> go.Figure:
    """Overlaid histograms of gate values with the saturation thresholds marked."""
    return go.Figure(gate_histogram_spec(edges, fractions, low, high))


def gate_histogram_spec(edges: np.ndarray, fractions: dict[str, np.ndarray], low: float = DEFAULT_LOW,
                        high: float = DEFAULT_HIGH) -> dict:
    """``gate_histogram_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure)."""
    centres = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    data = [{"type": "bar", "x": centres, "y": fraction.astype(np.float32), "width": float(edges[1] - edges[0]),
             "name": gate_label(gate), "marker": {"color": GATE_COLOURS.get(gate)}, "opacity": 0.55,
             "hovertemplate": f"{gate_label(gate)} gate<br>value %{{x:.2f}}: %{{y:.2%}} of values<extra></extra>"}
            for gate, fraction in fractions.items()]
    thresholds = [{"type": "line", "x0": threshold, "x1": threshold, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain",
                   "line": {"dash": "dash", "color": "#555", "width": 1}} for threshold in (low, high)]
    top = max((float(np.max(f)) for f in fractions.values() if len(f)), default=0.0)
    layout = spec_layout(
        title="Distribution of gate values (dashed: saturation thresholds)", barmode="overlay",
        xaxis={"title": {"text": "gate value"}, "range": [0, 1]},
        yaxis={"title": {"text": "fraction of values"}, **percent_axis(top)}, legend={"title": {"text": "gate"},
               # under the plot: at its right the legend covered the tallest bars (the saturated values near 1)
               "orientation": "h", "y": -0.22},
        margin={"l": 60, "r": 20, "t": 50, "b": 50}, shapes=thresholds)
    return {"data": data, "layout": layout}


_VIRIDIS, _RDBU = colorscale("Viridis"), colorscale("RdBu_r")

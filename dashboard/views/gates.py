"""Gate saturation view: how often the sigmoid gates sit near 0 or 1, over time and per cell."""

from __future__ import annotations

import dash
import numpy as np
import scipy.sparse
from dash import Input, Output, State, dcc, html

from dashboard import data, filters, state, views
from dashboard.figures import message_figure, sent, series
from dashboard.figures import gates as figures
from dashboard.figures.alignment import aligned_positions, example_rows
from dashboard.views.controls import (GRAPH_CONFIG, LAST_LAYER, alignment_switch, chosen_layer, field,
                                      layer_options, layer_picker, register_layer_tick)
from pipeline import runformat

VIEW_ID = "gates"
TITLE = "Gate saturation"

LAYER, ALIGN, THRESHOLDS = "gates-layer", "gates-align", "gates-thresholds"
GATE, STATISTIC, ORDER = "gates-gate", "gates-statistic", "gates-order"
OVER_TIME, CELLS, HISTOGRAM = "gates-over-time", "gates-cells", "gates-histogram"

#: The layer picker's options are the run's layers; the thresholds are two numbers in [0, 1].
VALUE_CHECKS = {(LAYER, "value"): filters.layer, (THRESHOLDS, "value"): filters.numbers(2, 0.0, 1.0)}

URL_PARAMS = [
    state.UrlParam("gates_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("gates_align", ALIGN, "value", "end"),
    state.UrlParam("gates_gate", GATE, "value", "forget_gate"),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs that recorded the sigmoid gates of a layer (an import of h and c only
    has none)."""
    return manifest.is_classification and bool(gate_layers(manifest))


def gate_layers(manifest: runformat.Manifest) -> list[int]:
    return [layer.index for layer in manifest.layers
            if set(runformat.SIGMOID_GATES) <= set(layer.tensors)]


def _gate_layer(run: runformat.Run, value) -> int:
    """The picked layer if it has gates, else the last layer that has them."""
    layer = chosen_layer(run, value)
    layers = gate_layers(run.manifest)
    if not layers:
        raise runformat.RunError(f"run {run.run_id!r} recorded no gate activations "
                                 f"(its tensors: {', '.join(run.layers[-1].tensors) if run.layers else 'none'})")
    return layer if layer in layers else layers[-1]


def layout():
    return html.Div(children=[
        html.Div(className="view-options", children=[
            layer_picker(LAYER),
            alignment_switch(ALIGN),
            field("Saturated below / above", html.Div(style={"width": "16em"}, children=dcc.RangeSlider(
                id=THRESHOLDS, min=0, max=1, step=1 / runformat.SATURATION_GRID, value=[figures.DEFAULT_LOW, figures.DEFAULT_HIGH],
                marks={v: f"{v:g}" for v in (0, 0.1, 0.5, 0.9, 1)}, allowCross=False,
                tooltip={"placement": "bottom"}))),
        ]),
        dcc.Loading(dcc.Graph(id=OVER_TIME, config=GRAPH_CONFIG, className="graph-panel"), delay_show=300),
        html.Div(className="view-options", children=[
            field("Heatmap gate", dcc.RadioItems(id=GATE, value="forget_gate", inline=True, options=[
                {"label": figures.gate_label(g), "value": g} for g in figures.GATES])),
            field("Cell value", dcc.RadioItems(id=STATISTIC, value="saturated", inline=True, options=[
                {"label": label, "value": key} for key, label in figures.CELL_STATISTICS.items()])),
            field("Cells", dcc.RadioItems(id=ORDER, value="saturation", inline=True, options=[
                {"label": "most saturated first", "value": "saturation"},
                {"label": "by index", "value": "index"}])),
        ]),
        html.Div(style={"display": "grid", "gridTemplateColumns": "minmax(0, 3fr) minmax(0, 2fr)",
                        "gap": "1em"},
                 children=[dcc.Loading(dcc.Graph(id=CELLS, config=GRAPH_CONFIG), delay_show=300),
                           dcc.Loading(dcc.Graph(id=HISTOGRAM, config=GRAPH_CONFIG), delay_show=300)]),
    ])


def _filters(classes, splits, hands, correctness, chosen=None) -> tuple:
    """The filter bar's values and a box or lasso's chosen set (sorted ids; None: no set) as one
    hashable key."""
    return (tuple(classes or ()), None if splits is None else tuple(splits),
            None if hands is None else tuple(hands), correctness, None if chosen is None else tuple(sorted(chosen)))


def _examples(run: runformat.Run, key: tuple):
    """The examples that pass the filters of a ``_filters`` key and are in its chosen set."""
    return data.keep_chosen(data.filtered_examples(run, *key[:4]), key[4])


@data.run_cached(maxsize=16)
def gate_summary(run: runformat.Run, layer: int, filters: tuple, align: str, low: float, high: float) -> dict:
    """Saturation by step and value histograms of the three sigmoid gates for the filtered examples:
    from the run's precomputed aggregates when it has them and the thresholds are on their grid,
    else from the full gate tables (older runs, or a chosen set that splits a class; the same
    numbers either way)."""
    frame = _examples(run, filters)
    summary = summary_from_aggregates(run, layer, frame, align, low, high)
    return summary if summary is not None else summary_from_tables(run, layer, frame, align, low, high)


def summary_from_tables(run: runformat.Run, layer: int, frame, align: str, low: float, high: float) -> dict:
    """``gate_summary`` computed from the full gate tables (three whole-table reads)."""
    rows, _, position, n_steps = aligned_positions(frame["row_start"], frame["length"], align)
    tables = {gate: data.step_matrix(run, layer, gate) for gate in figures.GATES}
    by_step = {gate: figures.saturation_by_step(table, position, n_steps, low, high, rows=rows)
               for gate, table in tables.items()}
    edges, fractions = figures.gate_histograms(tables, rows=rows)
    return {"by_step": by_step, "edges": edges, "fractions": fractions, "n_examples": len(frame)}


AGGREGATE_FILES = (runformat.GATE_GROUPS_FILE, runformat.GATE_SATURATION_FILE, runformat.GATE_VALUES_FILE)


@data.run_cached(maxsize=4)
def gate_aggregates(run: runformat.Run, layer: int) -> dict | None:
    """The run's precomputed gate tables of ``layer`` as arrays (``pipeline.core.aggregates`` writes
    them), or None when the run has none for it (runs written before them, imports of h and c).

    Per (gate, alignment): each row's group, offset and step count, and ``below`` / ``above``: the
    number of its values under / over each edge of ``runformat.saturation_edges()``."""
    if not set(AGGREGATE_FILES) <= data.run_files(run.manifest):
        return None
    n_edges = runformat.SATURATION_GRID + 1
    codes = [f"c{i}" for i in range(2 * n_edges + 1)]
    bins = [f"b{i}" for i in range(runformat.GATE_VALUE_BINS)]
    groups = run.arrow_table(runformat.GATE_GROUPS_FILE).sort_by("example_id")
    saturation = run.arrow_table(runformat.GATE_SATURATION_FILE, filters=[("layer", "=", layer)])
    values = run.arrow_table(runformat.GATE_VALUES_FILE, filters=[("layer", "=", layer)])
    if saturation.num_rows == 0 or not set(codes) <= set(saturation.column_names) \
            or not set(bins) <= set(values.column_names):
        return None

    def column(table, name):
        return table.column(name).to_numpy()

    group = column(groups, "group").astype(np.int64)
    result: dict = {"example_id": column(groups, "example_id"), "group": group, "sizes": np.bincount(group),
                    "saturation": {}, "values": {}}
    gate_of, align_of = (saturation.column(name).to_numpy(zero_copy_only=False) for name in ("gate", "align"))
    counts = np.column_stack([column(saturation, c) for c in codes])
    cumulative = np.cumsum(counts, axis=1, dtype=np.int64)
    for gate in figures.GATES:
        for align in ("start", "end"):
            keep = (gate_of == gate) & (align_of == align)
            if not keep.any():
                return None
            part = cumulative[keep]
            result["saturation"][gate, align] = {
                "group": column(saturation, "group")[keep], "offset": column(saturation, "offset")[keep],
                "rows": column(saturation, "rows")[keep],
                "below": part[:, 0::2],                                   # #(v < E[k]) = c0 + ... + c{2k}
                "above": part[:, -1:] - part[:, 1::2][:, :n_edges]}       # #(v > E[k]) = c{2k+2} + ...
        value_gate = values.column("gate").to_numpy(zero_copy_only=False) == gate
        by_group = np.zeros((len(result["sizes"]), len(bins)), np.int64)
        by_group[column(values, "group")[value_gate]] = np.column_stack([column(values, b) for b in bins])[value_gate]
        result["values"][gate] = by_group
    return result


def grid_index(threshold: float) -> int | None:
    """``k`` when the view's float32 comparison with ``threshold`` is one with the aggregates' edge
    ``k``; None for a threshold off their grid."""
    edges = runformat.saturation_edges()
    k = int(round(float(threshold) * runformat.SATURATION_GRID))
    return k if 0 <= k < len(edges) and np.float32(threshold) == edges[k] else None


def whole_groups(aggregates: dict, frame) -> np.ndarray | None:
    """Which of the aggregates' example groups ``frame`` holds (a mask), or None when it holds
    part of one (a chosen set), an example they lack, or nothing."""
    ids = frame["example_id"].to_numpy(np.int64)
    position = np.searchsorted(aggregates["example_id"], ids)
    if frame.empty or np.any(position >= len(aggregates["example_id"])) \
            or np.any(aggregates["example_id"][position] != ids):
        return None
    chosen = np.bincount(aggregates["group"][position], minlength=len(aggregates["sizes"]))
    whole = chosen > 0
    return None if np.any(chosen[whole] != aggregates["sizes"][whole]) else whole


def summary_from_aggregates(run: runformat.Run, layer: int, frame, align: str, low: float,
                            high: float) -> dict | None:
    """``gate_summary`` summed from the precomputed aggregates, or None when they cannot answer
    (no aggregates, a threshold off their grid, a filter that splits a group)."""
    aggregates = gate_aggregates(run, layer)
    k_low, k_high = grid_index(low), grid_index(high)
    if aggregates is None or k_low is None or k_high is None:
        return None
    whole = whole_groups(aggregates, frame)
    if whole is None:
        return None
    n_steps = int(frame["length"].max())
    units = run.manifest.layer(layer).units
    by_step, fractions = {}, {}
    for gate in figures.GATES:
        part = aggregates["saturation"][gate, align]
        keep = whole[part["group"]]
        offset = part["offset"][keep]
        step = offset if align == "start" else n_steps - 1 - offset
        examples = np.bincount(step, weights=part["rows"][keep], minlength=n_steps)
        below = np.bincount(step, weights=part["below"][keep, k_low], minlength=n_steps)
        above = np.bincount(step, weights=part["above"][keep, k_high], minlength=n_steps)
        with np.errstate(invalid="ignore", divide="ignore"):
            pairs = examples * units
            by_step[gate] = {"low": below / pairs, "high": above / pairs, "examples": examples}
        histogram = aggregates["values"][gate][whole].sum(axis=0)
        total = histogram.sum()
        fractions[gate] = histogram / total if total else histogram.astype(np.float64)
    edges = np.linspace(0.0, 1.0, runformat.GATE_VALUE_BINS + 1)
    return {"by_step": by_step, "edges": edges, "fractions": fractions, "n_examples": len(frame)}


@data.run_cached(maxsize=16, shared=True)
def cell_grid(run: runformat.Run, layer: int, filters: tuple, align: str, gate: str, statistic: str,
              low: float, high: float) -> np.ndarray:
    """The gate cells heatmap's (units, steps) grid: from the run's precomputed sums when they can
    answer (every example, "saturated" at their thresholds), else from the gate table."""
    frame = _examples(run, filters)
    for answer in (grid_from_aggregates, grid_from_groups):
        grid = answer(run, layer, frame, align, gate, statistic, low, high)
        if grid is not None:
            return grid
    rows, _, position, n_steps = aligned_positions(frame["row_start"], frame["length"], align)
    return figures.cell_step_matrix(data.step_matrix(run, layer, gate), position, n_steps,
                                    statistic, low, high, rows=rows)


@data.run_cached(maxsize=4)
def gate_cells(run: runformat.Run, layer: int) -> dict | None:
    """``{(gate, align): (rows, sums, saturated)}`` of the run's precomputed gate cells of
    ``layer`` (``pipeline.core.aggregates``), or None for a run written before them."""
    if runformat.GATE_CELLS_FILE not in data.run_files(run.manifest):
        return None
    table = run.read_table(runformat.GATE_CELLS_FILE, filters=[("layer", "=", layer)])
    found = {}
    for (gate, align), part in table.groupby(["gate", "align"], sort=False):
        part = part.sort_values("step")
        units = sum(1 for c in part.columns if c.startswith("s") and c[1:].isdigit())
        found[gate, align] = (part["rows"].to_numpy(np.int64),
                              part[[f"s{j}" for j in range(units)]].to_numpy(np.float64),
                              part[[f"k{j}" for j in range(units)]].to_numpy(np.float64))
    return found or None


@data.run_cached(maxsize=8, shared=True)
def group_cells(run: runformat.Run, layer: int, gate: str, align: str, statistic: str, low: float,
                high: float) -> dict | None:
    """Per example group of the run's aggregates and step offset from the examples' start or end
    (``align``): how many examples have a step there (``rows``) and each cell's sum there
    (``sums``, ``cell_step_sums``), in one pass over the gate table; ``base`` and ``longest``
    place a group's offsets. None for a run without the aggregates. Every filter of the filter
    bar lets whole groups through, so its gate cells are sums of these (``grid_from_groups``)
    instead of a pass over its rows (a big run's later answers; shared by every worker). A big
    run's own table of them (``stored_group_cells``) answers without that pass."""
    stored = stored_group_cells(run, layer, gate, align, statistic, low, high)
    if stored is not None:
        return stored
    places = group_places(run, layer, align)
    if places is None:
        return None
    base, longest, rows, position = places
    sums, counts = figures.cell_step_sums(data.step_matrix(run, layer, gate), position, int(longest.sum()),
                                          statistic, low, high, rows=rows)
    return {"base": base, "longest": longest, "rows": counts, "sums": sums}


def stored_group_cells(run: runformat.Run, layer: int, gate: str, align: str, statistic: str,
                       low: float, high: float) -> dict | None:
    """``group_cells`` from the run's ``GATE_GROUP_CELLS_FILE`` (written for big runs), or None:
    no such table, or "saturated" at other thresholds than the table's."""
    if runformat.GATE_GROUP_CELLS_FILE not in data.run_files(run.manifest) or (
            statistic == "saturated" and (low, high) != runformat.GATE_CELL_THRESHOLDS):
        return None
    aggregates = gate_aggregates(run, layer)
    if aggregates is None:
        return None
    table = run.read_table(runformat.GATE_GROUP_CELLS_FILE, filters=[
        ("layer", "=", layer), ("gate", "=", gate), ("align", "=", align)]).sort_values(["group", "offset"])
    longest = np.bincount(table["group"].to_numpy(np.int64), minlength=len(aggregates["sizes"]))
    if table.empty or len(longest) != len(aggregates["sizes"]):
        return None
    prefix = "k" if statistic == "saturated" else "s"
    units = sum(1 for c in table.columns if c.startswith(prefix) and c[1:].isdigit())
    sums = table[[f"{prefix}{j}" for j in range(units)]].to_numpy(np.float32 if statistic == "saturated" else np.float64)
    return {"base": np.cumsum(longest) - longest, "longest": longest, "rows": table["rows"].to_numpy(np.int64),
            "sums": sums}


@data.run_cached(maxsize=4)
def group_places(run: runformat.Run, layer: int, align: str) -> tuple | None:
    """Where ``group_cells`` adds each step: ``(base, longest, rows, position)``, a group's first
    place and longest example, and every step's row and place (its group's base plus its offset).
    The same for every threshold and gate (~20 ms of each new threshold's pass at Auslan size)."""
    aggregates = gate_aggregates(run, layer)
    frame = data.examples(run)
    if aggregates is None or whole_groups(aggregates, frame) is None:
        return None
    group = aggregates["group"][np.searchsorted(aggregates["example_id"], frame["example_id"].to_numpy(np.int64))]
    lengths = frame["length"].to_numpy(np.int64)
    longest = np.zeros(len(aggregates["sizes"]), np.int64)
    np.maximum.at(longest, group, lengths)
    base = np.cumsum(longest) - longest
    rows, t, owner = example_rows(frame["row_start"], lengths)
    offset = t if align == "start" else lengths[owner] - 1 - t
    index = np.int32 if max(len(rows), int(longest.sum())) < 2 ** 31 else np.int64   # half a big run's memo
    return base, longest, rows.astype(index), (base[group[owner]] + offset).astype(index)


def grid_from_groups(run: runformat.Run, layer: int, frame, align: str, gate: str, statistic: str,
                     low: float, high: float) -> np.ndarray | None:
    """``figures.cell_step_matrix`` of ``frame`` summed from ``group_cells`` (the same float64
    values added in another order), or None when ``frame`` splits a group or the run lacks them."""
    aggregates = gate_aggregates(run, layer)
    whole = None if aggregates is None else whole_groups(aggregates, frame)
    cells = None if whole is None else group_cells(run, layer, gate, align, statistic, low, high)
    if cells is None:
        return None
    chosen = np.flatnonzero(whole)
    pairs, offset, _ = example_rows(cells["base"][chosen], cells["longest"][chosen])
    n_steps = int(frame["length"].max())
    step = offset if align == "start" else n_steps - 1 - offset
    one_hot = scipy.sparse.csr_matrix((np.ones(len(pairs)), (step, np.arange(len(pairs)))),
                                      shape=(n_steps, len(pairs)))
    counts = np.bincount(step, weights=cells["rows"][pairs], minlength=n_steps)
    return figures.cell_grid_of(one_hot @ cells["sums"][pairs], counts)


def grid_from_aggregates(run: runformat.Run, layer: int, frame, align: str, gate: str, statistic: str,
                         low: float, high: float) -> np.ndarray | None:
    """``figures.cell_step_matrix`` of every example from the precomputed sums (the same float64
    sums, so the same grid), or None when they cannot answer: a filter, "saturated" at other
    thresholds, a run written before them."""
    if statistic not in figures.CELL_STATISTICS or len(frame) != len(data.examples(run)) or (
            statistic == "saturated" and (low, high) != runformat.GATE_CELL_THRESHOLDS):
        return None
    found = (gate_cells(run, layer) or {}).get((gate, align))
    if found is None or len(found[0]) != int(frame["length"].max()):
        return None
    rows, sums, saturated = found
    present = np.flatnonzero(rows)
    grid = np.full((sums.shape[1], len(rows)), np.nan, dtype=np.float32)
    grid[:, present] = ((saturated if statistic == "saturated" else sums)[present] / rows[present, None]).T
    return grid


def _checked(run_id, classes, splits, hands, correctness, thresholds, chosen=None):
    """The run, the filters (with the chosen set) and the thresholds, or raise
    ``runformat.RunError`` with what to change."""
    run = data.get_run(run_id)
    filters.numbers(2, 0.0, 1.0)(run, thresholds)
    key = _filters(*filters.filter_bar(run, classes, splits, hands, correctness), filters.example_ids(run, chosen))
    low, high = (float(v) for v in (thresholds or (figures.DEFAULT_LOW, figures.DEFAULT_HIGH)))
    if not low < high:
        raise runformat.RunError("choose a lower threshold below the upper one")
    if data.filtered_examples(run, *key[:4]).empty:
        raise runformat.RunError("no examples pass the filters")
    _examples(run, key)                                  # none of the chosen set passes: says so
    return run, key, low, high


def summary_figures(run_id, classes, splits, hands, correctness, layer, align, thresholds, chosen=None):
    """(saturation over time, histogram) for the filters, the chosen set (a box or lasso's in
    another view; None: every example) and the options."""
    try:
        run, filters, low, high = _checked(run_id, classes, splits, hands, correctness, thresholds, chosen)
        return _summary_scenes(run, _gate_layer(run, layer), filters, align, low, high)
    except runformat.RunError as error:
        return message_figure(str(error)), message_figure(str(error))


@data.run_cached(maxsize=16, shared=True)
def _summary_scenes(run: runformat.Run, layer: int, filters: tuple, align: str, low: float,
                    high: float) -> tuple:
    """Both figures as sent, memoised (plain dicts: ``figures.sent``)."""
    summary = gate_summary(run, layer, filters, align, low, high)
    return (sent(figures.saturation_spec(summary["by_step"], align, low, high, summary["n_examples"], layer)),
            sent(figures.gate_histogram_spec(summary["edges"], summary["fractions"], low, high)))


def zoomed_over_time(relayout, run_id, classes, splits, hands, correctness, layer, align, thresholds,
                     chosen=None):
    """A zoom of gates over time: the window's steps drawn again when the lines were decimated
    (``figures.series``); ``dash.no_update`` when every step is drawn already, or the event was
    not an x zoom."""
    window = series.window_from_relayout(relayout)
    if window is None:
        return dash.no_update
    try:
        run, filters, low, high = _checked(run_id, classes, splits, hands, correctness, thresholds, chosen)
        layer = _gate_layer(run, layer)
        summary = gate_summary(run, layer, filters, align, low, high)
    except runformat.RunError:
        return dash.no_update                     # the main callback shows what is wrong
    lines = list(summary["by_step"].values())
    if not lines or len(lines[0]["low"]) <= series.MAX_SERIES_POINTS:
        return dash.no_update
    return sent(figures.saturation_spec(summary["by_step"], align, low, high, summary["n_examples"], layer,
                                        window))


def cells_figure(run_id, classes, splits, hands, correctness, layer, align, thresholds, gate, statistic,
                 order, chosen=None):
    try:
        run, filters, low, high = _checked(run_id, classes, splits, hands, correctness, thresholds, chosen)
        grid = cell_grid(run, _gate_layer(run, layer), filters, align, gate, statistic, low, high)
    except runformat.RunError as error:
        return message_figure(str(error))
    return sent(figures.cell_heatmap_spec(grid, align, gate, statistic, order, low, high))


def register_callbacks(app: dash.Dash) -> None:
    register_layer_tick(app, LAYER)
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Input(state.RUN, "value"))
    def show_layers(run_id):
        return layer_options(run_id)

    @app.callback(Output(OVER_TIME, "figure"), Output(HISTOGRAM, "figure"), *state.FILTER_INPUTS,
                  state.TAB_INPUT, Input(LAYER, "value"), Input(ALIGN, "value"), Input(THRESHOLDS, "value"),
                  state.CHOSEN_INPUT)
    def update_summary(run_id, classes, splits, hands, correctness, tab, layer, align, thresholds, chosen=None):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update
        return summary_figures(run_id, classes, splits, hands, correctness, layer, align, thresholds, chosen)

    @app.callback(Output(OVER_TIME, "figure", allow_duplicate=True), Input(OVER_TIME, "relayoutData"),
                  *(State(i.component_id, i.component_property) for i in state.FILTER_INPUTS),
                  State(LAYER, "value"), State(ALIGN, "value"), State(THRESHOLDS, "value"),
                  State(state.CHOSEN, "data"), prevent_initial_call=True)
    def zoom_over_time(relayout, run_id, classes, splits, hands, correctness, layer, align, thresholds,
                       chosen=None):
        return zoomed_over_time(relayout, run_id, classes, splits, hands, correctness, layer, align,
                                thresholds, chosen)

    @app.callback(Output(CELLS, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, Input(LAYER, "value"),
                  Input(ALIGN, "value"), Input(THRESHOLDS, "value"), Input(GATE, "value"),
                  Input(STATISTIC, "value"), Input(ORDER, "value"), state.CHOSEN_INPUT)
    def update_cells(run_id, classes, splits, hands, correctness, tab, layer, align, thresholds, gate,
                     statistic, order, chosen=None):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return cells_figure(run_id, classes, splits, hands, correctness, layer, align, thresholds, gate,
                            statistic, order, chosen)

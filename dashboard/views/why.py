"""The inspector's "why" panels (not a view of their own: ``inspector`` places them and registers
their callbacks): which frames and channels the selected example's prediction rests on, and what
if its input were different.

- Attribution: the integrated gradients of the predicted (or the true) class's probability per step
  and channel (``steps/attribution-*.parquet``), the two hands apart, under the example's
  confidence over time on one shared time axis, with the occlusion drop per step
  (``steps/occlusion.parquet``); and per class the mean |attribution| by tenth of the sign
  (``attribution_by_class.parquet``), for the example's true class and, for a mistake, the
  predicted one. Shown only for runs with the attribute stage's files (a short message otherwise).
- What if: mask a window of frames, drop one hand or cut the sign at step k, recomputed with the
  same NumPy forward pass as extraction (``pipeline.analysis.whatif``) from the run's
  ``models/weights.npz``; the new confidence over time and the new path of h beside the old ones.
  The path plane is a PCA of every example's last-step h, fitted here (the run keeps no PCA basis).
"""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure, sent
from dashboard.figures.inspector import hand_groups
from dashboard.figures.why import attribution_spec, class_attribution_spec, whatif_figure
from dashboard.views import is_hidden
from dashboard.views.controls import GRAPH_CONFIG
from pipeline import runformat
from pipeline.analysis import whatif
from pipeline.analysis.lstm import NetworkWeights

VIEW_ID = "inspector"               # the view these panels live in

WHY_BOX, WHY_NOTE = "inspector-why-box", "inspector-why-note"
TARGET = "inspector-why-target"
ATTRIBUTION = "inspector-why-attribution"
BY_CLASS = "inspector-why-by-class"
WHATIF_BOX, WHATIF_NOTE = "inspector-whatif-box", "inspector-whatif-note"
EDIT = "inspector-whatif-edit"
WINDOW = "inspector-whatif-window"
HAND = "inspector-whatif-hand"
CUT = "inspector-whatif-cut"
WHATIF = "inspector-whatif"
HIDDEN = {"display": "none"}
EDITS = [{"label": "mask frames", "value": "mask"}, {"label": "drop a hand", "value": "hand"},
         {"label": "cut at step", "value": "cut"}]
NOTHING_SELECTED = "Select an example (click one in any view) to see why it was classified so."
LARGEST_STEP = 100_000

#: For the request guard (``inspector.VALUE_CHECKS``): the sliders' ranges are set per example.
def cut_step(run: runformat.Run | None, value) -> None:
    """The cut slider's value: a step from 1 on (the example's length caps it where it is used)."""
    filters.numbers(1, 1, LARGEST_STEP)(run, None if value is None else [value])


VALUE_CHECKS = {(WINDOW, "value"): filters.numbers(2, 0, LARGEST_STEP), (CUT, "value"): cut_step}


def panel() -> html.Div:
    """The two panels, placed by the inspector's layout."""
    graph = {"config": GRAPH_CONFIG}
    return html.Div(children=[
        html.Div(className="panel", children=[
            html.H3("Why: attribution per step and channel"),
            html.Div(id=WHY_NOTE, className="hint"),
            html.Div(id=WHY_BOX, style=HIDDEN, children=[
                html.Div(className="view-options", children=[
                    dcc.RadioItems(id=TARGET, value="predicted", inline=True,
                                   options=[{"label": "to the predicted class", "value": "predicted"},
                                            {"label": "to the true class", "value": "true"}]),
                    html.Span("red: the frame raised the class's probability, blue: lowered it "
                              "(integrated gradients from the padding)", className="hint"),
                ]),
                dcc.Loading(dcc.Graph(id=ATTRIBUTION, **graph), delay_show=300),
                html.H4("Mean attribution of its class by part of the sign"),
                dcc.Loading(dcc.Graph(id=BY_CLASS, **graph), delay_show=300),
            ]),
        ]),
        html.Div(className="panel", children=[
            html.H3("What if: edit the input and watch"),
            html.Div(id=WHATIF_NOTE, className="hint"),
            html.Div(id=WHATIF_BOX, style=HIDDEN, children=[
                html.Div(className="view-options", children=[
                    dcc.RadioItems(id=EDIT, value="mask", inline=True, options=EDITS),
                    dcc.RadioItems(id=HAND, value="left", inline=True,
                                   options=[{"label": "left hand", "value": "left"},
                                            {"label": "right hand", "value": "right"}]),
                ]),
                html.Div(className="view-options", children=[
                    html.Span("frames masked", className="hint"),
                    html.Div(style={"width": "28em"}, children=dcc.RangeSlider(
                        id=WINDOW, min=0, max=10, step=1, value=[0, 5], marks=None,
                        tooltip={"placement": "bottom"})),
                    html.Span("cut at step", className="hint"),
                    html.Div(style={"width": "20em"}, children=dcc.Slider(
                        id=CUT, min=1, max=10, step=1, value=10, marks=None, tooltip={"placement": "bottom"})),
                ]),
                dcc.Loading(dcc.Graph(id=WHATIF, **graph), delay_show=300),
            ]),
        ]),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(WHY_BOX, "style"), Output(WHY_NOTE, "children"), Output(WHATIF_BOX, "style"),
                  Output(WHATIF_NOTE, "children"), Input(state.RUN, "value"), state.TAB_INPUT)
    def show(run_id, tab):
        return [dash.no_update] * 4 if is_hidden(VIEW_ID, tab) else panels_for(run_id)

    @app.callback(Output(ATTRIBUTION, "figure"), Output(BY_CLASS, "figure"), Input(state.RUN, "value"),
                  state.TAB_INPUT, state.SELECTED_INPUT, Input(TARGET, "value"))
    def draw_attribution(run_id, tab, selected, target):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update
        return attribution_view(run_id, selected, target)

    @app.callback(Output(WINDOW, "max"), Output(WINDOW, "value"), Output(CUT, "max"), Output(CUT, "value"),
                  Input(state.RUN, "value"), state.TAB_INPUT, state.SELECTED_INPUT)
    def fit_sliders(run_id, tab, selected):
        return [dash.no_update] * 4 if is_hidden(VIEW_ID, tab) else slider_ranges(run_id, selected)

    @app.callback(Output(WHATIF, "figure"), Input(state.RUN, "value"), state.TAB_INPUT, state.SELECTED_INPUT,
                  Input(EDIT, "value"), Input(WINDOW, "value"), Input(HAND, "value"), Input(CUT, "value"))
    def draw_whatif(run_id, tab, selected, edit, window, hand, cut):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return whatif_view(run_id, selected, edit, window, hand, cut)


# -- what the run has ---------------------------------------------------------------------------

def no_attribution_message(run: runformat.Run) -> str | None:
    if not run.manifest.is_classification:
        return "Attribution is for classification runs."
    if not run.has(runformat.ATTRIBUTION_FILES["predicted"]) and run.manifest.attention == "pooling":
        return (f"Run {run.run_id[:60]!r} pools its steps with attention: attribution is not computed for "
                f"attention models (it runs the network to its last step's h); the Attention view shows "
                f"where its weight sits.")
    if not run.has(runformat.ATTRIBUTION_FILES["predicted"]):
        how = ("the attribute stage of `python -m pipeline run` computes it" if run.manifest.origin == "trained"
               else "the attribute stage needs a model trained here (weights and a Keras model)")
        return f"Run {run.run_id[:60]!r} has no attribution ({runformat.ATTRIBUTION_FILES['predicted']}): {how}."
    return None


def no_whatif_message(run: runformat.Run) -> str | None:
    if not run.manifest.is_classification:
        return "What-if edits are for classification runs."
    missing = [name for name in (runformat.WEIGHTS_FILE, runformat.INPUTS_FILE) if not run.has(name)]
    if missing:
        return (f"Run {run.run_id[:60]!r} has no {' and no '.join(missing)}: what-if edits recompute the "
                f"network from its NumPy weights and inputs.")
    return None


def panels_for(run_id) -> list:
    """The two panels' styles and notes for a run: shown, or hidden with the reason."""
    try:
        run = data.get_run(run_id)
    except runformat.RunError as error:
        return [HIDDEN, str(error), HIDDEN, str(error)]
    why, what = no_attribution_message(run), no_whatif_message(run)
    return [HIDDEN if why else None, why, HIDDEN if what else None, what]


@data.run_cached(maxsize=4)
def attribution_table(run: runformat.Run, which: str) -> pd.DataFrame:
    return run.read_table(runformat.ATTRIBUTION_FILES[which])


@data.run_cached(maxsize=4)
def occlusion_table(run: runformat.Run) -> pd.DataFrame | None:
    return run.read_table(runformat.OCCLUSION_FILE) if run.has(runformat.OCCLUSION_FILE) else None


@data.run_cached(maxsize=4)
def by_class_table(run: runformat.Run) -> pd.DataFrame | None:
    return run.read_table(runformat.ATTRIBUTION_BY_CLASS_FILE) if run.has(runformat.ATTRIBUTION_BY_CLASS_FILE) else None


def _selected(run_id, selected) -> tuple[runformat.Run, pd.Series]:
    run = data.get_run(run_id)
    if not run.manifest.is_classification:
        raise runformat.RunError("the inspector is for classification runs")
    example = filters.example_id(run, selected)
    row = None if example is None else data.example_row(run, example)
    if row is None:
        raise runformat.RunError(f"run {run.run_id!r} has no example {selected}")
    return run, row


def _groups(run: runformat.Run, channels: list[str]) -> dict[str, list[str]]:
    return hand_groups(channels, run.manifest.get("hands"))


def attribution_view(run_id, selected, target="predicted") -> tuple:
    """The attribution figure of ``selected`` (to its ``target`` class: "predicted" or "true") and
    its classes' mean attribution by part of the sign."""
    if selected is None:
        return message_figure(NOTHING_SELECTED), message_figure(NOTHING_SELECTED)
    try:
        run, row = _selected(run_id, selected)
        filters.one_of("predicted", "true")(run, target)
        message = no_attribution_message(run)
        if message:
            raise runformat.RunError(message)
        example = int(row["example_id"])
        steps = data.example_steps(attribution_table(run, target or "predicted"), run, example)
        true_prob, _ = data.class_probability(run, example, int(row["label_index"]))
        predicted_prob, _ = data.class_probability(run, example, int(row["prediction_index"]))
        occluded = occlusion_table(run)
        by_class = by_class_table(run)
    except runformat.RunError as error:
        return message_figure(str(error)), message_figure(str(error))
    channels = [c for c in steps.columns if c not in ("example_id", "t")]
    groups = _groups(run, channels)
    label = row["label"] if target == "true" else row["prediction"]
    drop = None
    if occluded is not None:
        drop = data.example_steps(occluded, run, example)[f"{target or 'predicted'}_drop"].to_numpy(np.float32)
    gap = float(row["completeness_gap"]) if "completeness_gap" in row and target != "true" else None
    figure = sent(attribution_spec(steps["t"].to_numpy(), steps, groups, true_prob, predicted_prob, row["label"],
                                   row["prediction"], str(label), drop, gap))
    if by_class is None:
        return figure, message_figure(f"Run {run.run_id[:60]!r} has no {runformat.ATTRIBUTION_BY_CLASS_FILE}.")
    tables = {}
    for name, index in ((row["label"], int(row["label_index"])), (row["prediction"], int(row["prediction_index"]))):
        tables[str(name)] = by_class[by_class["label"] == index]
    return figure, sent(class_attribution_spec(tables, groups))


# -- what if ------------------------------------------------------------------------------------

@data.run_cached(maxsize=4)
def network(run: runformat.Run) -> NetworkWeights:
    """The run's NumPy weights (``models/weights.npz``, no pickle)."""
    try:
        return NetworkWeights.load(run.file_path(runformat.WEIGHTS_FILE))
    except (OSError, ValueError, KeyError) as error:
        raise runformat.RunError(f"run {run.run_id[:60]!r}: {runformat.WEIGHTS_FILE} cannot be read "
                                 f"({type(error).__name__})") from None


@data.run_cached(maxsize=4)
def path_plane(run: runformat.Run) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A 2-D PCA of every example's last-step h (last layer): the plane (2 x units), its centre and
    each example's last step in it (``x, y, label``)."""
    hidden = np.asarray(data.last_step_matrix(run, data.last_layer(run), "h"), np.float64)
    centre = hidden.mean(axis=0)
    _, _, vt = np.linalg.svd(hidden - centre, full_matrices=False)
    plane = vt[:2] if len(vt) >= 2 else np.vstack([vt, np.zeros_like(vt)])[:2]
    xy = (hidden - centre) @ plane.T
    frame = data.examples(run)
    return (plane.astype(np.float32), centre.astype(np.float32),
            pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": frame["label"].to_numpy()}))


def example_frames(run: runformat.Run, example_id: int) -> np.ndarray:
    """The example's raw input frames (steps, channels) in the run's channel order."""
    steps = data.example_steps(data.inputs(run), run, example_id)
    channels = list(run.manifest.get("channels") or [c for c in steps.columns if c not in ("example_id", "t")])
    return steps[channels].to_numpy(np.float32)


@data.run_cached(maxsize=64)
def original_answer(run: runformat.Run, example_id: int) -> dict[str, np.ndarray]:
    return whatif.answer(network(run), example_frames(run, example_id))


def slider_ranges(run_id, selected) -> list:
    """The mask window's and the cut's range for the selected example: [max, value, max, value]."""
    try:
        _, row = _selected(run_id, selected)
    except runformat.RunError:
        return [dash.no_update] * 4
    length = int(row["length"])
    return [length, [max(0, length // 2 - 5), min(length, length // 2 + 5)], length, max(1, length // 2)]


def edited(run: runformat.Run, frames: np.ndarray, edit: str, window, hand, cut) -> tuple[np.ndarray, str, tuple | None]:
    """The edited frames, a description and the span of edited steps (for shading)."""
    length = len(frames)
    weights = network(run)
    if edit == "mask":
        filters.numbers(2, 0, LARGEST_STEP)(run, window)
        start, stop = sorted(int(v) for v in (window or [0, 0]))
        start, stop = min(start, length), min(stop, length)
        return whatif.mask_window(frames, weights, start, stop), f"frames {start}-{stop - 1} masked", (start, stop)
    if edit == "hand":
        hands = run.manifest.get("hands") or {}
        if hand not in hands:
            raise filters.Refused(f"run {run.run_id[:60]!r} has no {str(hand)[:20]!r} hand"
                                  + (f" (it has {', '.join(hands)})" if hands else " (its channels name no hands)"))
        return whatif.drop_channels(frames, weights, hands[hand]), f"{hand} hand dropped", None
    if edit == "cut":
        cut_step(run, cut if cut is not None else 0)
        k = min(int(cut), length)
        return whatif.cut_at(frames, k), f"cut after {k} of {length} steps", (k, length)
    raise filters.Refused(f"{str(edit)[:40]!r} is not an edit ({', '.join(e['value'] for e in EDITS)})")


def whatif_view(run_id, selected, edit, window, hand, cut):
    """The selected example's confidence and path before and after the edit."""
    if selected is None:
        return message_figure(NOTHING_SELECTED)
    try:
        run, row = _selected(run_id, selected)
        message = no_whatif_message(run)
        if message:
            raise runformat.RunError(message)
        example = int(row["example_id"])
        frames = example_frames(run, example)
        new_frames, description, span = edited(run, frames, edit or "mask", window, hand, cut)
        old = original_answer(run, example)
        new = whatif.answer(network(run), new_frames)
        plane, centre, context = path_plane(run)
    except runformat.RunError as error:
        return message_figure(str(error))
    if "probabilities" not in old:
        return message_figure("The run's network has no softmax head: nothing to recompute.")
    context = context[context["label"].isin([row["label"], row["prediction"]])]
    return whatif_figure(old, new, int(row["label_index"]), int(row["prediction_index"]), run.classes, plane,
                         centre, description, span, context)

"""Compare view: the run picked in the header beside a second run on the same examples.

How do variant models capture the same data? Per-class accuracy of both, the difference of their
confusion matrices (in the first run's class order), the examples one gets right and the other
wrong (a click selects one; the inspector shows it in the header's run), the linear CKA of each
layer's h over the last steps and over all steps, and both runs' paths side by side after
Procrustes alignment of the second onto the first. Runs that do not share examples (the same
example ids, classes and lengths) are refused with a message that says what differs.
"""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure
from dashboard.figures.compare import accuracy_pair_figure, aligned_paths_figure, difference_figure
from dashboard.figures.confusion import confusion_counts
from dashboard.figures.paths import axis_name
from dashboard.views import is_hidden
from dashboard.views.confusion import ALL_SPLITS, class_order
from dashboard.views.controls import GRAPH_CONFIG
from dashboard.views.inspector import example_links
from pipeline import runformat
from pipeline.analysis.cka import linear_cka
from pipeline.analysis.trust import procrustes_align

VIEW_ID = "compare"
TITLE = "Compare runs"

OTHER = "compare-other"
SPLIT = "compare-split"
NOTE = "compare-note"
CKA = "compare-cka"
ACCURACY = "compare-accuracy"
DIFFERENCE = "compare-difference"
DISAGREE = "compare-disagree"
PATHS = "compare-paths"
MAX_ROWS = 20_000            # steps sampled for the all-steps CKA
MAX_PATHS = 300              # examples drawn per run in the aligned paths
MAX_LISTED = 100


def other_run(run: runformat.Run | None, value) -> None:
    """The second run picker's value: None or a plain run id (whether it can be compared is the
    view's own message)."""
    if value is None:
        return
    if not isinstance(value, str) or not runformat.RUN_ID_PATTERN.match(value):
        raise filters.Refused(f"{str(value)[:40]!r} is not a run id")


VALUE_CHECKS = {(OTHER, "value"): other_run}


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs with predictions (there must be something to compare)."""
    return manifest.is_classification and data.has_predictions(manifest)


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            html.Label("Compare with"),
            html.Div(style={"width": "32em"}, children=dcc.Dropdown(id=OTHER, options=[], value=None,
                                                                    placeholder="a second run on the same examples")),
            dcc.RadioItems(id=SPLIT, value="test", inline=True,
                           options=[{"label": s, "value": s} for s in (*state.SPLITS, ALL_SPLITS)]),
        ]),
        html.Div(id=NOTE, className="hint"),
        html.Div(id=CKA, className="compare-cka"),
        html.H3("Accuracy per class"),
        dcc.Loading(dcc.Graph(id=ACCURACY, config=GRAPH_CONFIG), delay_show=300),
        html.H3("Confusion: second run minus first"),
        dcc.Loading(dcc.Graph(id=DIFFERENCE, config=GRAPH_CONFIG), delay_show=300),
        html.H3("Examples they disagree on (filtered)"),
        dcc.Loading(html.Div(id=DISAGREE, className="example-list"), delay_show=300),
        html.H3("Paths side by side"),
        dcc.Loading(dcc.Graph(id=PATHS, config=GRAPH_CONFIG), delay_show=300),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(OTHER, "options"), Output(OTHER, "value"), Input(state.RUN, "value"), state.TAB_INPUT)
    def offer(run_id, tab):
        return [dash.no_update] * 2 if is_hidden(VIEW_ID, tab) else other_choices(run_id)

    @app.callback(Output(NOTE, "children"), Output(CKA, "children"), Output(ACCURACY, "figure"),
                  Output(DIFFERENCE, "figure"), Output(DISAGREE, "children"), Output(PATHS, "figure"),
                  *state.FILTER_INPUTS, state.TAB_INPUT, Input(OTHER, "value"), Input(SPLIT, "value"))
    def draw(run_id, classes, splits, hands, correctness, tab, other, split):
        if is_hidden(VIEW_ID, tab):
            return [dash.no_update] * 6
        return compare_view(run_id, other, classes, splits, hands, split)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(PATHS, "clickData"),
                  prevent_initial_call=True)
    def select(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None or example < 0 else example


def other_choices(run_id) -> list:
    """The second run's options (the other complete classifiers with as many examples) and value."""
    try:
        run = data.get_run(run_id)
    except runformat.RunError:
        return [[], None]
    options = [{"label": f"{m.run_id} ({m.dataset.get('name', '?')})", "value": m.run_id}
               for m in data.list_runs() if m.complete and m.is_classification and m.run_id != run.run_id
               and m.n_examples == run.manifest.n_examples]
    return [options, options[0]["value"] if options else None]


def shared_examples(a: runformat.Run, b: runformat.Run) -> None:
    """Refuse two runs that do not hold the same examples (ids, classes and lengths)."""
    ea, eb = data.examples(a), data.examples(b)
    why = None
    if len(ea) != len(eb) or not np.array_equal(ea["example_id"].to_numpy(), eb["example_id"].to_numpy()):
        why = f"their example ids differ ({len(ea):,} and {len(eb):,} examples)"
    elif not (ea["label"].astype(str).to_numpy() == eb["label"].astype(str).to_numpy()).all():
        why = "their examples' classes differ"
    elif not np.array_equal(ea["length"].to_numpy(), eb["length"].to_numpy()):
        why = "their examples' lengths differ"
    if why:
        raise runformat.RunError(f"runs {a.run_id[:60]!r} and {b.run_id[:60]!r} do not share examples: {why}; "
                                 f"pick a run on the same data set and splits")


def cka_table(a: runformat.Run, b: runformat.Run) -> html.Table:
    """Linear CKA of each layer pair's h: over every example's last step and over (up to MAX_ROWS
    evenly spaced) steps."""
    rows = []
    n = min(len(a.layers), len(b.layers))
    pairs = [(a.layers[i].index, b.layers[i].index) for i in range(n)]
    for la, lb in pairs:
        last = linear_cka(data.last_step_matrix(a, la, "h"), data.last_step_matrix(b, lb, "h"))
        every = _all_steps_cka(a, b, la, lb)
        rows.append(html.Tr([html.Td(f"layer {la} / layer {lb}"), html.Td(f"{last:.3f}"), html.Td(f"{every:.3f}")]))
    return html.Table(className="compare-cka-table", children=[
        html.Thead(html.Tr([html.Th("h (linear CKA)"), html.Th("last steps"), html.Th("all steps")])),
        html.Tbody(rows)])


@data.run_cached(maxsize=8)
def _sampled_steps(run: runformat.Run, layer: int) -> np.ndarray:
    matrix = data.step_matrix(run, layer, "h")
    rows = np.linspace(0, len(matrix) - 1, min(len(matrix), MAX_ROWS)).astype(np.int64)
    return np.ascontiguousarray(matrix[rows], dtype=np.float32)      # a big run's map may be float16


def _all_steps_cka(a: runformat.Run, b: runformat.Run, la: int, lb: int) -> float:
    return linear_cka(_sampled_steps(a, la), _sampled_steps(b, lb))


def _path_projection(a: runformat.Run, b: runformat.Run) -> str:
    common = [p for p in data.path_projection_ids(a.manifest, dims=2) if p in data.path_projection_ids(b.manifest, dims=2)]
    if not common:
        raise runformat.RunError("the two runs have no 2-D path projection in common")
    return next((p for p in ("pca2", "ae2") if p in common), common[0])


def compare_view(run_id, other, classes, splits, hands, split="test") -> list:
    """[note, CKA table, accuracy figure, confusion difference, disagreement lists, aligned paths]."""
    def refused(text: str) -> list:
        return [text, None, message_figure(text), message_figure(text), None, message_figure(text)]
    try:
        a = data.get_run(run_id)
        classes, splits, hands, _ = filters.filter_bar(a, classes, splits, hands, "all")
        other_run(a, other)
        if other is None:
            return refused("Pick a second run on the same examples to compare with (none other has as many).")
        b = data.get_run(other)
        if not (a.manifest.is_classification and b.manifest.is_classification and data.has_verdicts(a)
                and data.has_verdicts(b)):
            raise runformat.RunError("both runs must be classifiers with predictions")
        shared_examples(a, b)
        chosen = list(state.SPLITS) if split in (None, ALL_SPLITS) else [split]
        filters.splits(a, chosen)
        ea, eb = (data.filtered_examples(run, None, chosen, hands, "all") for run in (a, b))
        fa, fb = (data.filtered_examples(run, classes, splits, hands, "all") for run in (a, b))
        table = cka_table(a, b)
        projection = _path_projection(a, b)
        pa, pb = data.projection(a, projection), data.projection(b, projection)
    except runformat.RunError as error:
        return refused(str(error))
    n = len(a.classes)
    order = class_order(a)
    names = [a.classes[i] for i in order]
    counts = [confusion_counts(e["label_index"].to_numpy(), e["prediction_index"].to_numpy(), n) for e in (ea, eb)]
    accuracy = [e.groupby("label", observed=True)["correct"].mean() for e in (ea, eb)]
    note = (f"{a.run_id} against {b.run_id}: {', '.join(chosen) if len(chosen) < 3 else 'all splits'} accuracy "
            f"{ea['correct'].mean():.1%} and {eb['correct'].mean():.1%}")
    disagree = _disagreements(fa, fb, a.run_id, b.run_id)
    alignment = procrustes_align(pb[["x", "y"]].to_numpy(), pa[["x", "y"]].to_numpy())
    aligned = pb.assign(**dict(zip(("x", "y"), alignment.apply(pb[["x", "y"]].to_numpy()).T.astype(np.float32))))
    shown = fa["example_id"].to_numpy()[:MAX_PATHS]
    keep_a, keep_b = pa["example_id"].isin(shown).to_numpy(), aligned["example_id"].isin(shown).to_numpy()
    paths = aligned_paths_figure(pa[keep_a], aligned[keep_b], data.labels(a), a.classes, a.run_id, b.run_id,
                                 alignment.disparity, axis_name(projection))
    if len(fa) > MAX_PATHS:
        note += f" · paths of the first {MAX_PATHS} of {len(fa):,} filtered examples (choose classes to see others)"
    return [note, table, accuracy_pair_figure(accuracy[0], accuracy[1], names, a.run_id, b.run_id),
            difference_figure(counts[0], counts[1], a.classes, order, a.run_id, b.run_id), disagree, paths]


def _disagreements(fa: pd.DataFrame, fb: pd.DataFrame, run_a: str, run_b: str) -> list:
    """The filtered examples one run gets right and the other wrong, as links (the first run's
    prediction shown; a click selects the example)."""
    right_a = fa["correct"].to_numpy(bool)
    right_b = fb.set_index("example_id").reindex(fa["example_id"])["correct"].to_numpy(bool)
    parts: list = []
    for mask, text, name in ((right_a & ~right_b, f"right in {run_a}, wrong in {run_b}", "compare-a"),
                             (~right_a & right_b, f"wrong in {run_a}, right in {run_b}", "compare-b")):
        parts.append(html.Div(f"{text}: {int(mask.sum()):,}", className="hint"))
        if mask.any():
            parts.append(example_links(fa[mask].head(MAX_LISTED), name))
    return parts

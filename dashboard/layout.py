"""The shell around the views: header with run picker, filter bar, view tabs and shared stores.

The shell owns the shared state (ids in dashboard.state) and three kinds of callbacks:
URL <-> controls in one callback (so a link reproduces a view and back/forward work without
callback loops), the run's facts (class options, hand filter, tabs that apply, errors), and the
filtered-examples count and CSV download.
"""

from __future__ import annotations

import os
from pathlib import Path

import dash
from dash import Input, Output, State, ctx, dcc, html

from dashboard import data, export, state, views
from dashboard.figures import run_info
from pipeline import runformat

DOWNLOAD_BUTTON = "download-csv-button"
DOWNLOAD = "download-csv"
RUN_MESSAGE = "run-message"
RUN_SUMMARY = "run-summary"
FILTER_COUNT = "filter-count"
HAND_BOX = "filter-hand-box"
CLASS_BOX = "filter-class-box"
CORRECT_BOX = "filter-correct-box"
FILTER_NOTE = "filter-note"        # what the filters cannot do for this run (e.g. no predictions)
URL_READ = "url-read"              # Store: has the page's first URL been applied to the controls?
SELECTION_BAR = "selection-bar"
INSPECT_BUTTON = "selection-inspect"
CLEAR_BUTTON = "selection-clear"
CHOSEN_TEXT = "selection-chosen"   # how many examples a box or lasso chose
CLEAR_SET_BUTTON = "selection-clear-set"
RUN_INFO_BOX = "run-info-box"      # html.Details: the run-info panel, closed until clicked
RUN_INFO = "run-info"
FINDER = "finder"                  # dcc.Input: a sign's name or an example id, Enter selects it
FINDER_NOTE = "finder-note"


def shell() -> html.Div:
    """The page; a function so that runs built since the server started appear on reload."""
    runs = data.list_runs()
    run_options = run_choices(runs)
    chosen = data.default_run(runs)          # the newest complete run, a classifier if there is one
    opened = next((m for m in runs if m.run_id == chosen), None)
    first_view = first_view_of(opened)
    # the classifier's controls, until show_run says what the run in the URL uses
    classifier_only = None if opened is not None and opened.is_classification else {"display": "none"}
    return html.Div(className="app", children=[
        dcc.Location(id=state.URL, refresh=False),
        dcc.Store(id=state.SELECTED, data=None),
        dcc.Store(id=state.CHOSEN, data=None),
        dcc.Store(id=URL_READ, data=False),
        html.Header(className="header", children=[
            html.H1("LSTM Lens", className="title"),
            dcc.Dropdown(id=state.RUN, options=run_options, value=chosen,
                         clearable=False, searchable=True, placeholder="No runs yet",
                         className="run-picker"),
            html.Div(id=RUN_SUMMARY, className="run-summary"),
        ]),
        html.Div(id=RUN_MESSAGE, className="run-message",
                 children=None if runs else _no_runs_message()),
        html.Details(id=RUN_INFO_BOX, className="run-info", style=None if chosen else {"display": "none"},
                     children=[html.Summary("About this run: data set and protocol, model, training, "
                                            "stage times, library versions"),
                               html.Div(id=RUN_INFO, className="run-info-body")]),
        html.Div(className="filter-bar", children=[
            _field("Classes", dcc.Dropdown(id=state.CLASS, options=[], value=[], multi=True,
                                           searchable=True, placeholder="All classes",
                                           className="class-filter"), id=CLASS_BOX, style=classifier_only),
            _field("Split", dcc.Checklist(id=state.SPLIT, value=list(state.SPLITS), inline=True,
                                          options=[{"label": s, "value": s} for s in state.SPLITS])),
            _field("Hands", dcc.Checklist(id=state.HAND, value=list(state.HANDS), inline=True,
                                          options=[{"label": h, "value": h} for h in state.HANDS]),
                   id=HAND_BOX),
            _field("Examples", dcc.RadioItems(id=state.CORRECT, value="all", inline=True,
                                              options=[{"label": c, "value": c}
                                                       for c in state.CORRECTNESS]), id=CORRECT_BOX,
                   style=classifier_only),
            html.Span(id=FILTER_COUNT, className="filter-count"),
            html.Span(id=FILTER_NOTE, className="hint"),
            html.Button("Download CSV", id=DOWNLOAD_BUTTON, className="button", style=classifier_only,
                        title="the filtered examples as a CSV file"),
            dcc.Download(id=DOWNLOAD),
        ]),
        html.Div(className="selection", children=[
            html.Span(id=SELECTION_BAR, className="selection-text"),
            html.Button("Inspect", id=INSPECT_BUTTON, className="button", style=classifier_only),
            html.Button("Clear", id=CLEAR_BUTTON, className="button secondary"),
            html.Span(id=CHOSEN_TEXT, className="selection-text"),
            html.Button("Clear chosen set", id=CLEAR_SET_BUTTON, className="button secondary",
                        title="drop the examples chosen by box or lasso", style={"display": "none"}),
            dcc.Input(id=FINDER, type="text", placeholder="find a sign or an example id", debounce=True,
                      className="finder", style={"width": "16em"}),
            html.Span(id=FINDER_NOTE, className="hint"),
        ]),
        dcc.Tabs(id=state.TABS, value=first_view, className="view-tabs", children=[
            dcc.Tab(label=view.TITLE, value=view.VIEW_ID, id=f"tab-{view.VIEW_ID}",
                    children=html.Div(view.layout(), className="view"))
            for view in views.VIEWS
        ]),
    ])


def _field(label: str, control, id: str | None = None, style: dict | None = None) -> html.Div:
    extra = {"id": id} if id else {}
    return html.Div(className="field", style=style, children=[html.Label(label), control], **extra)


def _run_label(manifest: runformat.Manifest) -> str:
    test = manifest.metrics.get("test")
    accuracy = test.get("accuracy") if isinstance(test, dict) else None
    details = [str(manifest.dataset.get("name", "?"))]
    if manifest.origin != "trained":
        details.append(manifest.origin)
    if manifest.status == "training":
        epochs = (manifest.get("recording") or {}).get("epochs", 0)
        details.append(f"training now, epoch {epochs}")
    elif not manifest.complete:
        details.append(data.build_state(manifest))
    if accuracy is not None:
        details.append(f"test accuracy {accuracy:.1%}")
    return f"{manifest.run_id} ({', '.join(details)})"


def _no_runs_message() -> str:
    folder = data.runs_dir()
    try:
        with os.scandir(folder):
            pass
    except FileNotFoundError:
        pass
    except OSError:
        return f"The runs folder ({Path(folder).name}) cannot be read by the server: check its permissions."
    return (f"No runs in the runs folder ({Path(folder).name}). Build one with `python -m pipeline run "
            f"synthetic` (or start `python app.py`, which builds the default runs).")


def _choose_message(manifests: list[runformat.Manifest]) -> str:
    """What the page says when no run is chosen: how to get one, or which are still being built."""
    if not manifests:
        return _no_runs_message()
    if any(m.complete for m in manifests):
        return "Choose a run."
    building = ", ".join(f"{m.run_id} ({data.build_state(m) or 'training now'})" for m in manifests[:3])
    return (f"No run is complete yet: {building}. Reload the page when one is done, or choose it in "
            f"the picker to see what it has so far.")


def all_params() -> list[state.UrlParam]:
    return state.SHELL_PARAMS + views.url_params()


def register_shell_callbacks(app: dash.Dash) -> None:
    params = all_params()
    controls = [(p.component_id, p.prop) for p in params]
    run_index = [p.component_id for p in params].index(state.RUN)
    tab_index = [p.component_id for p in params].index(state.TABS)

    @app.callback(Output(state.URL, "search"), *[Output(c, p) for c, p in controls],
                  Output(URL_READ, "data"), Output(state.CLASS, "options"), Output(state.RUN, "options"),
                  Input(state.URL, "search"), *[Input(c, p) for c, p in controls],
                  State(URL_READ, "data"))
    def sync_url(search, *values_and_read):
        """URL -> controls on load and back/forward; controls -> URL on any change.

        Which input Dash names as the trigger of the first call varies (a store may report its
        mount), so the first call always reads the URL. Options travel with the values: a
        Dropdown drops a value that is not among its options (a run the URL names that cannot be
        read stays chosen, so the page can say why).
        """
        *values, url_read = values_and_read
        from_url = not url_read or f"{state.URL}.search" in ctx.triggered_prop_ids
        trigger = state.URL if from_url else ctx.triggered_id
        outputs = sync_state(search, values, trigger, params)
        run_id = outputs[1 + run_index] if outputs[1 + run_index] is not dash.no_update else values[run_index]
        if trigger in (state.URL, state.RUN):
            tab = outputs[1 + tab_index] if outputs[1 + tab_index] is not dash.no_update else values[tab_index]
            better = view_for(run_id, tab)
            if better is not None:
                outputs[1 + tab_index] = better
                if trigger == state.URL:          # the URL named a view the run lacks: say which shows
                    shown = [v if o is dash.no_update else o for o, v in zip(outputs[1:], values)]
                    fixed = state.encode_search(dict(zip([p.component_id for p in params], shown)), params)
                    outputs[0] = fixed if fixed != (search or "") else dash.no_update
        options = class_options(run_id) if trigger in (state.URL, state.RUN) else dash.no_update
        runs = run_choices(data.list_runs(), run_id) if trigger == state.URL else dash.no_update
        return [*outputs, True if not url_read else dash.no_update, options, runs]

    @app.callback(Output(HAND_BOX, "style"), Output(CLASS_BOX, "style"), Output(CORRECT_BOX, "style"),
                  Output(INSPECT_BUTTON, "style"), Output(DOWNLOAD_BUTTON, "style"), Output(FILTER_NOTE, "children"),
                  Output(RUN_SUMMARY, "children"), Output(RUN_MESSAGE, "children"),
                  *[Output(f"tab-{view.VIEW_ID}", "disabled") for view in views.VIEWS],
                  Input(state.RUN, "value"))
    def show_run(run_id):
        return run_facts(run_id)

    @app.callback(Output(RUN_INFO, "children"), Output(RUN_INFO_BOX, "style"), Input(state.RUN, "value"))
    def describe_run(run_id):
        return run_info_panel(run_id)

    @app.callback(Output(FILTER_COUNT, "children"), *state.FILTER_INPUTS)
    def count_filtered(run_id, classes, splits, hands, correctness):
        try:
            run = data.get_run(run_id)
            frame = data.filtered_examples(run, classes, splits, hands, correctness)
        except runformat.RunError:
            return ""
        noun = "example" if run.manifest.is_classification else "document"
        return f"{len(frame):,} {noun}{'' if len(frame) == 1 else 's'}"

    @app.callback(Output(SELECTION_BAR, "children"), state.SELECTED_INPUT, Input(state.RUN, "value"))
    def describe_selection(selected, run_id):
        return selection_text(run_id, selected)

    @app.callback(Output(state.TABS, "value", allow_duplicate=True), Input(INSPECT_BUTTON, "n_clicks"),
                  prevent_initial_call=True)
    def inspect_selection(n_clicks):
        return "inspector"

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True),
                  Output(state.CLASS, "value", allow_duplicate=True), Output(FINDER_NOTE, "children"),
                  Input(FINDER, "n_submit"), State(FINDER, "value"), State(state.RUN, "value"),
                  State(state.CLASS, "value"), prevent_initial_call=True)
    def find(_submit, text, run_id, classes):
        return find_target(run_id, text, classes)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(CLEAR_BUTTON, "n_clicks"),
                  prevent_initial_call=True)
    def clear_selection(n_clicks):
        return None

    @app.callback(Output(state.CHOSEN, "data", allow_duplicate=True), Input(CLEAR_SET_BUTTON, "n_clicks"),
                  prevent_initial_call=True)
    def clear_chosen(n_clicks):
        return None

    @app.callback(Output(state.CHOSEN, "data", allow_duplicate=True), Input(state.RUN, "value"),
                  prevent_initial_call=True)
    def forget_chosen(run_id):             # another run's examples are other examples
        return None

    @app.callback(Output(CHOSEN_TEXT, "children"), Output(CLEAR_SET_BUTTON, "style"), state.CHOSEN_INPUT,
                  Input(state.RUN, "value"))
    def describe_chosen(chosen, run_id):
        text = chosen_text(run_id, chosen)
        return text, None if text else {"display": "none"}

    @app.callback(Output(DOWNLOAD, "data"), Input(DOWNLOAD_BUTTON, "n_clicks"),
                  *[State(i.component_id, i.component_property) for i in state.FILTER_INPUTS],
                  prevent_initial_call=True)
    def download_csv(n_clicks, run_id, classes, splits, hands, correctness):
        try:
            run = data.get_run(run_id)
            frame = data.filtered_examples(run, classes, splits, hands, correctness)
        except runformat.RunError:
            return dash.no_update               # the page already says why the run cannot be read
        return export.send_csv(frame, f"{run.run_id}-examples.csv")       # formulas neutralised


def sync_state(search: str | None, values, trigger, params) -> list:
    """The body of the URL sync callback (a pure function of its inputs, for tests).

    Returns ``[search, *values]`` with ``dash.no_update`` wherever nothing changes, so the cycle
    URL -> controls -> URL stops after one round.
    """
    current = {p.component_id: v for p, v in zip(params, values)}
    keep = [dash.no_update] * len(params)
    if trigger in (None, state.URL):
        wanted = state.decode_search(search, params)
        if wanted.get(state.RUN) is None:            # no run in the URL: keep the picker's
            wanted[state.RUN] = current.get(state.RUN)
        return [dash.no_update] + [wanted[p.component_id] if wanted[p.component_id] != current[
            p.component_id] else dash.no_update for p in params]
    if trigger == state.RUN:                          # another run: its classes and examples differ
        outputs = list(keep)
        for i, param in enumerate(params):
            if param.component_id in (state.CLASS, state.SELECTED) and current[param.component_id]:
                current[param.component_id] = param.default
                outputs[i] = param.default
    else:
        outputs = keep
    new_search = state.encode_search(current, params)
    return [new_search if new_search != (search or "") else dash.no_update] + outputs


def run_choices(manifests: list[runformat.Manifest], wanted: str | None = None) -> list[dict]:
    """Run picker options, newest first; ``wanted`` is kept (marked) when it cannot be read."""
    options = [{"label": _run_label(m), "value": m.run_id} for m in manifests]
    if wanted and wanted not in {o["value"] for o in options}:
        options.append({"label": f"{wanted} (cannot be read)", "value": wanted})
    return options


def view_for(run_id: str | None, tab: str | None) -> str | None:
    """The view to show instead of ``tab`` when it does not apply to the run, or is no view at all
    (an unknown ``view=`` in the URL): the run's first view; None to keep ``tab``. A run that
    cannot be read keeps a known tab (its message shows there)."""
    current = next((view for view in views.VIEWS if tab == view.VIEW_ID), None)
    try:
        manifest = data.get_run(run_id).manifest
    except runformat.RunError:
        return None if current is not None or not views.VIEWS else views.VIEWS[0].VIEW_ID
    if current is not None and views.applies(current, manifest):
        return None
    return first_view_of(manifest)


def first_view_of(manifest: runformat.Manifest | None) -> str | None:
    """The first view (in tab order) that applies to the run; the first view when none is chosen."""
    usable = [view for view in views.VIEWS if views.applies(view, manifest)]
    return usable[0].VIEW_ID if usable else (views.VIEWS[0].VIEW_ID if views.VIEWS else None)


def class_options(run_id: str | None) -> list[dict]:
    """The class filter's options: a classifier's classes (a language model's "classes" are its
    vocabulary, not something its documents are labelled with: none)."""
    try:
        run = data.get_run(run_id)
    except runformat.RunError:
        return []
    return [{"label": name, "value": name} for name in run.classes] if run.manifest.is_classification else []


#: What ``run_facts`` returns, in order, before the tabs' disabled flags.
RUN_FACTS = ("hand_style", "class_style", "correct_style", "inspect_style", "download_style", "note",
             "summary", "message")


def run_facts(run_id: str | None) -> list:
    """For a run: the hand, class and correctness filters', the Inspect and Download CSV buttons'
    visibility, a note on what the filters cannot do, the summary, the error message and the tab
    states.

    The controls shown are the ones the run's kind uses. A language model's documents have no class
    and no verdict: those filters, Inspect (its view is for classifiers) and the examples CSV are
    hidden. A classifier without predictions keeps the class filter; the correctness filter is
    hidden and the note says why. With no run, or one that cannot be read, only the split filter
    shows (and the message)."""
    hidden = {"display": "none"}
    disabled_all = [False] * len(views.VIEWS)
    if not run_id:
        message = _choose_message(data.list_runs())
        return [hidden, hidden, hidden, hidden, hidden, None, None, message, *disabled_all]
    try:
        run = data.get_run(run_id)
        data.examples(run)
    except runformat.RunError as error:
        return [hidden, hidden, hidden, hidden, hidden, None, None, str(error), *disabled_all]
    manifest = run.manifest
    classifier = manifest.is_classification
    verdicts = classifier and data.has_verdicts(run)
    note = None
    if classifier and not verdicts:
        note = f"{data.no_predictions_message(manifest)}: the correct/misclassified filter does not apply"
    shown = None if classifier else hidden
    return [None if data.has_hand_usage(run) else hidden, shown, None if verdicts else hidden, shown, shown,
            note, _summary(run), None, *[not views.applies(view, manifest) for view in views.VIEWS]]


def _summary(run: runformat.Run) -> str:
    manifest = run.manifest
    n = manifest.n_examples or len(data.examples(run))
    if manifest.is_classification:
        parts = [f"{n:,} examples", f"{len(run.classes)} classes"]
    else:
        steps = int(data.examples(run)["length"].sum())
        parts = [f"{n:,} document{'s' if n != 1 else ''}", f"{steps:,} steps"]
    if manifest.origin != "trained":
        parts.append(manifest.origin)
    metrics = manifest.metrics
    parts += [f"{split} accuracy {metrics[split]['accuracy']:.1%}" for split in state.SPLITS
              if isinstance(metrics.get(split), dict) and metrics[split].get("accuracy") is not None]
    return " · ".join(parts)


def run_info_panel(run_id: str | None) -> tuple[list, dict | None]:
    """The run-info panel's sections for a run, and its box's style (hidden without a manifest).
    A run being built shows what its manifest records so far."""
    try:
        manifest: runformat.Manifest | None = data.get_run(run_id).manifest
    except runformat.RunError:
        manifest = next((m for m in data.list_runs() if m.run_id == run_id), None)
    if manifest is None:
        return [], {"display": "none"}
    return run_info.run_info(manifest), None


FINDER_LISTED = 5


def find_target(run_id: str | None, text: str | None, classes: list | None) -> tuple:
    """What the finder's text names: ``(selected example, class filter, note)``, ``dash.no_update``
    where nothing changes. An example id (``12`` or ``#12``) selects that example; a sign's name
    (a classifier's class: exact, else the one class whose name contains the text, any case) is
    added to the class filter; a language model's text picks the first document whose name
    contains it."""
    keep = dash.no_update
    query = (text or "").strip()
    if not query:
        return keep, keep, ""
    try:
        run = data.get_run(run_id)
        frame = data.examples(run)
    except runformat.RunError as error:
        return keep, keep, str(error)
    digits = query.lstrip("#")
    if digits.isdigit():
        example_id = int(digits)
        if data.example_row(run, example_id) is None:
            return keep, keep, f"no example {example_id} in this run"
        return example_id, keep, ""
    lowered = query.lower()
    if not run.manifest.is_classification:
        hits = frame[frame["name"].astype(str).str.lower().str.contains(lowered, regex=False)]
        if not len(hits):
            return keep, keep, f"no document named like {query[:40]!r}"
        return int(hits["example_id"].iat[0]), keep, (f"{len(hits)} documents match; the first chosen"
                                                     if len(hits) > 1 else "")
    names = list(run.classes)
    exact = [name for name in names if name.lower() == lowered]
    hits = exact or [name for name in names if lowered in name.lower()]
    if not hits:
        return keep, keep, f"no sign or example {query[:40]!r} in this run"
    if len(hits) > 1:
        shown = ", ".join(hits[:FINDER_LISTED]) + (" …" if len(hits) > FINDER_LISTED else "")
        return keep, keep, f"{len(hits)} signs match: {shown}"
    chosen = list(classes or [])
    return keep, (chosen + [hits[0]] if hits[0] not in chosen else keep), ""


def chosen_text(run_id: str | None, chosen: list | None) -> str:
    """What the selection bar says of a set chosen by box or lasso ("" without one)."""
    if not chosen:
        return ""
    n = len(chosen) if isinstance(chosen, list) else 0
    return (f"{n:,} example{'' if n == 1 else 's'} chosen by box or lasso: the paths, last activations "
            f"and the examples table show them")


def selection_text(run_id: str | None, selected: int | None) -> str:
    if selected is None:
        return "No example selected: click one in a view."
    try:
        row = data.example_row(data.get_run(run_id), int(selected))
    except runformat.RunError:
        row = None
    if row is None:
        return f"Example {selected} is not in this run."
    if "label" not in row:
        return f"Selected: document {int(row['example_id'])}, {row['name']} ({row['split']})"
    if "correct" not in row:
        return f"Selected: example {int(row['example_id'])}, {row['label']} ({row['split']})"
    verdict = "correct" if bool(row["correct"]) else f"misclassified as {row['prediction']}"
    return f"Selected: example {int(row['example_id'])}, {row['label']} ({row['split']}, {verdict})"

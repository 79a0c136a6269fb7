"""Controls several views share: the LSTM layer picker and the time-alignment switch.

Not a view (the registry imports only the modules it lists). The layer picker's options come
from the run, so it is a RadioItems, not a Dropdown: a Dropdown drops a value (from the URL) that
is not among its options yet (plotly/dash#3004). The last layer's value is ``"last"`` so the
default means the same in every run; the others are the index as text (as the URL gives it).
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from dashboard import data
from dashboard.figures.alignment import ALIGNMENTS
from pipeline import runformat

HIDDEN = {"display": "none"}
GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def field(label: str, control, id: str | None = None, style: dict | None = None) -> html.Div:
    extra = {"id": id} if id else {}
    return html.Div(className="field", style=style, children=[html.Label(label), control], **extra)


LAST_LAYER = "last"


def layer_picker(component_id: str) -> html.Div:
    """Layer radio items in a field whose id is ``{component_id}-box`` (hidden for one layer)."""
    return field("Layer", dcc.RadioItems(id=component_id, options=[], value=LAST_LAYER, inline=True),
                 id=f"{component_id}-box", style=HIDDEN)


def layer_options(run_id: str | None) -> tuple[list[dict], dict | None]:
    """The picker's options for a run, and its field's style (hidden unless there are 2+ layers)."""
    try:
        layers = data.get_run(run_id).layers
    except runformat.RunError:
        return [], HIDDEN
    options = [{"label": f"{layer.index} ({layer.units} units)", "value": str(layer.index)}
               for layer in layers]
    if options:
        options[-1] = {"label": options[-1]["label"] + ", last", "value": LAST_LAYER}
    return options, (None if len(options) > 1 else HIDDEN)


def ticked_layer(options: list[dict] | None, current):
    """The layer picker's value once its options follow a run: ``current`` if it is one of them,
    else the last layer, which is what ``chosen_layer`` draws for it (another run's layer, a
    URL's ``1`` for a run whose layer 1 is its last): the picker never shows nothing ticked."""
    values = [option["value"] for option in options or []]
    return dash.no_update if not values or current in values else LAST_LAYER


def register_layer_tick(app: dash.Dash, picker_id: str) -> None:
    """Keeps ``picker_id``'s value among its options (``ticked_layer``) whenever they change."""
    @app.callback(Output(picker_id, "value", allow_duplicate=True), Input(picker_id, "options"),
                  State(picker_id, "value"), prevent_initial_call=True)
    def tick_layer(options, current):
        return ticked_layer(options, current)


def chosen_layer(run: runformat.Run, value) -> int:
    """The picked layer if the run has it, else the last layer."""
    indices = [layer.index for layer in run.layers]
    try:
        index = int(value)
    except (TypeError, ValueError):
        return data.last_layer(run)
    return index if index in indices else data.last_layer(run)


def alignment_switch(component_id: str, value: str = "end") -> html.Div:
    return field("Align", dcc.RadioItems(
        id=component_id, value=value, inline=True,
        options=[{"label": "at the end" if key == "end" else "at the start", "value": key}
                 for key in ALIGNMENTS]))


TENSOR_NAMES = {"h": "h (hidden state)", "c": "c (cell state)", "input_gate": "input gate",
                "forget_gate": "forget gate", "candidate": "candidate", "output_gate": "output gate"}


#: The states choice's value for the run's first projected pair: ticked from the start, and kept out
#: of the URL (ticking the pair itself would write every view's choice into every page's URL).
FIRST_STATES = ""


def states_picker(component_id: str) -> html.Div:
    """The choice of which layer's tensor the projections picture (``"layer:tensor"`` values, the
    first pair ``FIRST_STATES``), with a note ``{component_id}-note`` saying what the run has."""
    return field("States", html.Div(className="states-choice", children=[
        dcc.RadioItems(id=component_id, options=[], value=FIRST_STATES, inline=True),
        html.Span(id=f"{component_id}-note", className="hint")]), id=f"{component_id}-box")


def states_label(pair: str, last: int | None) -> str:
    layer, _, tensor = pair.partition(":")
    suffix = " (last)" if layer.isdigit() and int(layer) == last else ""
    return f"layer {layer}{suffix} · {TENSOR_NAMES.get(tensor, tensor)}"


def states_options(run_id: str | None, scope: str | None = None, dims: int | None = None) -> tuple[list[dict], str]:
    """The states choice's options for a run (the layer and tensor pairs its projections picture)
    and the note: with one pair, that the pipeline projects one layer's one tensor per run and
    how to picture another."""
    try:
        run = data.get_run(run_id)
    except runformat.RunError:
        return [], ""
    pairs = data.projection_states(run.manifest, scope, dims)
    last = data.last_layer(run) if run.layers else None
    options = [{"label": states_label(pair, last), "value": FIRST_STATES if i == 0 else pair}
               for i, pair in enumerate(pairs)]
    if len(pairs) != 1:
        return options, ""
    layers = len(run.layers)
    return options, (f"the projections picture this one tensor{' of ' + str(layers) + ' layers' if layers > 1 else ''}: "
                     f"the pipeline projects one layer's one tensor per run (`python -m pipeline project "
                     f"{run.run_id} --layer L --state c` pictures another instead)")


def pictured(run: runformat.Run, projection_id: str) -> str:
    """What a 2-D path projection pictures ("layer 0 · c (cell state)"), for a title; "" when the
    run's 2-D path projections picture one pair only (nothing to tell apart)."""
    if len(data.projection_states(run.manifest, "paths", 2)) < 2:
        return ""
    entry = next(e for e in run.manifest.projections if str(e.get("id")) == projection_id)
    return states_label(data.projection_state(entry), data.last_layer(run))


def chosen_states(manifest: runformat.Manifest, value, scope: str | None = None) -> str | None:
    """The states pair picked if the run's projections picture it, else (``FIRST_STATES``, None or
    a pair the run lacks) the first they picture."""
    pairs = data.projection_states(manifest, scope)
    return value if value in pairs else (pairs[0] if pairs else None)

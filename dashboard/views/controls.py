"""Controls several views share: the LSTM layer picker and the time-alignment switch.

Not a view (the registry imports only the modules it lists). The layer picker's options come
from the run, so it is a RadioItems, not a Dropdown: a Dropdown drops a value (from the URL) that
is not among its options yet (plotly/dash#3004). The last layer's value is ``"last"`` so the
default means the same in every run; the others are the index as text (as the URL gives it).
"""

from __future__ import annotations

from dash import dcc, html

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

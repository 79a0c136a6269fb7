"""Examples table (as LIT has): one row per filtered example, sortable and filterable in the page.

Columns: id, sign, split, signer and session (when the run has them), length, prediction,
confidence and correct (when it recorded predictions). It follows the filter bar and a set chosen
by box or lasso in the paths or last activations views; clicking a row selects that example
everywhere (the app's selection store), and the selected example's row is marked. Sorting and
filtering of the columns happen in the browser (DataTable's native sort and filter: ``> 0.9`` in
the confidence column, ``false`` in correct, ``drink`` in sign).
"""

from __future__ import annotations

import dash
from dash import Input, Output, dash_table, dcc, html

from dashboard import data, filters, state
from dashboard.views import is_hidden
from pipeline import runformat

VIEW_ID = "examples"
TITLE = "Examples table"

TABLE = "examples-table"
NOTE = "examples-note"
PAGE_SIZE = 25

#: ``(column in data.examples, header, DataTable type)``, in the table's order; a column the run
#: lacks is left out.
COLUMNS = (("example_id", "id", "numeric"), ("label", "sign", "text"), ("split", "split", "text"),
           ("signer", "signer", "text"), ("session", "session", "numeric"),
           ("length", "length", "numeric"), ("prediction", "prediction", "text"),
           ("confidence", "confidence", "numeric"), ("correct", "correct", "text"))


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            html.Span(id=NOTE, className="hint"),
            html.Span("Click a row to select its example; sort by a column's arrows, filter under its "
                      "header (e.g. < 0.5 for confidence, false for correct).", className="hint"),
        ]),
        dcc.Loading(delay_show=300, children=dash_table.DataTable(
            id=TABLE, columns=[], data=[], sort_action="native", sort_mode="multi",
            filter_action="native", page_action="native", page_size=PAGE_SIZE,
            style_table={"overflowX": "auto"}, style_cell={"fontSize": "13px", "padding": "3px 8px",
                                                            "textAlign": "left"},
            style_header={"fontWeight": "bold"}, cell_selectable=True)),
    ])


#: The request guard's check of a click in the table: the cell must name an example of the run.
VALUE_CHECKS = {(TABLE, "active_cell"): filters.table_cell}


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(TABLE, "columns"), Output(TABLE, "data"), Output(TABLE, "style_data_conditional"),
                  Output(NOTE, "children"), *state.FILTER_INPUTS, state.TAB_INPUT, state.SELECTED_INPUT,
                  state.CHOSEN_INPUT)
    def fill(run_id, classes, splits, hands, correctness, tab, selected, chosen=None):
        if is_hidden(VIEW_ID, tab):
            return [dash.no_update] * 4
        return table_rows(run_id, classes, splits, hands, correctness, selected, chosen)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(TABLE, "active_cell"),
                  prevent_initial_call=True)
    def select(cell):
        return example_of_cell(cell)


def table_rows(run_id, classes, splits, hands, correctness, selected, chosen=None) -> list:
    """``[columns, rows, row styles, note]`` of the table for the filter bar's values, the chosen
    set (None: no set) and the selected example (its row marked)."""
    try:
        run = data.get_run(run_id)
        classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
        selected = filters.example_id(run, selected)
        chosen = filters.example_ids(run, chosen)
        frame = data.filtered_examples(run, classes, splits, hands, correctness)
    except runformat.RunError as error:
        return [[], [], [], str(error)]
    if chosen is not None:
        frame = frame[frame["example_id"].isin(chosen)]
    present = [(column, header, kind) for column, header, kind in COLUMNS if column in frame]
    columns = [{"name": header, "id": header, "type": kind,
                **({"format": {"specifier": ".3f"}} if header == "confidence" else {})}
               for _, header, kind in present]
    part = frame[[column for column, _, _ in present]].copy()
    part.columns = [header for _, header, _ in present]
    if "correct" in part:
        part["correct"] = part["correct"].map({True: "true", False: "false"})
    if "confidence" in part:
        part["confidence"] = part["confidence"].astype(float).round(4)
    part["id"] = part["id"].astype(int)
    rows = part.astype(object).where(part.notna(), None).to_dict("records")
    styles = [{"if": {"filter_query": "{correct} = false"}, "backgroundColor": "#fff1f0"}]
    if selected is not None:
        styles.append({"if": {"filter_query": f"{{id}} = {int(selected)}"}, "backgroundColor": "#fde68a",
                       "fontWeight": "bold"})
    where = " in the chosen set (Clear in the filter bar drops it)" if chosen is not None else ""
    note = f"{len(rows):,} examples{where}, as the filter bar lets through"
    return [columns, rows, styles, note]


def example_of_cell(cell) -> int | None:
    """The example a click on a table cell names (its row's id), or no update."""
    if not isinstance(cell, dict):
        return dash.no_update
    row_id = cell.get("row_id")
    return row_id if isinstance(row_id, int) and not isinstance(row_id, bool) else dash.no_update

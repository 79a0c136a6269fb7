"""What the server answers when a callback request is bad or a callback fails: never a traceback.

Two parts:

- ``on_callback_error`` is Dash's ``on_error`` handler (``Dash(on_error=...)``, dash >= 2.18): a
  callback that raises gets a short message in its figure and text outputs instead (a run file
  that cannot be read: "Cannot read this run: ..."; anything else: "This view failed ..."), the
  traceback goes to the server's log, and the other outputs keep their values.
- ``guard_callbacks(app)`` wraps Dash's callback endpoint (``/_dash-update-component``) for what
  on_error cannot do: a request that is not what the page sends (not JSON, an output no callback
  has, inputs that do not match the callback's, a value of a type the page never sends for that
  property, more than ``MAX_ITEMS`` values, over ``MAX_BYTES``) gets 400 / 413 with a JSON
  ``{"error": ...}`` before any callback runs; a value of the right type that the page would
  still not send for the request's run (a class, split, example id, layer, choice or epoch the run
  lacks: ``dashboard.filters``) gets that view's usual message in its figures and texts, before any
  callback runs; and a run rewritten while a callback read it
  (``runformat.RunChanged``, which on_error passes on) makes the callback run once more, against
  the new version.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping

import dash
import flask
import plotly.utils
import pyarrow as pa
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import HTTPException

from dashboard import filters
from dashboard.figures import message_figure
from pipeline import runformat

MAX_BYTES = 1 << 20          # a real callback request is a few kB
MAX_ITEMS = 20_000           # values in one request (lists, dicts and scalars, counted deep)
MAX_DEPTH = 32
WILDCARDS = ('["ALL"]', '["MATCH"]', '["ALLSMALLER"]')
REWRITTEN = "This run is being rewritten; reload the page in a moment."
FAILED = "This view failed on these settings; the server log has the details."
UNREADABLE = (runformat.RunError, pa.ArrowException, OSError)

log = logging.getLogger("lstm_lens.errors")


class BadCallbackRequest(ValueError):
    """A callback request the page would never send; the message says which part is wrong."""


# -- callback failures (Dash's on_error) -----------------------------------------------------------

def on_callback_error(error: Exception):
    """Dash's ``on_error``: the failed callback's outputs become a message (see the module
    docstring). ``RunChanged`` is raised on, for the guard to run the callback again."""
    if isinstance(error, runformat.RunChanged):
        raise error
    where = _callback_name()
    if isinstance(error, UNREADABLE):
        log.warning("callback %s: cannot read the run: %s", where, error)
        text = f"Cannot read this run: {error}"
    else:
        log.error("callback %s failed", where, exc_info=error)
        text = FAILED
    return outputs_saying(text)


def _callback_name() -> str:
    try:
        return ", ".join(f"{o['id']}.{o['property']}" for o in _flatten(dash.callback_context.outputs_list))
    except Exception:        # noqa: BLE001 - only for the log line
        return "?"


def shows_figure(output: dict) -> bool:
    """A graph's figure, or a store named ``*-source`` holding a figure the browser expands
    before drawing it (the film's): both get a message figure."""
    prop = output.get("property")
    return prop == "figure" or (prop == "data" and str(output.get("id", "")).endswith("-source"))


def outputs_saying(text: str):
    """The current callback's return value with ``text`` in every figure and text output and no
    update elsewhere, shaped like its outputs (one value, or a list)."""
    spec = dash.callback_context.outputs_list

    def value(output):
        if isinstance(output, list):                     # a pattern-matching output: one per match
            return [value(item) for item in output]
        if shows_figure(output):
            return message_figure(text)
        if output.get("property") == "children":
            return text
        return dash.no_update

    return [value(output) for output in spec] if isinstance(spec, list) else value(spec)


# -- the request guard ---------------------------------------------------------------------------

def guard_callbacks(app: dash.Dash, checks: Mapping[tuple[str, str], filters.Check] | None = None) -> None:
    """Wrap the Dash callback view of ``app`` (see the module docstring). ``checks``: the value
    checks of the views (``views.value_checks()``), beside ``filters.SHARED`` and a ``one_of``
    for every control whose options are fixed in the layout (``option_checks``)."""
    endpoint = app.config.routes_pathname_prefix + "_dash-update-component"
    dispatch = app.server.view_functions[endpoint]
    kinds: dict = {}
    value_checks: dict = {}

    @functools.wraps(dispatch)
    def guarded(*args, **kwargs):
        if not kinds:
            kinds.update(value_kinds(app))
            value_checks.update({**option_checks(app), **filters.SHARED, **(checks or {})})
        try:
            body = read_body(app, kinds)
        except BadCallbackRequest as error:
            log.warning("rejected a callback request: %s", error)
            return error_response(str(error), 400)
        refusal = filters.check_request(body, value_checks)
        if refusal is not None:                # before any callback runs: no work for a forged value
            log.info("refused a callback request (%s): %s", str(body["output"])[:200], refusal)
            return message_response(body, refusal)
        for attempt in (1, 2):
            try:
                return dispatch(*args, **kwargs)
            except (PreventUpdate, HTTPException):
                raise
            except runformat.RunChanged:
                if attempt == 2:
                    return message_response(body, REWRITTEN)
            except Exception:   # noqa: BLE001 - on_error failed itself, or Dash refused an answer
                log.exception("callback %s failed", body["output"])
                return error_response("the callback failed; the server log has the details", 500)
        raise AssertionError("unreachable")

    app.server.view_functions[endpoint] = guarded


def value_kinds(app: dash.Dash) -> dict:
    """``{(component id, property): JSON types}`` the page sends, from the layout's initial values:
    a list stays a list, text stays text, a number stays a number (or text, as a number box may
    send), a dict stays a dict; None (or a property the layout does not set) says nothing. Any
    property may also be null."""
    layout = app.layout() if callable(app.layout) else app.layout
    kinds = {}
    for props in _component_props(json.loads(json.dumps(layout, cls=plotly.utils.PlotlyJSONEncoder))):
        for prop, value in props.items():
            if prop in ("id", "children") or value is None:
                continue
            if isinstance(value, bool):
                kinds[(props["id"], prop)] = (bool,)
            elif isinstance(value, (int, float)):
                kinds[(props["id"], prop)] = (int, float, str)
            elif isinstance(value, str):
                kinds[(props["id"], prop)] = (str,)
            elif isinstance(value, list):
                kinds[(props["id"], prop)] = (list,)
            elif isinstance(value, dict):
                kinds[(props["id"], prop)] = (dict,)
    return kinds


def option_checks(app: dash.Dash) -> dict:
    """``{(component id, "value"): filters.one_of(...)}`` for every control whose options are set
    in the layout and never by a callback (radio items, checklists, dropdowns with fixed choices):
    its value must be one of them. Controls whose options come from the run (a layer picker, the
    class filter) are checked by ``filters.SHARED`` and the views' ``VALUE_CHECKS``."""
    layout = app.layout() if callable(app.layout) else app.layout
    written = {(part.rsplit(".", 1)[0], part.rsplit(".", 1)[1].split("@")[0])
               for key in app.callback_map for part in key.strip(".").split("...") if "." in part}
    checks = {}
    for props in _component_props(json.loads(json.dumps(layout, cls=plotly.utils.PlotlyJSONEncoder))):
        options = props.get("options")
        if not isinstance(options, list) or not options or (props["id"], "options") in written:
            continue
        allowed = [option.get("value") if isinstance(option, dict) else option for option in options]
        if all(isinstance(value, (str, int, float)) for value in allowed):
            checks[(props["id"], "value")] = filters.one_of(*allowed)
    return checks


def _component_props(node):
    """The props of every component with a text id in a layout's JSON."""
    if isinstance(node, list):
        for child in node:
            yield from _component_props(child)
    elif isinstance(node, dict) and "props" in node:
        props = node["props"]
        if isinstance(props.get("id"), str):
            yield props
        for value in props.values():
            yield from _component_props(value)


def read_body(app: dash.Dash, kinds: dict | None = None) -> dict:
    """The request's JSON body, checked against the app's callback map (and, with ``kinds``
    from ``value_kinds``, its values against the types the page sends)."""
    length = flask.request.content_length
    if length is not None and length > MAX_BYTES:
        flask.abort(413)
    raw = flask.request.get_data(cache=True)
    if len(raw) > MAX_BYTES:
        flask.abort(413)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadCallbackRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadCallbackRequest("the body is not a JSON object")
    check_size(body)
    output = body.get("output")
    callback = app.callback_map.get(output) if isinstance(output, str) else None
    if callback is None:
        raise BadCallbackRequest(f"no callback has the output {str(output)[:200]!r}")
    for key in ("inputs", "state"):
        check_dependencies(key, body.get(key, []), callback.get(key, []))
        check_values(key, body.get(key, []), kinds or {})
    outputs = body.get("outputs")
    if not isinstance(outputs, (dict, list)) or not all(
            _is_dependency(item) for item in _flatten(outputs)):
        raise BadCallbackRequest("'outputs' must be {id, property} objects")
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(prop, str) for prop in changed):
        raise BadCallbackRequest("'changedPropIds' must be a list of strings")
    return body


def check_size(value, depth: int = 0, budget: list | None = None) -> None:
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise BadCallbackRequest(f"the request holds more than {MAX_ITEMS:,} values")
    if depth > MAX_DEPTH:
        raise BadCallbackRequest(f"the request is nested deeper than {MAX_DEPTH} levels")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        check_size(child, depth + 1, budget)


def check_dependencies(key: str, given, declared: list[dict]) -> None:
    """``given`` (the request's inputs or state) must match the callback's ids and properties."""
    if not isinstance(given, list) or len(given) != len(declared):
        raise BadCallbackRequest(f"'{key}' must list {len(declared)} values for this callback")
    for item, expected in zip(given, declared):
        if expected["id"].startswith("{") and any(w in expected["id"] for w in WILDCARDS):
            items = item if isinstance(item, list) else [item]
            if not all(_is_dependency(i) and isinstance(i["id"], dict)
                       and i["property"] == expected["property"] for i in items):
                raise BadCallbackRequest(f"'{key}': expected {expected['id']}.{expected['property']}")
        elif not (_is_dependency(item) and item["id"] == expected["id"]
                  and item["property"] == expected["property"]):
            raise BadCallbackRequest(f"'{key}': expected {expected['id']}.{expected['property']}, got "
                                     f"{_describe(item)}")


def check_values(key: str, given: list, kinds: dict) -> None:
    """Each plain-id value must be null or of the JSON type the page sends for its property."""
    for item in given:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        expected = kinds.get((item["id"], item["property"]))
        value = item.get("value")
        if expected and value is not None and not isinstance(value, expected):
            raise BadCallbackRequest(f"'{key}': {item['id'][:100]}.{item['property'][:50]} is "
                                     f"{type(value).__name__}, the page sends "
                                     f"{' or '.join(t.__name__ for t in expected)}")


def _is_dependency(item) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("id"), (str, dict))
            and isinstance(item.get("property"), str))


def _flatten(outputs):
    items = outputs if isinstance(outputs, list) else [outputs]
    for item in items:
        yield from (item if isinstance(item, list) else [item])


def _describe(item) -> str:
    if _is_dependency(item):
        return f"{str(item['id'])[:100]}.{item['property'][:50]}"
    return type(item).__name__


def error_response(message: str, status: int) -> flask.Response:
    return flask.Response(json.dumps({"error": message}), status, mimetype="application/json")


def message_response(body: dict, message: str) -> flask.Response:
    """A Dash callback answer that puts ``message`` in every figure and text output of the
    request (other outputs keep their values)."""
    response: dict = {}
    for output in _flatten(body.get("outputs", [])):
        prop = output["property"]
        if shows_figure(output):
            value = json.loads(message_figure(message).to_json())
        elif prop == "children":
            value = message
        else:
            continue
        key = output["id"] if isinstance(output["id"], str) else json.dumps(
            output["id"], sort_keys=True, separators=(",", ":"))
        response.setdefault(key, {})[prop] = value
    if not response:
        return flask.Response(status=204)
    return flask.Response(json.dumps({"multi": True, "response": response}), 200,
                          mimetype="application/json")

"""What the server answers when a callback request is bad or a callback fails: never a traceback.

``guard_callbacks(app)`` wraps Dash's callback endpoint (``/_dash-update-component``):

- a request that is not what the page sends (not JSON, an output no callback has, inputs that do
  not match the callback's, more than ``MAX_ITEMS`` values, over ``MAX_BYTES``) gets 400 / 413
  with a JSON ``{"error": ...}`` before any callback runs;
- a run rewritten while a callback read it (``runformat.RunChanged``) makes the callback run once
  more, against the new version;
- a run file that cannot be read (corrupt or missing parquet: ``runformat.RunError`` or an Arrow/OS
  error a view did not catch) becomes a message in the callback's figures and text outputs, so
  the page says what is wrong and the other runs keep working;
- a callback that fails on its inputs (TypeError, ValueError, LookupError, ...) gets 400, any
  other failure 500, both as JSON with the traceback only in the server's log.
"""

from __future__ import annotations

import functools
import json
import logging

import dash
import flask
import pyarrow as pa
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import HTTPException

from pipeline import runformat

MAX_BYTES = 1 << 20          # a real callback request is a few kB
MAX_ITEMS = 20_000           # values in one request (lists, dicts and scalars, counted deep)
MAX_DEPTH = 32
BAD_INPUT = (TypeError, ValueError, LookupError, AttributeError)
WILDCARDS = ('["ALL"]', '["MATCH"]', '["ALLSMALLER"]')

log = logging.getLogger("lstm_lens.errors")


class BadCallbackRequest(ValueError):
    """A callback request the page would never send; the message says which part is wrong."""


def guard_callbacks(app: dash.Dash) -> None:
    """Wrap the Dash callback view of ``app`` (see the module docstring)."""
    endpoint = app.config.routes_pathname_prefix + "_dash-update-component"
    dispatch = app.server.view_functions[endpoint]

    @functools.wraps(dispatch)
    def guarded(*args, **kwargs):
        try:
            body = read_body(app)
        except BadCallbackRequest as error:
            log.warning("rejected a callback request: %s", error)
            return error_response(str(error), 400)
        for attempt in (1, 2):
            try:
                return dispatch(*args, **kwargs)
            except (PreventUpdate, HTTPException):
                raise
            except runformat.RunChanged:
                if attempt == 2:
                    return message_response(body, "This run is being rewritten; reload the page "
                                                  "in a moment.")
            except (runformat.RunError, pa.ArrowException, OSError) as error:
                log.warning("callback %s: cannot read the run: %s", body["output"], error)
                return message_response(body, f"Cannot read this run: {error}")
            except BAD_INPUT as error:
                log.warning("callback %s rejected its inputs", body["output"], exc_info=True)
                return error_response(f"the callback cannot use these inputs "
                                      f"({type(error).__name__})", 400)
            except Exception:   # noqa: BLE001 - the last line of defence: log it, answer JSON
                log.exception("callback %s failed", body["output"])
                return error_response("the callback failed; the server log has the details", 500)
        raise AssertionError("unreachable")

    app.server.view_functions[endpoint] = guarded


def read_body(app: dash.Dash) -> dict:
    """The request's JSON body, checked against the app's callback map."""
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
    from dashboard.figures import message_figure
    response: dict = {}
    for output in _flatten(body.get("outputs", [])):
        prop = output["property"]
        if prop == "figure":
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

"""The dashboard's shared state: component ids every view uses, and the URL that holds the state.

The URL's query string is the state (run, view, filters, selection and each view's options), so a
link reproduces what one sees. ``encode_search`` and ``decode_search`` convert between the query
string and ``{component_id: value}``; the shell keeps the two in step in ONE callback (Dash allows
a cycle only inside a single callback), see ``dashboard.layout.register_shell_callbacks``.

A view that wants its options in the URL lists them as ``URL_PARAMS = [UrlParam(...), ...]`` in its
module; the shell picks them up from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence
from urllib.parse import parse_qs, urlencode

from dash import Input

# -- shared component ids (the framework contract) --------------------------------------------
URL = "url"                          # dcc.Location
RUN = "run-picker"                   # dcc.Dropdown, value: run id
CLASS = "filter-class"               # dcc.Dropdown(multi), value: list of class names ([] = all)
SPLIT = "filter-split"               # dcc.Checklist, value: subset of SPLITS
HAND = "filter-hand"                 # dcc.Checklist, value: subset of HANDS (hidden without hand data)
CORRECT = "filter-correct"           # dcc.RadioItems, value: one of CORRECTNESS
SELECTED = "selected-example"        # dcc.Store, data: int example_id or None
CHOSEN = "chosen-examples"           # dcc.Store, data: list of example ids (a box or lasso's) or None
TABS = "view-tabs"                   # dcc.Tabs, value: a view id

SPLITS = ("train", "validation", "test")
HANDS = ("one-handed", "two-handed")
CORRECTNESS = ("all", "correct", "misclassified")

#: The inputs every filtered view listens to, in this order:
#: ``run_id, classes, splits, hands, correctness``.
FILTER_INPUTS = [Input(RUN, "value"), Input(CLASS, "value"), Input(SPLIT, "value"),
                 Input(HAND, "value"), Input(CORRECT, "value")]
#: The active tab: a view's callback returns ``dash.no_update`` while its tab is hidden
#: (see ``dashboard.views.is_hidden``) so only the visible view does work.
TAB_INPUT = Input(TABS, "value")
SELECTED_INPUT = Input(SELECTED, "data")
#: A set of examples chosen by box or lasso selection (None: no set): the views that draw or list
#: examples show it (``dashboard.views.examples_table``, paths, last activations).
CHOSEN_INPUT = Input(CHOSEN, "data")


@dataclass(frozen=True)
class UrlParam:
    """One query parameter bound to one component property.

    ``kind``: "str" (one value), "list" (repeated key), "int" (or None) or "bool" ("1"/"0";
    the component value is a bool, or for a Checklist used as a switch a list such as ["on"] —
    give ``on_value`` then).
    """

    key: str
    component_id: str
    prop: str
    default: Any
    kind: str = "str"
    on_value: Any = None

    def to_text(self, value) -> list[str] | None:
        """Query values for ``value``, or None when it is the default (kept out of the URL)."""
        if value is None or _same(value, self.default):
            return None
        if self.kind == "list":
            return [str(v) for v in value] or ["-"]       # "-": explicitly nothing chosen
        if self.kind == "bool":
            return ["1" if self._truth(value) else "0"]
        return [str(value)]

    def from_text(self, texts: Sequence[str] | None):
        if not texts:
            return self.default
        try:
            if self.kind == "list":
                return [] if list(texts) == ["-"] else list(texts)
            if self.kind == "int":
                return int(texts[0])
            if self.kind == "bool":
                on = texts[0] in ("1", "true", "on")
                if self.on_value is not None:
                    return [self.on_value] if on else []
                return on
        except ValueError:
            return self.default
        return texts[0]

    def _truth(self, value) -> bool:
        return bool(value) if self.on_value is None else self.on_value in (value or [])


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


#: The shell's own parameters; views add theirs via ``URL_PARAMS``.
SHELL_PARAMS = [
    UrlParam("run", RUN, "value", None),
    UrlParam("view", TABS, "value", "paths"),
    UrlParam("class", CLASS, "value", [], "list"),
    UrlParam("split", SPLIT, "value", list(SPLITS), "list"),
    UrlParam("hand", HAND, "value", list(HANDS), "list"),
    UrlParam("correct", CORRECT, "value", "all"),
    UrlParam("example", SELECTED, "data", None, "int"),
]


def encode_search(values: dict, params: Sequence[UrlParam]) -> str:
    """``{component_id: value}`` -> ``"?run=...&class=a&class=b"`` ("" when all are defaults)."""
    pairs = []
    for param in params:
        texts = param.to_text(values.get(param.component_id))
        if texts is not None:
            pairs += [(param.key, text) for text in texts]
    return "?" + urlencode(pairs) if pairs else ""


def decode_search(search: str | None, params: Sequence[UrlParam]) -> dict:
    """``"?run=..."`` -> ``{component_id: value}`` for every param (defaults where absent)."""
    query = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
    return {param.component_id: param.from_text(query.get(param.key)) for param in params}


def example_from_click(click_data: dict | None) -> int | None:
    """The example id a click on a figure points at: figures put it in each point's customdata
    (a scalar, or the first element of a list)."""
    if not click_data or not click_data.get("points"):
        return None
    custom = click_data["points"][0].get("customdata")
    if isinstance(custom, (list, tuple)):
        custom = custom[0] if custom else None
    try:
        return None if custom is None else int(custom)
    except (TypeError, ValueError):
        return None

"""The view registry: one module per view, listed in tab order.

A view module exposes:
    VIEW_ID: str                      the tab value and URL ``view=`` value
    TITLE: str                        the tab label
    layout() -> Component             static layout; its callbacks fill it
    register_callbacks(app) -> None   the view's callbacks
    applies_to(manifest) -> bool      optional; False disables the tab for that run (without
                                      it, the view is for classification runs only). It decides
                                      from what the run HAS (its kind, tensors, projections,
                                      files: ``runformat.Manifest``), never from its origin
    URL_PARAMS: list[state.UrlParam]  optional; view options kept in the URL
    VALUE_CHECKS: dict                optional; ``{(component id, prop): check}`` for the view's
                                      controls whose values depend on the run (a layer picker, an
                                      epoch slider, options set by a callback): see
                                      ``dashboard.filters`` (fixed choices are checked by themselves)

Conventions for a view's callbacks (see dashboard.state): listen to ``*state.FILTER_INPUTS``
(run_id, classes, splits, hands, correctness) and ``state.TAB_INPUT``; return ``dash.no_update``
while ``is_hidden(VIEW_ID, tab)``; read data through ``dashboard.data`` (``data.get_run(run_id)``,
``data.filtered_examples(run, classes, splits, hands, correctness)``); catch ``runformat.RunError``
and show ``dashboard.figures.message_figure(str(error))``; the messages for what a run lacks are
``data.no_projections_message`` / ``data.no_predictions_message`` (worded for the run's origin).
A failure a view does not catch becomes a short message too (``dashboard.errors``). A click on an example writes
``Output(state.SELECTED, "data", allow_duplicate=True)`` (with ``prevent_initial_call=True``);
figures put the example id in each point's ``customdata`` so ``state.example_from_click`` reads it.
Component ids inside a view start with its VIEW_ID (``paths-graph``) so views never collide.
"""

from __future__ import annotations

from types import ModuleType

from dashboard import filters
from pipeline import runformat


def applies(view: ModuleType, manifest: runformat.Manifest | None) -> bool:
    """Whether ``view`` can show the run; a view without ``applies_to`` is for classifiers only."""
    check = getattr(view, "applies_to", None)
    if manifest is None:
        return True
    if check is None:
        return manifest.is_classification
    return bool(check(manifest))


def url_params(views=None) -> list:
    return [param for view in (views or VIEWS) for param in getattr(view, "URL_PARAMS", [])]


def value_checks(views=None) -> dict:
    """The request guard's value checks: the shell's (``filters.SHARED``) and every view's."""
    checks = dict(filters.SHARED)
    for view in views or VIEWS:
        checks.update(getattr(view, "VALUE_CHECKS", {}))
    return checks


def is_hidden(view_id: str, tab: str | None) -> bool:
    """True while another view's tab is showing: the view's callbacks then skip their work."""
    return tab != view_id


# Last, so that view modules can import the helpers above while the registry loads them.
from dashboard.views import (attention, cells, compare, confusion, decisive, examples_table, film, gates,  # noqa: E402
                             inspector, last_step, paths, patterns, select_match, study, text_heatmap,
                             training, writer)

#: The views in tab order.
VIEWS: list[ModuleType] = [paths, last_step, inspector, examples_table, confusion, decisive, attention, compare, gates, cells,
                           training, film, study, text_heatmap, writer, select_match,
                           patterns]

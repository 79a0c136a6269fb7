"""The representation forming in a real browser: on a recording that kept pictures by epoch
(tests/conftest.py ``epoch_runs_dir``: epochs 2, 4 and 6), the paths view's epoch slider moves the
picture to another epoch on the same axes, and a link names the epoch of the last activations."""

from __future__ import annotations

import pytest

from browser.conftest import serving
from browser.pages import wait_for

pytestmark = pytest.mark.browser

GRAPH = "document.querySelector('#{graph} .js-plotly-plot')"


def _title(graph: str) -> str:
    return f"({GRAPH.format(graph=graph)}?.layout?.title?.text || '')"


def _picture(page, graph: str) -> dict:
    """The drawn figure's title, x-axis range and a fingerprint of its first trace's points."""
    return page.evaluate(f"""() => {{
        const gd = {GRAPH.format(graph=graph)};
        const x = Array.from(gd._fullData[0].x).slice(0, 200).map(Number).filter(v => !isNaN(v));
        return {{title: gd.layout.title.text, range: gd._fullLayout.xaxis.range,
                 points: x.length, sum: x.reduce((a, b) => a + b, 0)}};
    }}""")


def test_brep001_the_epoch_slider_moves_the_paths_to_another_epoch(page, epoch_runs_dir):
    with serving(epoch_runs_dir) as url:
        page.goto(f"{url}?run=epochs&view=paths&paths_by_epoch=1")
        wait_for(page, f"{_title('paths-graph')}.startsWith('epoch 6')")      # the last kept epoch
        assert page.locator("#paths-epoch-box").is_visible()
        last = _picture(page, "paths-graph")
        handle = page.locator("#paths-epoch-box [role=slider]").first
        handle.focus()
        handle.press("Home")                                                  # to the first kept epoch
        wait_for(page, f"{_title('paths-graph')}.startsWith('epoch 2')")
        first = _picture(page, "paths-graph")
        assert first["range"] == last["range"]                                # the same axes
        assert first["points"] == last["points"] and first["sum"] != last["sum"]   # the paths moved
        wait_for(page, "window.location.search.includes('paths_epoch=2')")    # a link keeps the epoch

        page.goto(f"{url}?run=epochs&view=last_step&last_by_epoch=1&last_epoch=4")
        wait_for(page, f"{_title('last_step-graph')}.startsWith('epoch 4')")
        assert "last step of 30 examples" in _picture(page, "last_step-graph")["title"]

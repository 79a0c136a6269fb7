"""Imported runs in a real browser, as people bring them: an npz of states with labels and inputs
(no predictions), an LSTMVis project and a PyTorch ``nn.LSTM`` model (browser/import_runs.py).
Each opens in example paths, last activations, the inspector (its inputs drawn) and the film with
no error on the page; and a text run opens the example paths view with its documents' paths."""

from __future__ import annotations

import pytest

from browser.pages import wait_for

from browser.import_runs import CHANNELS

pytestmark = pytest.mark.browser

ERROR_WORDS = ("failed", "Cannot read", "Traceback", "rebuild", "has no projection", "Error")


def drawn(page, graph_id: str) -> list[dict]:
    """The traces Plotly drew in a dcc.Graph once it has any: name, mode, points, first hover text."""
    selector = f"#{graph_id} .js-plotly-plot"
    wait_for(page, f"document.querySelector('{selector}')?._fullData?.length > 0", timeout=60_000)
    return page.evaluate(f"""() => document.querySelector('{selector}')._fullData.map(t => (
        {{name: t.name, mode: t.mode, n: t._length || 0,
          text: Array.isArray(t.text) ? t.text.find(x => x) || null : null}}))""")


def shown_messages(page) -> list[str]:
    """Texts on the page that would tell of a problem: the run message and every figure's annotations."""
    notes = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd =>
        (gd._fullLayout?.annotations || []).map(a => a.text))""")
    return [page.inner_text("#run-message"), *notes]


def no_errors(page) -> None:
    problems = [text for text in shown_messages(page) if any(word in (text or "") for word in ERROR_WORDS)]
    assert problems == [], problems


def open_view(page, url: str, run_id: str, view: str, extra: str = "") -> None:
    page.goto(f"{url}?run={run_id}&view={view}{extra}")
    wait_for(page, f"document.querySelector('#tab-{view}')?.className.includes('tab--selected')")


@pytest.mark.parametrize("kind", ["npz", "lstmvis", "torch"])
def test_brim001_an_import_opens_in_paths_last_activations_inspector_and_film(page, imports_served, kind):
    url, ids = imports_served
    if kind not in ids:
        pytest.skip("PyTorch is not installed")
    run_id = ids[kind]
    page.set_default_timeout(60_000)

    open_view(page, url, run_id, "paths")
    paths = drawn(page, "paths-graph")
    assert sum(t["n"] for t in paths if "lines" in (t["mode"] or "")) > 30
    assert run_id in page.inner_text("#run-picker")
    no_errors(page)

    page.click("#tab-last_step")
    last = drawn(page, "last_step-graph")
    assert sum(t["n"] for t in last if "markers" in (t["mode"] or "")) >= (1 if kind == "lstmvis" else 30)
    no_errors(page)

    page.click("#tab-film")
    film = drawn(page, "film-graph")
    assert film[0]["n"] > 0 and film[1]["n"] >= 1           # paths so far, and their heads
    assert page.locator("#film-graph .slider-container").count() == 1
    no_errors(page)

    if kind == "lstmvis":
        # a language model's stream: no classes to inspect; its own views instead
        assert "tab--disabled" in page.get_attribute("#tab-inspector", "class")
        page.click("#tab-text")
        page.wait_for_selector("#text-body span")
        assert "tiny books" in page.inner_text("#text-status")
        no_errors(page)
        return
    open_view(page, url, run_id, "inspector", "&example=3")
    inputs = drawn(page, "inspector-inputs")
    assert [t["name"] for t in inputs] == CHANNELS and all(t["n"] > 0 for t in inputs)
    wait_for(page, "document.querySelector('#inspector-meta')?.innerText.includes('Example 3:')")
    assert drawn(page, "inspector-path")[-1]["name"] == "example 3"
    assert page.locator("#inspector-nearest button").count() == 8
    if kind == "npz":
        assert "this import has no predictions" in page.inner_text("#inspector-meta")
        assert "this import has no predictions" in page.inner_text("#filter-note")
        assert not page.is_visible("#filter-correct")
    else:
        confidence = drawn(page, "inspector-confidence")
        assert confidence[0]["name"].startswith("true")
    no_errors(page)


def test_brim010_a_text_run_opens_example_paths_with_its_documents(page, text_url):
    page.set_default_timeout(60_000)
    page.goto(text_url + "?run=text-parens")
    wait_for(page, "document.querySelector('#tab-paths')?.className.includes('tab--selected')")
    traces = drawn(page, "paths-graph")
    steps = [t for t in traces if t["mode"] == "markers"]      # more than 5,000 steps: points, not lines
    assert sum(t["n"] for t in steps) > 1000 and len(steps) == len(traces)
    assert any(t["text"] and " · step " in t["text"] for t in steps)   # hover: document and step
    title = page.evaluate("document.querySelector('#paths-graph .js-plotly-plot')._fullLayout.title.text")
    assert "200 documents" in title and "steps as points: select a document to draw its path" in title
    wait_for(page, "document.querySelector('#filter-count')?.innerText.endsWith('documents')", timeout=10_000)
    assert not page.is_visible("#filter-class") and not page.is_visible("#selection-inspect")
    no_errors(page)
    # clicking a path selects its document
    x, y = page.evaluate("""() => {
        const gd = document.querySelector('#paths-graph .js-plotly-plot');
        const trace = gd._fullData.find(t => t.mode === 'markers');
        const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [area.left + gd._fullLayout.xaxis.l2p(trace.x[0]), area.top + gd._fullLayout.yaxis.l2p(trace.y[0])];
    }""")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    wait_for(page, "document.querySelector('#selection-bar')?.innerText.includes('Selected: document')")
    # and its path is drawn, joined step by step
    wait_for(page, """(document.querySelector('#paths-graph .js-plotly-plot')?._fullData || [])
        .some(t => t.mode === 'lines+markers' && t._length > 1)""")

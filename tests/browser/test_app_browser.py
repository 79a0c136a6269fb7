"""The dashboard in a real browser on the small synthetic run: load, filter, click, inspect, share."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from browser.pages import wait_for

from pipeline import runformat

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def examples(synthetic_runs_dir):
    run = runformat.Run.open(synthetic_runs_dir, "synthetic")
    frame = run.examples().copy()
    frame["label"] = [run.classes[i] for i in frame["label"]]
    return frame


@pytest.fixture(scope="module")
def confused_class(examples) -> str:
    """The class with the most misclassified examples (the small run has some)."""
    wrong = examples[~examples["correct"]]
    assert len(wrong), "the small run must have misclassified examples"
    return wrong["label"].value_counts().index[0]


def graph_data(page, graph_id: str):
    """The traces Plotly drew in a dcc.Graph (names, modes, lengths), once it has any."""
    selector = f"#{graph_id} .js-plotly-plot"
    wait_for(page, f"document.querySelector('{selector}')?._fullData?.length > 0")
    return page.evaluate(f"""() => document.querySelector('{selector}')._fullData.map(t => (
        {{name: t.name, mode: t.mode, n: t._length || 0}}))""")


def query(page) -> dict:
    return parse_qs(urlparse(page.url).query)


def choose_class(page, name: str) -> None:
    page.click("#filter-class")
    page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")


def test_brws001_page_loads_run_and_draws_the_paths(page, dash_url, examples):
    page.goto(dash_url)
    traces = graph_data(page, "paths-graph")
    assert any("markers" in t["mode"] and t["n"] > len(examples) for t in traces)
    assert "synthetic" in page.inner_text("#run-picker")
    wait_for(page, f"document.querySelector('#filter-count')?.innerText.includes('{len(examples):,}')")
    assert page.inner_text("#run-message").strip() == ""


def test_brws002_filter_to_a_class_then_click_a_misclassified_example(page, dash_url, examples,
                                                                       confused_class):
    page.goto(dash_url)
    graph_data(page, "paths-graph")
    choose_class(page, confused_class)
    wait_for(page, f"location.search.includes('class={confused_class}')")
    page.click("#tab-inspector")
    links = page.locator("#inspector-mistakes button")
    links.first.wait_for()
    wrong = examples[(examples["label"] == confused_class) & ~examples["correct"]]
    assert links.count() == len(wrong)
    assert all(confused_class in text for text in links.all_inner_texts())
    first = int(wrong["example_id"].iat[0])
    links.first.click()
    wait_for(page,
        f"document.querySelector('#inspector-meta')?.innerText.includes('Example {first}:')")
    meta = page.inner_text("#inspector-meta")
    assert confused_class in meta and "misclassified" in meta
    assert [t["name"].split(":")[0] for t in graph_data(page, "inspector-confidence")] == [
        "true", "predicted"]
    assert len(graph_data(page, "inspector-inputs")) == 22                 # 11 channels per hand
    assert graph_data(page, "inspector-path")[-1]["name"] == f"example {first}"
    assert page.locator("#inspector-nearest button").count() == 8
    assert query(page)["example"] == [str(first)]
    assert f"example {first}" in page.inner_text("#selection-bar")


def test_brws003_clicking_a_point_selects_it_everywhere(page, dash_url, confused_class):
    page.goto(f"{dash_url}?view=last_step&correct=misclassified&class={confused_class}")
    names = [t["name"] for t in graph_data(page, "last_step-graph")]
    assert "misclassified" in names
    x, y, example = page.evaluate("""() => {
        const gd = document.querySelector('#last_step-graph .js-plotly-plot');
        const trace = gd._fullData.find(t => t.name === 'misclassified');
        const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return [area.left + xa.l2p(trace.x[0]), area.top + ya.l2p(trace.y[0]),
                Number(trace.customdata[0][0])];
    }""")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    wait_for(page, "document.querySelector('#selection-bar')?.innerText.includes('Selected')")
    assert "misclassified as" in page.inner_text("#selection-bar")
    selected = int(query(page)["example"][0])
    page.click("#selection-inspect")
    wait_for(page,
        f"document.querySelector('#inspector-meta')?.innerText.includes('Example {selected}:')")
    assert selected == example or "misclassified" in page.inner_text("#inspector-meta")


def test_brws004_the_url_reproduces_the_view_and_back_restores_it(page, dash_url):
    page.goto(f"{dash_url}?view=last_step&correct=misclassified&split=test&last_color=hand")
    graph_data(page, "last_step-graph")
    assert "tab--selected" in page.get_attribute("#tab-last_step", "class")
    assert page.is_checked("#filter-correct input[value=misclassified]")
    assert not page.is_checked("#filter-split input[value=train]")
    assert page.is_checked("#last_step-color input[value=hand]")
    page.click("#filter-correct input[value=correct]")
    wait_for(page, "location.search.includes('correct=correct')")
    page.go_back()
    wait_for(page, "location.search.includes('correct=misclassified')")
    wait_for(page,
        "document.querySelector('#filter-correct input[value=misclassified]').checked")


def test_brws005_an_unreadable_run_gives_a_message_in_the_page(page, dash_url):
    page.goto(f"{dash_url}?run=no-such-run")
    wait_for(page, "document.querySelector('#run-message')?.innerText.length > 0")
    assert re.search(r"no finished run 'no-such-run'", page.inner_text("#run-message"))


def test_brws006_filtered_examples_download_as_csv(page, dash_url, examples, confused_class):
    page.goto(f"{dash_url}?class={confused_class}")
    graph_data(page, "paths-graph")
    with page.expect_download() as download:
        page.click("#download-csv-button")
    lines = Path(download.value.path()).read_text().strip().splitlines()
    assert len(lines) == 1 + int((examples["label"] == confused_class).sum())
    assert lines[0].startswith("example_id,")

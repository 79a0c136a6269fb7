"""The first launch in a real browser (issue 14): a complete synthetic run beside a text run still
being built (the newest run, its writer alive). The page opens the complete run on a tab it has,
the picker marks the other as being built, and an unknown ``view=`` falls back to the first view."""

from __future__ import annotations

import pytest

from browser.conftest import serving
from browser.pages import wait_for
from factories import first_launch_runs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def first_launch_url(tmp_path_factory, synthetic_runs_dir, text_runs_dir):
    runs = first_launch_runs(tmp_path_factory.mktemp("first-launch") / "runs", synthetic_runs_dir,
                             text_runs_dir)
    with serving(runs) as url:
        yield url


def selected_tab(page) -> str:
    return page.evaluate("document.querySelector('.view-tabs .tab--selected')?.id || ''")


def paths_drawn(page) -> None:
    wait_for(page, "document.querySelector('#paths-graph .js-plotly-plot')?._fullData?.length > 0")


def test_brfl001_first_launch_opens_the_complete_run_and_marks_the_one_being_built(page, first_launch_url):
    page.goto(first_launch_url)
    paths_drawn(page)
    assert "synthetic" in page.inner_text("#run-picker")
    assert selected_tab(page) == "tab-paths"
    assert "tab--disabled" not in page.get_attribute("#tab-paths", "class")
    assert page.inner_text("#run-message").strip() == ""
    page.click("#run-picker")
    option = page.get_by_role("option", name="text-parens", exact=False)
    assert "being built: data done" in option.inner_text()
    page.keyboard.press("Escape")


def test_brfl002_an_unknown_view_in_the_url_opens_the_runs_first_view(page, first_launch_url):
    page.goto(first_launch_url + "?view=no-such-view")
    paths_drawn(page)
    assert selected_tab(page) == "tab-paths"
    wait_for(page, "!window.location.search.includes('no-such-view')")


@pytest.fixture(scope="module")
def python_text(tmp_path_factory):
    """A small character LM on Python source full of braces (the standard library's json.encoder),
    served: ``(url, run id, its text)``."""
    import json.encoder
    import shutil

    from factories import TEXT_FAST
    from pipeline import runformat
    from pipeline.core.config import merge
    from pipeline.kinds import language_model

    folder = tmp_path_factory.mktemp("python-text")
    source = folder / "encoder.py"
    shutil.copy(json.encoder.__file__, source)
    config = merge(language_model.default_config("file", str(source)), TEXT_FAST)
    summary = language_model.run_language_model(config, folder / "runs")
    assert summary.status == "complete"
    run = runformat.Run.open(folder / "runs", summary.run_id)
    text = "".join(run.steps("text", columns=["char"])["char"])
    with serving(folder / "runs") as url:
        yield url, summary.run_id, text


def test_brfl003_the_text_heatmap_shows_python_source_with_braces(page, python_text):
    url, run_id, text = python_text
    brace = text.index("{")
    start = max(text.rfind("\n", 0, brace - 200) + 1, 0)
    page.set_default_timeout(60_000)
    page.goto(f"{url}?run={run_id}&view=text&text_pos={start}")
    page.wait_for_selector("#text-body span", timeout=90_000)
    shown = page.inner_text("#text-body")
    window = text[start:start + 3000]
    assert window.count("{") > 3                                  # the window is full of braces
    for line in [line for line in window.splitlines() if "{" in line or "}" in line][:10]:
        assert line.strip() in shown
    assert len(shown) > 0.9 * len(window)


def test_brfl004_a_text_run_shows_only_the_controls_it_uses(page, text_url):
    page.goto(text_url)                                   # the only run: it opens by itself
    wait_for(page, "document.querySelector('#filter-count')?.innerText.endsWith('documents')")
    for control in ("#filter-class", "#filter-correct", "#selection-inspect", "#download-csv-button"):
        assert not page.is_visible(control), control
    assert page.is_visible("#filter-split")
    assert "classes" not in page.inner_text("#run-summary")


def test_brri001_the_run_info_panel_says_what_the_run_is(page, first_launch_url, synthetic_run):
    page.goto(first_launch_url)
    wait_for(page, "document.querySelectorAll('#run-info .run-info-section').length >= 5")
    assert not page.is_visible("#run-info")                       # closed until asked
    page.click("#run-info-box > summary")
    body = page.inner_text("#run-info").lower()                   # headings are upper-cased by the style
    splits = synthetic_run.manifest.splits
    for text in ("data set and protocol", "max length", f"{splits['train']} train", "seeds", "model",
                 "training", "stage times", "library versions", "tensorflow"):
        assert text in body, text


def test_brfd001_the_finder_selects_an_example_and_adds_a_sign(page, dash_url):
    page.goto(dash_url)
    paths_drawn(page)
    page.fill("#finder", "7")
    page.press("#finder", "Enter")
    wait_for(page, "document.querySelector('#selection-bar')?.innerText.includes('Selected: example 7,')")
    wait_for(page, "window.location.search.includes('example=7')")
    page.fill("#finder", "think")
    page.press("#finder", "Enter")
    wait_for(page, "window.location.search.includes('class=think')")
    assert "think" in page.inner_text("#filter-class")
    page.fill("#finder", "no such sign")
    page.press("#finder", "Enter")
    wait_for(page, "document.querySelector('#finder-note')?.innerText.includes('no sign or example')")

"""Long work off the request thread (issue 15 item 6): with LSTM_LENS_BACKGROUND=1 the select &
match view's match runs as a Dash background callback (DiskcacheManager) in row ranges merged
exactly, reporting progress; the answer is the plain callback's. ``match_request`` and ``poll`` are
the page's side of a background callback, also used through Celery (tests/test_celery.py)."""

from __future__ import annotations

import json
import re
import time

import plotly.utils

from dashboard import background, data
from dashboard.views import select_match
from factories import post
from pipeline.analysis import match as engine

RUN = "text-parens"
POLL_SECONDS = 60          # a deadline only: a job answers in well under a second here


def chosen_group(run):
    from dashboard.views import text_heatmap
    text = text_heatmap.corpus_text(run)
    group = max(re.finditer(r"\(3+", text), key=lambda m: (len(m.group()), -m.start()))
    _, _, chosen = select_match.select_view(RUN, "last", "h", group.start(), group.start(), group.end() - 1,
                                            0.3, [], "")
    return chosen


def test_bg001_a_match_in_parts_is_the_match_and_reports_each_part(text_runs_dir):
    data.configure(text_runs_dir)
    run = data.get_run(RUN)
    chosen = chosen_group(run)
    assert chosen and chosen["cells"]
    states = run.step_matrix(chosen["layer"], chosen["kind"])
    starts = data.examples(run)["row_start"].to_numpy()
    reported = []
    for parts in (1, 7, select_match.MATCH_PARTS):
        reported.clear()
        found = select_match.match_in_parts(states, chosen, starts, parts, progress=lambda d, n: reported.append((d, n)))
        assert found == engine.match(states, chosen["cells"], 0.3, top_k=select_match.TOP_K, boundaries=starts)
        assert reported == [(d, parts) for d in range(1, parts + 1)]


def match_request(chosen: dict) -> dict:
    """The page's request for the match of ``chosen`` (the select view's hypothesis)."""
    return {"output": f"..{select_match.SUMMARY}.children...{select_match.RESULTS}.children..",
            "outputs": [{"id": select_match.SUMMARY, "property": "children"},
                        {"id": select_match.RESULTS, "property": "children"}],
            "inputs": [{"id": select_match.HYPOTHESIS, "property": "data", "value": chosen},
                       {"id": select_match.COLOUR_BY, "property": "value", "value": ""},
                       {"id": "view-tabs", "property": "value", "value": select_match.VIEW_ID}],
            "changedPropIds": [f"{select_match.HYPOTHESIS}.data"], "state": []}


def poll(send, first: dict) -> tuple[dict | None, list[dict]]:
    """Poll a started job as the page does (``send(query)`` posts the request again with that
    query string) until it answers: (its response, the progress reports seen on the way)."""
    query = f"?cacheKey={first['cacheKey']}&job={first['job']}"
    progress, deadline = [], time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        polled = send(query) or {}
        if "progress" in polled:
            progress.append(polled["progress"])
        if "response" in polled:
            return polled["response"], progress
        time.sleep(0.1)
    return None, progress


def check_progress(progress: list[dict]) -> None:
    """Progress was reported, out of ``MATCH_PARTS`` parts, never going back. The last part's
    report may be overtaken by the answer between two polls (seen under load: 15 of 16)."""
    parts = select_match.MATCH_PARTS
    values = [int(p[f"{select_match.PROGRESS}.value"]) for p in progress]
    assert progress and all(p[f"{select_match.PROGRESS}.max"] == str(parts) for p in progress), progress
    assert values == sorted(values) and values[0] >= 0 and values[-1] <= parts, progress


def as_sent(component) -> object:
    """A callback's value as JSON, the way Dash sends it to the page."""
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


def test_bg002_the_background_match_answers_what_the_plain_one_does(text_runs_dir, client_for, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setenv(background.BACKGROUND_ENV, "1")
    monkeypatch.delenv(background.BROKER_ENV, raising=False)
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    client = client_for(text_runs_dir)
    run = data.get_run(RUN)
    chosen = chosen_group(run)
    expected, results = select_match.match_view(chosen, "")
    dependencies = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in dependencies if d["output"].startswith(f"..{select_match.SUMMARY}.children"))
    assert dep.get("background"), dep                # registered as a background callback
    body = match_request(chosen)
    first = post(client, body).get_json()
    assert "cacheKey" in first and "job" in first    # the request thread only started a job
    answer, progress = poll(lambda query: client.post(f"/_dash-update-component{query}", json=body).get_json(),
                            first)
    assert answer is not None
    summary = answer[select_match.SUMMARY]["children"]
    assert summary.split(" in ")[0] == expected.split(" in ")[0]      # "N matches" (timing aside)
    assert answer[select_match.RESULTS]["children"] == as_sent(results)
    check_progress(progress)

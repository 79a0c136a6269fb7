"""The Study view: the report that ``python -m pipeline report`` wrote into a run, as the dashboard
shows it (the pure panel, the view's function, which runs get the tab, and a rebuilt run's stale
report)."""

from __future__ import annotations

import json
import shutil

import pytest

from dashboard import data
from dashboard.figures.study import is_current, number_lines, study_panel
from dashboard.views import study as study_view
from pipeline import runformat


def texts(component) -> list[str]:
    """Every string inside a Dash component tree, in order."""
    if isinstance(component, str):
        return [component]
    children = getattr(component, "children", None)
    if children is None:
        return []
    return [t for child in (children if isinstance(children, list) else [children]) for t in texts(child)]


@pytest.fixture(scope="module")
def reported_runs(synthetic_runs_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("study-view-runs")
    shutil.copytree(synthetic_runs_dir / "synthetic", runs / "synthetic")
    shutil.copytree(synthetic_runs_dir / "synthetic", runs / "unreported")
    from pipeline.cli import main
    assert main(["report", "synthetic", "--runs", str(runs), "--quiet", "--no-figures"]) == 0
    return runs


def test_stv001_number_lines_flatten_nested_numbers_readably():
    lines = number_lines({"a": {"b": 0.123456, "c": None}, "d": [1, 2, 3, 4, 5, 6, 7, 8], "e": [{"x": 1}, {"x": 2}],
                          "f": True})
    assert lines == ["a › b: 0.123", "a › c: n/a", "d: [1, 2, 3, 4, 5, 6, … (8 in all)]", "e: 2 records", "f: yes"]


def test_stv002_the_panel_has_one_row_per_claim_with_its_title_statement_and_verdict(reported_runs):
    run = runformat.Run.open(reported_runs, "synthetic")
    report = json.loads((run.path / run.manifest["report"]["numbers"]).read_text())
    panel = study_panel(report, run.manifest)
    claims = [row for row in panel.children[1].children if getattr(row, "className", "") == "study-claim"]
    assert len(claims) == len(report["claims"]) >= 6
    shown = texts(panel)
    for claim in report["claims"]:
        assert claim["title"] in shown and claim["statement"] in shown and claim["verdict"] in shown
    assert "Hand usage" in shown and "missing classes: God, science" in shown
    assert any(line.startswith("designed_hands › full_above_chance: ") for line in shown)
    assert is_current(report, run.manifest) and "Measured on run 'synthetic'" in shown[0]


def test_stv003_only_reported_classification_runs_get_the_tab_and_the_view_reads_it(reported_runs, text_run):
    data.configure(reported_runs)
    reported, bare = (runformat.Run.open(reported_runs, name) for name in ("synthetic", "unreported"))
    assert study_view.applies_to(reported.manifest)
    assert not study_view.applies_to(bare.manifest) and not study_view.applies_to(text_run.manifest)
    assert "Hand usage" in texts(study_view.body("synthetic"))
    assert study_view.body("unreported").children.startswith("run 'unreported' has no study report")


def test_stv004_a_report_from_before_a_rebuild_says_it_is_stale(reported_runs):
    run = runformat.Run.open(reported_runs, "synthetic")
    report = json.loads((run.path / run.manifest["report"]["numbers"]).read_text())
    report["made_from"] = {**report["made_from"], "train": "another-hash"}
    head = texts(study_panel(report, run.manifest))[0]
    assert not is_current(report, run.manifest)
    assert head.startswith("This report was made before run 'synthetic' was rebuilt")


def test_stv005_a_damaged_report_file_is_a_message_not_a_failure(reported_runs, tmp_path):
    shutil.copytree(reported_runs / "synthetic", tmp_path / "synthetic")
    run = runformat.Run.open(tmp_path, "synthetic")
    (run.path / run.manifest["report"]["numbers"]).write_text("{not json")
    data.configure(tmp_path)
    message = study_view.body("synthetic").children
    assert "cannot be read" in message and "python -m pipeline report synthetic" in message

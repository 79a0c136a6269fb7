"""The run-info panel (issue 14, "say what the run is"): a pure function of the manifest, tested on
an Auslan-like manifest, a minimal one, and the small real synthetic and text runs."""

from __future__ import annotations

from dash import html

from dashboard import data, layout
from dashboard.figures import run_info
from pipeline import runformat

AUSLAN_LIKE = {
    "schema_version": runformat.SCHEMA_VERSION, "run_id": "auslan", "kind": "classification",
    "status": "complete", "updated": "2025-01-02T03:04:05+0000",
    "dataset": {"name": "auslan", "source": "/data/tctodd", "notes": {
        "files_found": 2565, "files_read": 2565, "skipped_bad_files": 0, "skipped_files": [],
        "dropped_too_long": 10, "dropped_too_long_files": [f"tctodd{i}/x-1.tsd" for i in range(10)],
        "his_hers": "drop", "dropped_his_hers": [f"tctodd{i}/her-1.tsd" for i in range(27)],
        "max_length": 90}},
    "config": {"dataset": {"name": "auslan", "max_length": 90, "his_hers": "drop", "seed": 0},
               "split": {"train": 0.7, "seed": 0},
               "model": {"units": [100], "standardise": True, "dropout": 0.0},
               "train": {"epochs": 200, "batch_size": 64, "learning_rate": 0.003, "seed": 1, "augment": None},
               "project": {"methods": ["autoencoder", "pca"], "seed": 2}},
    "classes": [f"sign{i}" for i in range(94)], "n_examples": 2528, "n_steps": 90,
    "channels": [f"ch{i}" for i in range(22)], "layers": [{"index": 0, "units": 100}],
    "splits": {"train": 1769, "validation": 379, "test": 380},
    "metrics": {"test": {"accuracy": 0.9684, "loss": 0.1234}},
    "stages": {"data": {"seconds": 2.0}, "train": {"seconds": 300.25}, "extract": {"seconds": 4.0}},
    "versions": {"python": "3.11.7", "tensorflow": "2.21.0"}, "best_epoch": 150, "top_k": 5,
    "projections": [{"id": "ae2", "method": "autoencoder", "dims": 2, "scope": "paths",
                     "quality": {"trustworthiness": 0.91234}}],
}


def sections(raw) -> dict[str, dict[str, str]]:
    manifest = runformat.parse_manifest(raw)
    return {title: dict(rows) for title, rows in run_info.run_info_sections(manifest)}


def test_ri001_the_protocol_a_reviewer_checks_is_in_the_panel():
    info = sections(AUSLAN_LIKE)
    protocol = info["Data set and protocol"]
    assert protocol["max length"] == "sequences shorter than 90 steps kept"
    assert protocol["padded to"] == "90 steps"
    assert protocol["his/hers sign"].startswith("dropped: the sign is named 'her' in session 1")
    assert protocol["his/hers sequences dropped"].startswith("27 (tctodd0/her-1.tsd")
    assert "(27 in all)" in protocol["his/hers sequences dropped"]
    assert protocol["sequences dropped as too long"].startswith("10 (tctodd0/x-1.tsd")
    assert "files too long" not in protocol                       # shown with its count
    assert protocol["split sizes"] == "1,769 train \u00b7 379 validation \u00b7 380 test"
    assert protocol["split"] == "train: 0.7, seed: 0"
    assert protocol["seeds"] == "dataset 0 \u00b7 split 0 \u00b7 train 1 \u00b7 project 2"
    assert protocol["classes"].startswith("94 (sign0, sign1")
    assert protocol["examples"] == "2,528"
    assert info["Model"]["LSTM"] == "1 layer of 100 units"
    assert info["Model"]["input channels"].startswith("22 (")
    assert info["Model"]["standardise"] == "yes" and "units" not in info["Model"]
    assert info["Training"] == {"epochs": "200", "batch size": "64", "learning rate": "0.003",
                                "augment": "none", "best epoch": "150"}
    assert info["Results"]["test"] == "accuracy 96.8%, loss 0.1234"
    assert info["Stage times"]["train"] == "300.2 s" and info["Stage times"]["all stages"] == "306.2 s"
    assert info["Projections"]["ae2"] == "autoencoder, 2-D, a point per step, trustworthiness 0.9123"
    assert info["Library versions"] == {"python": "3.11.7", "tensorflow": "2.21.0"}


def test_ri002_fields_the_manifest_lacks_are_not_shown():
    info = sections({"schema_version": runformat.SCHEMA_VERSION, "run_id": "bare", "kind": "classification"})
    assert list(info) == ["Data set and protocol"]
    assert info["Data set and protocol"] == {"kind": "classification"}


def test_ri003_the_panel_renders_the_real_runs(synthetic_run, text_run):
    panel = run_info.run_info(synthetic_run.manifest)
    titles = [section.children[0].children for section in panel]
    assert titles[0] == "Data set and protocol" and "Library versions" in titles
    table = panel[0].children[1]
    assert isinstance(table, html.Table)
    rows = {row.children[0].children: row.children[1].children for row in table.children.children}
    assert rows["split sizes"].endswith("test") and rows["name"] == "synthetic"
    text = {title: dict(rows) for title, rows in run_info.run_info_sections(text_run.manifest)}
    protocol = text["Data set and protocol"]
    assert "documents" in protocol and "characters" in protocol and "vocabulary" in protocol
    assert "bits per character" in text["Results"]["test"]


def test_ri004_the_shell_fills_the_panel_for_the_chosen_run(synthetic_runs_dir, tmp_path, text_runs_dir):
    from factories import first_launch_runs
    previous = data.runs_dir()
    try:
        data.configure(synthetic_runs_dir)
        children, style = layout.run_info_panel("synthetic")
        assert style is None and len(children) >= 5
        assert layout.run_info_panel("no-such-run") == ([], {"display": "none"})
        data.configure(first_launch_runs(tmp_path / "runs", synthetic_runs_dir, text_runs_dir))
        building, style = layout.run_info_panel("text-parens")      # being built: what it has so far
        assert style is None
        stages = next(s for s in building if s.children[0].children == "Stage times")
        names = [row.children[0].children for row in stages.children[1].children.children]
        assert names[0] == "data" and "status" in names
    finally:
        data.configure(previous)

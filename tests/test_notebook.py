"""The example notebook runs top to bottom in a real kernel: it trains a Keras model of its own with
the recorder, reads the run back and shows the dashboard inline (Dash's notebook mode)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import runformat

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "examples" / "record_keras.ipynb"


def test_nb001_the_example_notebook_records_and_shows_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_LENS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join(out.get("text", "") for out in outputs)
    assert "recorded" in text and "classification recorded epochs: 6" in text
    shown = [out for out in outputs if "text/html" in out.get("data", {})]
    assert any("<iframe" in out["data"]["text/html"] for out in shown)
    run = runformat.Run.open(tmp_path / "runs", "notebook-rising")
    assert run.manifest.complete and run.manifest["epoch_projections"]["epochs"] == [2, 4, 6]

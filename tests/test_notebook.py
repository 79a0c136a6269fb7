"""The example notebook runs top to bottom in a real kernel: it trains a Keras model of its own with
the recorder, reads the run back and shows the dashboard inline (Dash's notebook mode).

nbclient runs in a child process: it leaves an asyncio loop behind in the process that used it,
which Playwright's sync API in later browser tests refuses to share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import runformat

pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "examples" / "record_keras.ipynb"
EXECUTE = """
import sys, nbclient, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[3]}}).execute()
nbformat.write(notebook, sys.argv[2])
"""


def test_nb001_the_example_notebook_records_and_shows_a_run(tmp_path):
    executed = tmp_path / "executed.ipynb"
    env = {**os.environ, "LSTM_LENS_RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", EXECUTE, str(NOTEBOOK), str(executed), str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    notebook = nbformat.read(executed, as_version=4)
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join(out.get("text", "") for out in outputs)
    assert "recorded" in text and "classification recorded epochs: 6" in text
    shown = [out for out in outputs if "text/html" in out.get("data", {})]
    assert any("<iframe" in out["data"]["text/html"] for out in shown)
    run = runformat.Run.open(tmp_path / "runs", "notebook-rising")
    assert run.manifest.complete and run.manifest["epoch_projections"]["epochs"] == [2, 4, 6]

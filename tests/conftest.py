"""Shared fixtures: small real data sets, and one small synthetic run built once per session.

``synthetic_run`` is a complete run directory (all stages, real TensorFlow training, a few epochs,
few units) that the pipeline's and the dashboard's tests read; build nothing bigger in tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import TEXT_FAST, fast_config
from pipeline import runformat
from pipeline.core.config import merge

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never ``playwright install``), one for the whole
    session: a second ``sync_playwright()`` beside the first one's loop is refused."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def synthetic_runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding one complete small run of the synthetic signs, id ``synthetic``."""
    from pipeline.kinds.classification import run_classification
    runs = tmp_path_factory.mktemp("runs")
    summary = run_classification(fast_config("synthetic"), runs)
    assert summary.status == "complete"
    return runs


@pytest.fixture(scope="session")
def synthetic_run(synthetic_runs_dir) -> runformat.Run:
    return runformat.Run.open(synthetic_runs_dir, "synthetic")


@pytest.fixture(scope="session")
def stacked_runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding a small synthetic run with two LSTM layers, id ``stacked``, whose
    projections picture both layers' h (tests/linked_runs.py)."""
    from linked_runs import stacked_runs
    return stacked_runs(tmp_path_factory.mktemp("stacked") / "runs")


@pytest.fixture(scope="session")
def attention_runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding a small attention-pooling synthetic run and an import with an
    attention matrix per sequence (tests/attention_runs.py)."""
    from attention_runs import attention_runs
    return attention_runs(tmp_path_factory.mktemp("attention") / "runs")


@pytest.fixture(scope="session")
def text_runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding one complete small language-model run on the parenthesis language,
    id ``text-parens``."""
    from pipeline.kinds import language_model
    runs = tmp_path_factory.mktemp("text-runs")
    summary = language_model.run_language_model(merge(language_model.default_config("parens"), TEXT_FAST), runs)
    assert summary.status == "complete"
    return runs


@pytest.fixture(scope="session")
def text_run(text_runs_dir) -> runformat.Run:
    return runformat.Run.open(text_runs_dir, "text-parens")


@pytest.fixture(scope="session")
def word_runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding one small word-level run, id ``word_runs.WORD_RUN`` (a few seconds)."""
    from word_runs import word_run
    return word_run(tmp_path_factory.mktemp("word-runs") / "runs")


@pytest.fixture(scope="session")
def epoch_runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding one small recording, id ``epochs``: a Keras LSTM of the test's own on
    two classes of drifting signs, 6 epochs with ``every=2`` (pictures of epochs 2, 4 and 6 in
    ``projections_by_epoch.parquet``) and PCA projections of the final model."""
    import keras
    import numpy as np
    from pipeline.record import LensCallback
    runs = tmp_path_factory.mktemp("epoch-runs")
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 11, 30)
    labels = np.arange(30) % 2
    x = np.zeros((30, 10, 3), np.float32)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.normal(0, 1, (length, 3)) + labels[i] * np.linspace(0, 2, length)[:, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10, 3)), keras.layers.Masking(0.0), keras.layers.LSTM(6),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=6, batch_size=10, verbose=0, callbacks=[LensCallback(
        runs / "epochs", inputs=x, labels=labels, classes=["flat", "up"], lengths=lengths, every=2,
        project={"methods": ["pca"]})])
    return runs


@pytest.fixture
def client_for(monkeypatch):
    """``client_for(runs)``: a test client of a fresh app on ``runs`` (no login); the process-wide
    runs folder is restored afterwards."""
    from dashboard import data
    from dashboard.app import create_app
    previous = data.runs_dir()
    for name in ("LSTM_LENS_USERS", "LSTM_LENS_PASSWORD", "LSTM_LENS_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield lambda runs: create_app(runs).server.test_client()
    data.configure(previous)

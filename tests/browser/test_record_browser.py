"""Live monitoring in a real browser: a recording process trains a Keras model of its own with the
callback while the dashboard's training view, opened on that run, counts its epochs by itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from browser.conftest import ROOT, serving
from browser.pages import wait_for

pytestmark = pytest.mark.browser

TRAINER = textwrap.dedent("""
    import os, sys, time
    import keras, numpy as np
    from pipeline.record import LensCallback

    class Slow(keras.callbacks.Callback):    # after the first epoch, waits until the page shows it
        # (the test's go-ahead file), then an epoch every ~1.5 s: watchable however slow the machine
        def on_epoch_end(self, epoch, logs=None):
            deadline = time.monotonic() + 300
            while epoch == 0 and not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.5)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12, 3)).astype("float32")
    y = np.arange(40) % 2
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 3)), keras.layers.LSTM(6), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=12, verbose=0,
              callbacks=[LensCallback(sys.argv[1], inputs=x, labels=y, project={"methods": []}), Slow()])
""")


def _epochs(page) -> int:
    text = page.evaluate("() => document.getElementById('training-status-epochs')?.textContent || ''")
    digits = [int(word) for word in text.split() if word.isdigit()]
    return digits[0] if digits else -1


def test_brrec001_the_training_view_counts_epochs_while_a_recording_trains(page, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    go = tmp_path / "go"                          # the trainer waits for it after its first epoch
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER, str(runs / "live"), str(go)], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (runs / "live" / "history.parquet").exists():       # the first epoch is written
            assert trainer.poll() is None, trainer.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the recording wrote no epoch"
            time.sleep(0.3)
        with serving(runs) as url:
            page.goto(f"{url}?run=live&view=training")
            wait_for(page, "document.getElementById('training-status-epochs')?.textContent.includes('training now')")
            first = _epochs(page)
            assert first >= 1
            go.touch()
            wait_for(page, f"parseInt((document.getElementById('training-status-epochs')?.textContent || '')"
                           f".replace(/\\D+/, ' ').trim().split(' ')[0]) >= {first + 2}", timeout=60_000)
            assert _epochs(page) >= first + 2        # grew without a reload
            assert page.locator("#training-status").inner_text().count("no failure signs") == 1
    finally:
        trainer.kill()
        trainer.wait(timeout=10)

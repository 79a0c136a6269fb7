"""Benchmark the recorders' overhead: epoch time of a Keras training of the Auslan model's size with
and without ``LensCallback``, measured in the same epochs (a clock before and one after the recorder's epoch end).

    python bench/record.py [--epochs 4] [--every 10] [--examples 1770]

The model is the study's: LSTM(100) on 90 steps x 22 channels, softmax over 94 classes, trained on
generated sequences of that shape. Prints the median epoch time of each, their ratio, and the
one-off cost at the end of training (every tensor, predictions; projections off).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from pipeline.record import LensCallback  # noqa: E402

STEPS, CHANNELS, CLASSES, UNITS = 90, 22, 94, 100


class EpochClock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)

    def on_train_begin(self, logs=None):
        self.seconds = []


def model():
    keras.utils.set_random_seed(0)
    built = keras.Sequential([keras.Input((STEPS, CHANNELS)), keras.layers.LSTM(UNITS),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    built.compile("adam", "sparse_categorical_crossentropy")
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--examples", type=int, default=1770, help="training sequences (Auslan's train split)")
    parser.add_argument("--recorded", type=int, default=379, help="examples recorded (Auslan's validation + test)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.examples, STEPS, CHANNELS)).astype(np.float32)
    y = rng.integers(0, CLASSES, args.examples)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; {args.examples} sequences of "
          f"{STEPS} x {CHANNELS}, LSTM({UNITS}), {CLASSES} classes; {args.epochs} epochs each, every={args.every}")
    # Two clocks around the recorder in one fit: the first stops before the recorder's epoch end, the
    # second after it, so each epoch's ratio compares the same epoch with and without the recorder
    # (robust to the load changing on a shared machine).
    before, after = EpochClock(), EpochClock()
    with tempfile.TemporaryDirectory() as runs:
        callback = LensCallback(Path(runs) / "bench", inputs=x[:args.recorded], labels=y[:args.recorded],
                                every=args.every, project={"methods": []})
        recorded = model()
        started = time.perf_counter()
        recorded.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0, callbacks=[before, callback, after])
        outside = time.perf_counter() - started - sum(after.seconds)
    ratios = np.array(after.seconds) / np.array(before.seconds)
    print(f"epoch without the recorder's work: median {np.median(before.seconds):.2f} s")
    print(f"epoch with it:                     median {np.median(after.seconds):.2f} s")
    print(f"ratio per epoch: median {np.median(ratios):.3f}, max {ratios.max():.3f} "
          f"(epochs 1..{args.epochs}, weights kept at every {args.every}th)")
    print(f"outside the epochs (the check at the start; every tensor of {args.recorded} examples, "
          f"predictions and the write at the end): {outside:.2f} s")
    print(f"load average afterwards {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Cached reads of run directories for the dashboard: pipeline.runformat only, never TensorFlow.

Every reader takes a ``runformat.Run`` and memoises its result per process under the run's folder and
token (``Run.token`` changes whenever a run is rewritten; a copied run folder keeps it, hence the
folder) plus the arguments, so a callback pays for a
parquet read once. Results are shared between callers: treat them as read-only (arrays are
marked read-only; copy a DataFrame before changing it).

The runs folder is a module setting: ``configure(runs_dir)`` (called by ``create_app``), read back
with ``runs_dir()``; ``get_run(run_id)`` opens a run from it.
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import diskcache
import numpy as np
import pandas as pd

from pipeline import runformat

_settings = {"runs_dir": Path("data/runs")}


def configure(runs_dir: str | Path) -> None:
    _settings["runs_dir"] = Path(runs_dir)


def runs_dir() -> Path:
    return _settings["runs_dir"]


def list_runs(folder: str | Path | None = None) -> list[dict]:
    """Manifests of the readable runs, newest first."""
    return runformat.list_runs(folder or runs_dir())


# -- opening runs -----------------------------------------------------------------------------

_runs: OrderedDict = OrderedDict()
_runs_lock = threading.Lock()


def open_run(folder: str | Path, run_id: str) -> runformat.Run:
    """The run ``run_id`` in ``folder``; the same object while its manifest is unchanged.

    Raises ``runformat.RunError`` (with a message meant for the page) when it cannot be read.
    """
    if not run_id:
        raise runformat.RunError(f"no run chosen; build one with `python -m pipeline run synthetic "
                             f"--runs {folder}`")
    path = runformat.resolve_run_path(folder, run_id)
    try:
        stat = (path / "manifest.json").stat()
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except OSError:
        raise runformat.RunError(f"there is no finished run {run_id!r} in {folder}") from None
    key = str(path)
    with _runs_lock:
        cached = _runs.get(key)
        if cached and cached[0] == stamp:
            _runs.move_to_end(key)
            return cached[1]
    run = runformat.Run(path)
    if not run.manifest.complete:
        raise runformat.RunError(f"run {run_id!r} is incomplete: it is being built right now, or its build "
                             f"stopped (the same `python -m pipeline run ...` command resumes it)")
    with _runs_lock:
        _runs[key] = (stamp, run)
        while len(_runs) > 16:
            _runs.popitem(last=False)
    return run


def get_run(run_id: str) -> runformat.Run:
    """``open_run`` in the configured runs folder."""
    return open_run(runs_dir(), run_id)


_memos: list = []


def clear_memos() -> None:
    """Empty every in-process memo (what a fresh gunicorn worker starts with)."""
    for clear in _memos:
        clear()


def run_cached(maxsize: int = 32):
    """Memoise ``fn(run, ...)`` under ``(run.path, run.token, arguments)``; lists count as tuples.

    A value is kept only if the run's manifest did not change while it was read
    (``Run.check_unchanged``; otherwise ``runformat.RunChanged`` propagates and the caller reopens)."""
    def decorate(fn):
        cache: OrderedDict = OrderedDict()
        lock = threading.Lock()
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(run: runformat.Run, *args, **kwargs):
            bound = signature.bind(run, *args, **kwargs)
            bound.apply_defaults()
            key = (str(run.path), run.token, _freeze(list(bound.arguments.values())[1:]))
            with lock:
                if key in cache:
                    cache.move_to_end(key)
                    return cache[key]
            value = fn(*bound.args, **bound.kwargs)
            run.check_unchanged()      # read while the run was rewritten: never cache a mix
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            with lock:
                cache[key] = value
                while len(cache) > maxsize:
                    cache.popitem(last=False)
            return value

        wrapper.cache_clear = cache.clear
        _memos.append(cache.clear)
        return wrapper
    return decorate


def _freeze(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_freeze(v) for v in value]
        return tuple(sorted(items, key=repr)) if isinstance(value, (set, frozenset)) else tuple(items)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


# -- examples ---------------------------------------------------------------------------------

@run_cached(maxsize=8)
def examples(run: runformat.Run) -> pd.DataFrame:
    """examples.parquet with class names as text: ``example_id, label, prediction, correct, split,
    length, row_start, confidence``, the class positions ``label_index, prediction_index`` and
    whatever metadata the data set has (``signer``, ``hand_usage``, ...).
    Indexed by position (0..n-1 in example_id order)."""
    frame = run.examples().copy()
    classes = run.classes
    for column in ("label", "prediction"):
        if column in frame and pd.api.types.is_integer_dtype(frame[column]) and classes:
            frame[f"{column}_index"] = frame[column].astype(np.int32)
            frame[column] = np.asarray(classes, dtype=object)[frame[column].to_numpy()]
    lookup = {name: i for i, name in enumerate(classes)}
    for column in ("label", "prediction"):
        if column in frame and f"{column}_index" not in frame:
            frame[f"{column}_index"] = frame[column].map(lookup).astype("Int32")
    if "correct" not in frame and {"label", "prediction"} <= set(frame.columns):
        frame["correct"] = frame["label"] == frame["prediction"]
    return frame.sort_values("example_id").reset_index(drop=True)


@run_cached(maxsize=8)
def labels(run: runformat.Run) -> pd.Series:
    """Class name by example_id."""
    return examples(run).set_index("example_id")["label"]


def has_hand_usage(run: runformat.Run) -> bool:
    frame = examples(run)
    return "hand_usage" in frame and frame["hand_usage"].notna().any()


@run_cached(maxsize=64)
def filtered_examples(run: runformat.Run, classes: Sequence[str] | None = None,
                      splits: Sequence[str] | None = None, hands: Sequence[str] | None = None,
                      correctness: str | None = "all") -> pd.DataFrame:
    """The examples the filter bar lets through.

    ``classes``: None or [] = every class. ``splits``/``hands``: None = all, [] = none (an
    unticked checklist shows nothing); ``hands`` is ignored for runs without hand usage.
    ``correctness``: "all", "correct" or "misclassified".
    """
    frame = examples(run)
    keep = np.ones(len(frame), dtype=bool)
    if classes:
        keep &= frame["label"].isin(list(classes)).to_numpy()
    if splits is not None:
        keep &= frame["split"].isin(list(splits)).to_numpy()
    if hands is not None and has_hand_usage(run):
        keep &= frame["hand_usage"].isin(list(hands)).to_numpy()
    if correctness == "correct":
        keep &= frame["correct"].to_numpy(dtype=bool)
    elif correctness == "misclassified":
        keep &= ~frame["correct"].to_numpy(dtype=bool)
    return frame[keep]


def example_row(run: runformat.Run, example_id: int) -> pd.Series | None:
    frame = examples(run)
    position = np.searchsorted(frame["example_id"].to_numpy(), example_id)
    if position >= len(frame) or frame["example_id"].iat[position] != example_id:
        return None
    return frame.iloc[position]


def last_step_rows(run: runformat.Run, example_ids: Sequence[int] | None = None) -> np.ndarray:
    """Row numbers (in every per-step table) of the examples' last real steps."""
    frame = examples(run)
    rows = (frame["row_start"] + frame["length"] - 1).to_numpy(dtype=np.int64)
    if example_ids is None:
        return rows
    positions = np.searchsorted(frame["example_id"].to_numpy(), np.asarray(example_ids))
    return rows[positions]


# -- per-step tensors ------------------------------------------------------------------------

@run_cached(maxsize=8)
def step_matrix(run: runformat.Run, layer: int, kind: str, units: Sequence[int] | None = None) -> np.ndarray:
    """A (rows, units) float32 array of one tensor of one layer, rows in (example_id, t) order."""
    return run.step_matrix(layer, kind, None if units is None else list(units))


def last_layer(run: runformat.Run) -> int:
    layers = run.layers
    return layers[-1].index if layers else 0


@run_cached(maxsize=8)
def last_step_matrix(run: runformat.Run, layer: int, kind: str = "h") -> np.ndarray:
    """(examples, units) float32: each example's tensor at its last step, in example_id order.

    Small, but it costs a read of the whole per-step table (seconds at Auslan size), so it is
    also kept on disk (``disk_cache``), shared by gunicorn workers and server restarts.
    """
    key = ("last_step_matrix", str(run.path), run.token, layer, kind)
    cache = disk_cache()
    value = cache.get(key)
    if value is None:
        value = np.ascontiguousarray(run.step_matrix(layer, kind)[last_step_rows(run)])
        run.check_unchanged()
        cache.set(key, value)
    return value


def disk_cache() -> diskcache.Cache:
    """The on-disk memo of expensive derived arrays: ``$LSTM_LENS_CACHE`` or a folder in the
    system's temp dir; entries are keyed by run folder and token, so a rebuilt run misses."""
    if "disk" not in _settings:
        folder = os.environ.get("LSTM_LENS_CACHE") or Path(tempfile.gettempdir()) / "lstm-lens-cache"
        _settings["disk"] = diskcache.Cache(str(folder), size_limit=2**30)
    return _settings["disk"]


@run_cached(maxsize=4)
def inputs(run: runformat.Run) -> pd.DataFrame:
    """steps/inputs.parquet: ``example_id, t`` and one column per input channel."""
    return run.steps("inputs")


@run_cached(maxsize=4)
def predictions(run: runformat.Run) -> pd.DataFrame:
    """steps/predictions.parquet: per step the true-class probability and the top-k classes."""
    return run.steps("predictions")


def example_steps(frame: pd.DataFrame, run: runformat.Run, example_id: int) -> pd.DataFrame:
    """The rows of one example in a per-step table read whole (slicing, not filtering)."""
    return frame.iloc[run_rows(run, example_id)]


def run_rows(run: runformat.Run, example_id: int) -> slice:
    row = example_row(run, example_id)
    if row is None:
        raise runformat.RunError(f"run {run.run_id!r} has no example {example_id}")
    start = int(row["row_start"])
    return slice(start, start + int(row["length"]))


# -- projections ------------------------------------------------------------------------------

def projection_ids(run: runformat.Run) -> list[str]:
    """The projections the run has (manifest "projections": ids or {"id": ...} records)."""
    return run.manifest.projection_ids


@run_cached(maxsize=16)
def projection(run: runformat.Run, projection_id: str) -> pd.DataFrame:
    """One projection, ``example_id, t, x, y[, z]`` (float32) in (example_id, t) order."""
    frame = run.projections(projection_id)
    if frame.empty:
        raise runformat.RunError(f"run {run.run_id!r} has no projection {projection_id!r} "
                             f"(it has {', '.join(projection_ids(run)) or 'none'})")
    columns = [c for c in ("x", "y", "z") if c in frame and frame[c].notna().any()]
    frame = frame[["example_id", "t", *columns]].sort_values(["example_id", "t"], kind="stable")
    for column in columns:
        frame[column] = frame[column].astype(np.float32)
    return frame.reset_index(drop=True)


@run_cached(maxsize=16)
def last_step_projection(run: runformat.Run, projection_id: str) -> pd.DataFrame:
    """Each example's projected last step: ``example_id, t, x, y[, z]``, one row per example."""
    frame = projection(run, projection_id)
    last = frame["example_id"].to_numpy()
    ends = np.flatnonzero(np.r_[last[1:] != last[:-1], True])
    return frame.iloc[ends].reset_index(drop=True)


# -- neighbours -------------------------------------------------------------------------------

def nearest_examples(run: runformat.Run, example_id: int, k: int = 8) -> pd.DataFrame:
    """The ``k`` examples nearest to ``example_id`` in last-step hidden state (last layer,
    Euclidean), nearest first, with a ``distance`` column."""
    frame = examples(run)
    position = int(np.searchsorted(frame["example_id"].to_numpy(), example_id))
    hidden = last_step_matrix(run, last_layer(run), "h")
    distance = np.linalg.norm(hidden - hidden[position], axis=1)
    distance[position] = np.inf
    k = min(k, len(frame) - 1)
    nearest = np.argpartition(distance, k)[:k] if k < len(frame) - 1 else np.arange(len(frame))
    nearest = nearest[np.argsort(distance[nearest], kind="stable")]
    nearest = nearest[np.isfinite(distance[nearest])][:k]
    result = frame.iloc[nearest].copy()
    result["distance"] = distance[nearest].astype(np.float32)
    return result


def class_probability(run: runformat.Run, example_id: int, class_index: int) -> tuple[np.ndarray, int]:
    """Probability of class ``class_index`` after every step of one example, and k.

    The run stores the true and the finally predicted class's probability and the top-k classes per
    step; for another class the value is taken from the top-k columns and is NaN where it was not
    among them (and for runs written before predicted_prob existed).
    """
    steps = example_steps(predictions(run), run, example_id)
    ranks = sorted(int(c[3:-6]) for c in steps.columns if c.startswith("top") and c.endswith("_class"))
    probability = np.full(len(steps), np.nan, dtype=np.float32)
    for rank in ranks:
        hit = steps[f"top{rank}_class"].to_numpy() == class_index
        probability[hit] = steps[f"top{rank}_prob"].to_numpy()[hit]
    row = example_row(run, example_id)
    if row is not None and int(row["label_index"]) == class_index and "true_prob" in steps:
        probability = steps["true_prob"].to_numpy(dtype=np.float32)
    elif row is not None and int(row["prediction_index"]) == class_index and "predicted_prob" in steps:
        probability = steps["predicted_prob"].to_numpy(dtype=np.float32)
    return probability, len(ranks)

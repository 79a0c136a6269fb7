"""Cached reads of run directories for the dashboard: pipeline.runformat only, never TensorFlow.

Every reader takes a ``runformat.Run`` and memoises its result under the run's folder and token
(``Run.token`` changes whenever a run is rewritten; a copied run folder keeps it, hence the folder)
plus the arguments, so a callback pays for a parquet read once. Results are shared between
callers: treat them as read-only (arrays are marked read-only; copy a DataFrame before changing it).

Two levels (``run_cached``): a small in-process memo (parsed DataFrames, arrays, figures as sent),
and for the expensive derived values (``shared=True``: last-step matrices, per-example summaries,
the heavy figures) a ``diskcache`` folder every gunicorn worker and a restarted server share. The
in-process level stays because it is free (a dictionary look-up where the disk costs a read and a
decode) and because parsed DataFrames are cheap to rebuild from parquet but not to serialise.
Shared values are stored without pickle (see ``encode``), so nothing in the cache folder can run
code in the server; keys also hold a stamp of the dashboard's own source (``CODE_STAMP``), so a
changed dashboard never reads values an older one computed.

The runs folder is a module setting: ``configure(runs_dir)`` (called by ``create_app``), read back
with ``runs_dir()``; ``get_run(run_id)`` opens a run from it. What a run has (predictions, inputs,
projections of each scope) is read from its manifest by the functions under "what a run has", and
the messages for what it lacks are worded for that run (an import is never told to rebuild).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import logging
import os
import socket
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from collections.abc import Sequence

import diskcache
import numpy as np
import orjson
import pandas as pd

from dashboard import step_maps
from pipeline import runformat
from pipeline.runformat.writer import lock_holder, pid_alive

_settings: dict = {"runs_dir": Path("data/runs")}
log = logging.getLogger("lstm_lens.data")
DEFAULT_RUNS = Path("data/runs")


def configure(runs_dir: str | Path) -> None:
    _settings["runs_dir"] = Path(runs_dir)


def runs_dir() -> Path:
    return _settings["runs_dir"]


def list_runs(folder: str | Path | None = None) -> list[runformat.Manifest]:
    """Manifests of the readable runs, newest first."""
    return runformat.list_runs(folder or runs_dir())


def default_run(manifests: Sequence[runformat.Manifest]) -> str | None:
    """The run the page opens when the URL names none: the newest complete classifier (the
    embedded default is one), else the newest complete run of any kind; never a run still being
    built or training (None when every run is)."""
    complete = [m for m in manifests if m.complete]
    chosen = next((m for m in complete if m.is_classification), complete[0] if complete else None)
    return chosen.run_id if chosen else None


def build_state(manifest: runformat.Manifest, folder: str | Path | None = None) -> str:
    """How an incomplete run stands, for the run picker: ``"being built: data, train done"`` while
    its writer holds the run's lock (``.lock``: a live process on this host, or any on another host:
    cannot tell), ``"build stopped after data"`` when no live writer holds it; the stages named are
    the ones the manifest records as finished. "" for a complete run or a recording (its own note)."""
    if manifest.complete or manifest.status == "training":
        return ""
    done = [name for name, stage in manifest.stages.items() if isinstance(stage, dict)]
    holder = lock_holder(Path(folder or runs_dir()) / manifest.run_id)
    writing = bool(holder) and (holder.get("host") != socket.gethostname()
                                      or isinstance(holder.get("pid"), int) and pid_alive(holder["pid"]))
    if writing:
        return "being built" + (f": {', '.join(done)} done" if done else "")
    return "build stopped" + (f" after {done[-1]}" if done else "")


# -- opening runs -----------------------------------------------------------------------------

_runs: OrderedDict = OrderedDict()
_runs_lock = threading.Lock()


def open_run(folder: str | Path, run_id: str) -> runformat.Run:
    """The run ``run_id`` in ``folder``; the same object while its manifest is unchanged.

    Raises ``runformat.RunError`` (with a message meant for the page) when it cannot be read.
    """
    if not run_id:
        raise runformat.RunError("no run chosen; build one with `python -m pipeline run synthetic`")
    path = runformat.resolve_run_path(folder, run_id)
    try:
        stat = (path / runformat.MANIFEST_FILE).stat()
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except OSError:
        raise runformat.RunError(f"there is no finished run {run_id[:60]!r} in the runs folder") from None
    key = str(path)
    with _runs_lock:
        cached = _runs.get(key)
        if cached and cached[0] == stamp:
            _runs.move_to_end(key)
            return cached[1]
    run = runformat.Run(path)
    # A recording still training is readable as it goes (its history, examples and inputs).
    if not run.manifest.complete and run.manifest.status != "training":
        raise runformat.RunError(f"run {run_id!r} is incomplete: it is being built right now, or its build "
                                 f"stopped ({resume_hint(run.manifest)})")
    with _runs_lock:
        _runs[key] = (stamp, run)
        while len(_runs) > 16:
            _runs.popitem(last=False)
    return run


def get_run(run_id: str) -> runformat.Run:
    """``open_run`` in the configured runs folder."""
    return open_run(runs_dir(), run_id)


# -- what a run has, and what to say when it lacks something --------------------------------------

def run_files(manifest: runformat.Manifest) -> set[str]:
    """Every file the run's recorded stages wrote (manifest ``stages.*.outputs``)."""
    return {name for stage in manifest.stages.values() if isinstance(stage, dict)
            for name in stage.get("outputs") or []}


def has_predictions(manifest: runformat.Manifest) -> bool:
    """Whether the run recorded the model's predictions (steps/predictions.parquet, and for a
    classifier the prediction and correct columns of examples.parquet)."""
    return runformat.PREDICTIONS_FILE in run_files(manifest)


def has_inputs(manifest: runformat.Manifest) -> bool:
    """Whether the run kept the model's inputs (steps/inputs.parquet; manifest ``channels``)."""
    return runformat.INPUTS_FILE in run_files(manifest)


def projection_entries(manifest: runformat.Manifest, scope: str | None = None,
                       dims: int | None = None) -> list[dict]:
    """The manifest's projection descriptions, optionally of one scope ("paths": a point per step;
    "last": a point per example) and number of dimensions."""
    return [entry for entry in manifest.projections
            if (scope is None or entry.get("scope", "paths") == scope)
            and (dims is None or int(entry.get("dims", 2)) == dims)]


def path_projection_ids(manifest: runformat.Manifest, dims: int | None = None) -> list[str]:
    """Projections with a point per step (what paths and the film draw)."""
    return [str(entry["id"]) for entry in projection_entries(manifest, "paths", dims)]


def last_step_projection_ids(manifest: runformat.Manifest) -> list[str]:
    """2-D projections that place every example's last step: every 2-D path projection, and the
    last-step-only ones (t-SNE, the other seeds' autoencoders)."""
    return [str(entry["id"]) for entry in projection_entries(manifest, dims=2)]


#: The projection methods' short names (the views' choices) and the manifest's names for them.
METHOD_KEYS = {"ae": "autoencoder", "pca": "pca", "tsne": "tsne"}


def projection_state(entry: dict) -> str:
    """Which states a projection pictures, as ``"layer:tensor"`` (``"1:h"``); ``"?:h"`` when the
    entry does not say which layer."""
    layer = entry.get("layer")
    return f"{layer if isinstance(layer, int) else '?'}:{entry.get('state') or 'h'}"


def projection_states(manifest: runformat.Manifest, scope: str | None = None, dims: int | None = None) -> list[str]:
    """The ``"layer:tensor"`` pairs the run's projections picture, in the manifest's order (one,
    for runs the project stage wrote: it projects one layer's one tensor per run)."""
    return list(dict.fromkeys(projection_state(entry) for entry in projection_entries(manifest, scope, dims)))


def projection_for(manifest: runformat.Manifest, method: str, dims: int, states: str | None,
                   scope: str | None = None) -> str | None:
    """The id of the projection by ``method`` ("ae", "pca", "tsne") in ``dims`` dimensions of the
    ``states`` pair (None: any), a path projection first; None when the run has none."""
    wanted = METHOD_KEYS.get(method, method)
    found = [entry for entry in projection_entries(manifest, scope, dims)
             if (states is None or projection_state(entry) == states)
             and (entry.get("method") == wanted
                  or "method" not in entry and str(entry["id"]).partition("-")[0].rstrip("0123456789") == method)]
    found.sort(key=lambda entry: entry.get("scope", "paths") != "paths")
    return str(found[0]["id"]) if found else None


def _runs_option() -> str:
    folder = runs_dir()
    return "" if Path(folder) == DEFAULT_RUNS else f" --runs {folder}"


def resume_hint(manifest: runformat.Manifest) -> str:
    """How this run is built again: the command that made it, worded for its origin."""
    name = manifest.dataset.get("name", "<dataset>") if isinstance(manifest.dataset, dict) else "<dataset>"
    if manifest.origin == "imported":
        return f"the same `python -m pipeline import ...` command{_runs_option()} finishes it"
    if manifest.origin == "recorded":
        return "the program that records it writes the manifest last"
    return f"the same `python -m pipeline run {name}{_runs_option()}` command resumes it"


def no_projections_message(manifest: runformat.Manifest, needed: str = "") -> str:
    """Why a view that draws projected states has nothing to draw for this run, and the command
    that gives it what it needs (any origin: ``pipeline project`` works on every run)."""
    command = f"`python -m pipeline project {manifest.run_id}{_runs_option()}`"
    if not manifest.projections:
        return f"run {manifest.run_id!r} has no projections yet: {command} computes them"
    return (f"run {manifest.run_id!r} has no {needed or 'such projection'} (it has "
            f"{', '.join(manifest.projection_ids)}): {command} computes them")


def no_predictions_message(manifest: runformat.Manifest) -> str:
    """What a run without recorded predictions is told, by where it came from."""
    if manifest.origin == "imported":
        fmt = manifest.dataset.get("format", "") if isinstance(manifest.dataset, dict) else ""
        if fmt in ("torch", "keras"):
            return ("this import has no predictions (its model has no softmax head the importer found; "
                    "name one with --head, docs/import-format.md)")
        return "this import has no predictions (give a predictions field, docs/import-format.md)"
    return f"run {manifest.run_id!r} recorded no predictions"


# -- memos --------------------------------------------------------------------------------------

def _code_stamp() -> str:
    """A hash of the dashboard's source files: part of every shared key."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_STAMP = _code_stamp()
_memos: list = []


def clear_memos() -> None:
    """Empty every in-process memo (what a fresh gunicorn worker starts with); the shared disk
    cache keeps its values (the writes still pending are finished first)."""
    shared_writes_done()
    for clear in _memos:
        clear()


def cache_folder() -> Path:
    """The shared cache's folder: ``$LSTM_LENS_CACHE`` or ``lstm-lens-cache-<uid>`` in the
    system's temp dir (created private to this user)."""
    folder = Path(os.environ.get("LSTM_LENS_CACHE")
                  or Path(tempfile.gettempdir()) / f"lstm-lens-cache-{os.getuid()}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def disk_cache() -> diskcache.Cache:
    """The shared memo in ``cache_folder()``. One ``Cache`` per process: SQLite connections must
    not cross the fork of gunicorn's preloading master."""
    pid = os.getpid()
    folder = cache_folder()
    cached = _settings.get("disk")
    if cached is None or cached[:2] != (pid, folder):
        cached = (pid, folder, diskcache.Cache(str(folder), size_limit=2**30))
        _settings["disk"] = cached
    return cached[2]


class NotShareable(TypeError):
    """A value ``encode`` does not store (it stays in the process's memo only)."""


_SCALARS = frozenset({str, int, float, bool, type(None)})


def encode(value) -> bytes:
    """Bytes for the shared cache, without pickle: a numpy array as .npy, anything JSON-like
    (the figures as Dash sends them; dicts and lists holding arrays) as JSON with its arrays in an
    .npz beside it."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise NotShareable("object arrays are not shared")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return b"A" + buffer.getvalue()
    arrays: list[np.ndarray] = []
    tuples = [False]

    def plain(item):
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise NotShareable("object arrays are not shared")
            arrays.append(item)
            return {"__array__": len(arrays) - 1}
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                raise NotShareable("dict keys must be text")
            return {key: plain(v) for key, v in item.items()}
        if isinstance(item, list):
            if all(type(v) in _SCALARS for v in item):      # a figure's long lists: kept as they are
                return item
            return [plain(v) for v in item]
        if isinstance(item, tuple):
            tuples[0] = True
            return {"__tuple__": [plain(v) for v in item]}
        if isinstance(item, np.generic):
            return item.item()
        if item is None or isinstance(item, (str, int, float, bool)):
            return item
        raise NotShareable(f"{type(item).__name__} is not shared")

    document = orjson.dumps(plain(value))
    if not arrays:          # "J": plain JSON, read back as it is (a figure: no walk over its items)
        return (b"T" if tuples[0] else b"J") + document
    buffer = io.BytesIO()
    np.savez(buffer, document=np.frombuffer(document, np.uint8),
             **{f"a{i}": array for i, array in enumerate(arrays)})
    return b"Z" + buffer.getvalue()


def decode(blob: bytes):
    """The value ``encode`` stored (arrays read-only)."""
    kind, body = blob[:1], blob[1:]
    if kind == b"A":
        array = np.load(io.BytesIO(body), allow_pickle=False)
        array.flags.writeable = False
        return array
    if kind == b"J":
        return orjson.loads(body)
    if kind == b"T":
        return _restore(orjson.loads(body), [])
    if kind == b"Z":
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            arrays = [archive[f"a{i}"] for i in range(len(archive.files) - 1)]
            document = archive["document"].tobytes()
        for array in arrays:
            array.flags.writeable = False
        return _restore(orjson.loads(document), arrays)
    raise ValueError("not a value of the shared cache")


def _restore(item, arrays):
    if isinstance(item, dict):
        if set(item) == {"__array__"}:
            return arrays[item["__array__"]]
        if set(item) == {"__tuple__"}:
            return tuple(_restore(v, arrays) for v in item["__tuple__"])
        return {key: _restore(v, arrays) for key, v in item.items()}
    if isinstance(item, list):
        return [_restore(v, arrays) for v in item]
    return item


def run_cached(maxsize: int = 32, shared: bool = False):
    """Memoise ``fn(run, ...)`` under ``(run.path, run.token, arguments)``; lists count as tuples.

    ``shared``: also keep the value in the disk cache (``disk_cache``) for other processes and
    restarts, for values that cost more than a read (derived matrices, figures). Values ``encode``
    cannot store stay in this process's memo only. A value is kept only if the run's manifest did
    not change while it was read (``Run.check_unchanged``; otherwise ``runformat.RunChanged``
    propagates and the caller reopens)."""
    def decorate(fn):
        cache: OrderedDict = OrderedDict()
        lock = threading.Lock()
        signature = inspect.signature(fn)
        name = f"{fn.__module__}.{fn.__qualname__}"

        def keys(run: runformat.Run, args, kwargs):
            bound = signature.bind(run, *args, **kwargs)
            bound.apply_defaults()
            key = (str(run.path), run.token, _freeze(list(bound.arguments.values())[1:]))
            return bound, key, f"{name}:{CODE_STAMP}:" + hashlib.sha256(repr(key).encode()).hexdigest()

        @functools.wraps(fn)
        def wrapper(run: runformat.Run, *args, **kwargs):
            bound, key, disk_key = keys(run, args, kwargs)
            with lock:
                if key in cache:
                    cache.move_to_end(key)
                    return cache[key]
            value = _MISSING
            if shared:
                value = _shared_get(disk_key)
            if value is _MISSING:
                value = fn(*bound.args, **bound.kwargs)
                run.check_unchanged()      # read while the run was rewritten: never cache a mix
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
                if shared:
                    _write_behind(disk_key, value)
            with lock:
                cache[key] = value
                while len(cache) > maxsize:
                    cache.popitem(last=False)
            return value

        def shared_value(run: runformat.Run, *args, **kwargs):
            """What the shared cache holds for these arguments (None if nothing)."""
            shared_writes_done()
            value = _shared_get(keys(run, args, kwargs)[2])
            return None if value is _MISSING else value

        wrapper.cache_clear = cache.clear
        wrapper.shared_value = shared_value
        _memos.append(cache.clear)
        return wrapper
    return decorate


_MISSING = object()


def _shared_get(key: str):
    try:
        blob = disk_cache().get(key)
        return _MISSING if blob is None else decode(blob)
    except Exception:          # noqa: BLE001 - a damaged cache entry is a miss, never an error
        log.warning("shared cache: cannot read %s", key, exc_info=True)
        return _MISSING


# Shared-cache writes happen after the answer, on one thread per process: encoding and storing a
# 1.8 MB film took ~25-30 ms of each first answer. At most MAX_PENDING values wait (their memory);
# beyond that a request writes its own.
MAX_PENDING = 8
_writer: dict = {"pid": None, "executor": None, "pending": []}
_writer_lock = threading.Lock()


def _write_behind(key: str, value) -> None:
    """``_shared_set`` after the answer, into the cache folder of now (``$LSTM_LENS_CACHE`` may
    name another by the time the write runs)."""
    cache = disk_cache()
    with _writer_lock:
        if _writer["pid"] != os.getpid():          # a forked worker starts its own thread
            _writer.update(pid=os.getpid(), pending=[],
                           executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="shared-cache"))
        pending: list[Future] = [f for f in _writer["pending"] if not f.done()]
        if len(pending) < MAX_PENDING:
            pending.append(_writer["executor"].submit(_shared_set, key, value, cache))
            _writer["pending"] = pending
            return
    _shared_set(key, value, cache)


def shared_writes_done() -> None:
    """Wait until this process's pending shared-cache writes are stored."""
    with _writer_lock:
        pending = list(_writer["pending"]) if _writer["pid"] == os.getpid() else []
    for future in pending:
        future.result()


def _shared_set(key: str, value, cache: diskcache.Cache | None = None) -> None:
    try:
        (disk_cache() if cache is None else cache).set(key, encode(value))   # an empty Cache is falsy
    except NotShareable:
        pass
    except Exception:          # noqa: BLE001 - a full or read-only cache folder costs speed only
        log.warning("shared cache: cannot store %s", key, exc_info=True)


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
    """examples.parquet, indexed by position (0..n-1 in example_id order): ``example_id, split,
    length, row_start`` and whatever the run has. Classification runs: ``label`` as the class name
    and ``label_index``; with predictions also ``prediction`` (name), ``prediction_index``,
    ``correct`` and ``confidence``. Language-model runs: ``name`` (each document's), plus their
    per-document scores. Plus any metadata (``signer``, ``hand_usage``, ...)."""
    frame = run.examples().copy()
    if run.manifest.is_classification:
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
    elif "name" not in frame:
        frame["name"] = [f"document {i}" for i in frame["example_id"]]
    return frame.sort_values("example_id").reset_index(drop=True)


@run_cached(maxsize=8)
def labels(run: runformat.Run) -> pd.Series:
    """What colours an example, by example_id: its class name (classification) or its document's
    name (language models)."""
    frame = examples(run)
    return frame.set_index("example_id")["label" if "label" in frame else "name"]


def has_hand_usage(run: runformat.Run) -> bool:
    frame = examples(run)
    return "hand_usage" in frame and frame["hand_usage"].notna().any()


def has_verdicts(run: runformat.Run) -> bool:
    """Whether the run's examples say which were classified correctly."""
    return "correct" in examples(run)


def keep_chosen(frame: pd.DataFrame, chosen) -> pd.DataFrame:
    """The examples of ``frame`` in a box or lasso's chosen set (``state.CHOSEN``; None: no set,
    every example). An empty result raises, saying how many were chosen."""
    if chosen is None:
        return frame
    kept = frame[frame["example_id"].isin(list(chosen))]
    if kept.empty:
        raise runformat.RunError(f"none of the {len(chosen):,} chosen examples pass the filters "
                                 f"('Clear chosen set' shows them all)")
    return kept


@run_cached(maxsize=64)
def filtered_examples(run: runformat.Run, classes: Sequence[str] | None = None,
                      splits: Sequence[str] | None = None, hands: Sequence[str] | None = None,
                      correctness: str | None = "all") -> pd.DataFrame:
    """The examples the filter bar lets through.

    ``classes``: None or [] = every class. ``splits``/``hands``: None = all, [] = none (an
    unticked checklist shows nothing); ``hands`` is ignored for runs without hand usage.
    ``correctness``: "all", "correct" or "misclassified"; ignored for runs without predictions,
    as ``classes`` is for runs without labels (language models).
    """
    frame = examples(run)
    keep = np.ones(len(frame), dtype=bool)
    if classes and "label" in frame:
        keep &= frame["label"].isin(list(classes)).to_numpy()
    if splits is not None:
        keep &= frame["split"].isin(list(splits)).to_numpy()
    if hands is not None and has_hand_usage(run):
        keep &= frame["hand_usage"].isin(list(hands)).to_numpy()
    if "correct" in frame and correctness == "correct":
        keep &= frame["correct"].to_numpy(dtype=bool)
    elif "correct" in frame and correctness == "misclassified":
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
    """A (rows, units) array of one tensor of one layer, rows in (example_id, t) order: float32 in
    memory, or for a whole table over ``step_maps.IN_MEMORY_BYTES`` a read-only memory map of its
    stored dtype (float16 or float32) that every worker shares: index the rows you need."""
    if units is None and layer in {known.index for known in run.layers} and not step_maps.in_memory(
            int(examples(run)["length"].sum()), run.manifest.layer(layer).units):
        try:
            return step_maps.step_map(run, layer, kind, cache_folder())
        except OSError:          # a full or read-only cache folder costs memory, not the answer
            log.warning("cannot map the %s table of %s; reading it whole", kind, run.run_id, exc_info=True)
    return run.step_matrix(layer, kind, None if units is None else list(units))


def last_layer(run: runformat.Run) -> int:
    layers = run.layers
    return layers[-1].index if layers else 0


@run_cached(maxsize=8, shared=True)
def last_step_matrix(run: runformat.Run, layer: int, kind: str = "h") -> np.ndarray:
    """(examples, units) float32: each example's tensor at its last step, in example_id order.

    From the run's precomputed table (``example_states``); a run without it is read the long way,
    the whole per-step table (seconds at Auslan size): shared."""
    precomputed = example_states(run, layer, kind, "last")
    if precomputed is not None:
        return precomputed
    return np.ascontiguousarray(run.step_matrix(layer, kind)[last_step_rows(run)])


@run_cached(maxsize=16)
def example_states(run: runformat.Run, layer: int, kind: str, summary: str) -> np.ndarray | None:
    """(examples, units) float32 in example_id order: each example's h or c at its last step or
    its mean over its steps, as the extract stage wrote it (``pipeline.core.aggregates``); None
    for a run written before (or a tensor without) the table, or one that does not fit the
    examples."""
    if kind not in ("h", "c") or summary not in runformat.EXAMPLE_SUMMARIES:
        return None
    name = runformat.example_states_file(layer, kind, summary)
    if name not in run_files(run.manifest):
        return None
    table = run.arrow_table(name)
    units = [c for c in table.column_names if c != "example_id"]
    if not np.array_equal(table.column("example_id").to_numpy(), examples(run)["example_id"].to_numpy()):
        return None
    return table_matrix(table, units)


def table_matrix(table, columns: list[str]) -> np.ndarray:
    """(rows, columns) float32 of a pyarrow table's float columns, filled chunk by chunk: one
    array touched, not a copy per column and then their stack."""
    out = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    for j, name in enumerate(columns):
        row = 0
        for chunk in table.column(name).chunks:
            out[row:row + len(chunk), j] = chunk.to_numpy(zero_copy_only=False)
            row += len(chunk)
    out.flags.writeable = False
    return out


@run_cached(maxsize=4)
def inputs(run: runformat.Run) -> pd.DataFrame:
    """steps/inputs.parquet: ``example_id, t`` and one column per input channel."""
    if not run.has(runformat.INPUTS_FILE):
        raise runformat.RunError(f"run {run.run_id!r} kept no input channels (no {runformat.INPUTS_FILE})")
    return run.read_table(runformat.INPUTS_FILE)


@run_cached(maxsize=4)
def predictions(run: runformat.Run) -> pd.DataFrame:
    """steps/predictions.parquet: per step the true-class probability and the top-k classes."""
    if not run.has(runformat.PREDICTIONS_FILE):
        raise runformat.RunError(no_predictions_message(run.manifest))
    return run.read_table(runformat.PREDICTIONS_FILE)


@run_cached(maxsize=4)
def true_probabilities(run: runformat.Run) -> np.ndarray:
    """Per step the probability of the example's true class: predictions.parquet's ``true_prob``
    column alone (a big run's film reads 22 MB of it instead of the whole table)."""
    if not run.has(runformat.PREDICTIONS_FILE):
        raise runformat.RunError(no_predictions_message(run.manifest))
    return run.arrow_table(runformat.PREDICTIONS_FILE, columns=["true_prob"]).column(0).to_numpy()


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
    """The projections the run has (manifest "projections")."""
    return run.manifest.projection_ids


@run_cached(maxsize=16)
def projection(run: runformat.Run, projection_id: str) -> pd.DataFrame:
    """One projection, ``example_id, t, x, y[, z]`` (float32) in (example_id, t) order."""
    if projection_id not in projection_ids(run):
        raise runformat.RunError(no_projections_message(run.manifest, f"projection {projection_id!r}"))
    entry = next((p for p in run.manifest.projections if str(p.get("id")) == projection_id), {})
    axes = ("x", "y") if entry.get("dims") == 2 else ("x", "y", "z")    # a 2-D one's z is all NaN
    frame = run.projections(projection_id, columns=("example_id", "t", *axes))
    if frame.empty:
        raise runformat.RunError(f"run {run.run_id!r}: {runformat.PROJECTIONS_FILE} has no rows of "
                                 f"projection {projection_id!r}")
    columns = [c for c in ("x", "y", "z") if c in frame and frame[c].notna().any()]
    frame = frame[["example_id", "t", *columns]]
    if not in_step_order(frame["example_id"].to_numpy(), frame["t"].to_numpy()):
        frame = frame.sort_values(["example_id", "t"], kind="stable")   # written in order: 0.5 s saved at 541k rows
    for column in columns:
        frame[column] = frame[column].astype(np.float32)
    return frame.reset_index(drop=True)


def in_step_order(ids: np.ndarray, t: np.ndarray, block: int = 1 << 18) -> bool:
    """Whether rows are in (example_id, t) order, strictly: block by block, so that the check's
    temporaries stay small (whole-column diffs of 5.4M rows allocate 86 MB, which on a machine
    whose fresh pages are slow to fault in took 0.6 s)."""
    for b0 in range(0, max(len(ids) - 1, 0), block):
        b1 = min(b0 + block, len(ids) - 1)
        before, after = ids[b0:b1], ids[b0 + 1:b1 + 1]
        if not np.all((after > before) | ((after == before) & (t[b0 + 1:b1 + 1] > t[b0:b1]))):
            return False
    return True


@run_cached(maxsize=16)
def last_step_projection(run: runformat.Run, projection_id: str) -> pd.DataFrame:
    """Each example's projected last step: ``example_id, t, x, y[, z]``, one row per example."""
    frame = projection(run, projection_id)
    last = frame["example_id"].to_numpy()
    ends = np.flatnonzero(np.r_[last[1:] != last[:-1], True])
    return frame.iloc[ends].reset_index(drop=True)


# -- neighbours -------------------------------------------------------------------------------

def nearest_examples(run: runformat.Run, example_id: int, k: int = 8, layer: int | None = None,
                     tensor: str = "h") -> pd.DataFrame:
    """The ``k`` examples nearest to ``example_id`` in one layer's (None: the last's) ``tensor``
    at the last step (Euclidean), nearest first, with a ``distance`` column."""
    frame = examples(run)
    position = int(np.searchsorted(frame["example_id"].to_numpy(), example_id))
    hidden = last_step_matrix(run, last_layer(run) if layer is None else layer, tensor)
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


# -- a recording's pictures by epoch ------------------------------------------------------------

def no_epochs_message(manifest: runformat.Manifest) -> str:
    return (f"run {manifest.run_id!r} kept no pictures by epoch (a recording with every=N keeps them: "
            f"{runformat.EPOCH_PROJECTIONS_FILE})")


@run_cached(maxsize=4)
def epoch_projections(run: runformat.Run) -> pd.DataFrame:
    """Every kept epoch's picture (``Run.epoch_projections``): ``epoch, example_id, t, x, y, last``
    in (epoch, example_id, t) order, x and y float32."""
    if not run.kept_epochs:
        raise runformat.RunError(no_epochs_message(run.manifest))
    frame = run.epoch_projections()
    return frame.assign(x=frame["x"].astype(np.float32), y=frame["y"].astype(np.float32),
                        last=frame["last"].astype(bool))


def epoch_picture(run: runformat.Run, epoch: int, last_only: bool = False) -> pd.DataFrame:
    """One kept epoch's picture, ``example_id, t, x, y`` (one row per example, its last step,
    with ``last_only``); a slice of ``epoch_projections``."""
    frame = epoch_projections(run)
    start, end = np.searchsorted(frame["epoch"].to_numpy(), [epoch, epoch + 1])
    part = frame.iloc[start:end]
    if last_only:
        part = part[part["last"].to_numpy()]
    return part[["example_id", "t", "x", "y"]].reset_index(drop=True)


@run_cached(maxsize=8)
def epoch_ranges(run: runformat.Run, last_only: bool = False) -> dict[str, tuple[float, float]]:
    """The extent of every kept epoch's picture together (of the last steps only, with
    ``last_only``): fixed axes under which the epochs compare."""
    frame = epoch_projections(run)
    if last_only:
        frame = frame[frame["last"].to_numpy()]
    return {axis: (float(np.nanmin(frame[axis])), float(np.nanmax(frame[axis]))) for axis in ("x", "y")}

"""The "project" stage: 2-D and 3-D pictures of one LSTM layer's states, and how far to trust them.

As in Tempczyk & Bartołd, a dense denoising autoencoder per dimension is trained on single-step
state vectors of the training split; every example's whole sequence is then encoded, which draws
it as a path that ends at its last-step state (the one the classifier reads). Beside it: PCA on the
same vectors (paths, deterministic) and t-SNE of the last-step states.

Writes into the run:

- ``projections.parquet``: projection, example_id, t, x, y, z (z NaN in 2-D), last (the example's
  last step). Paths ("ae2", "ae3", "pca2", "pca3") have a row per step; last-step projections
  ("tsne2", and "ae2-seed1", ... the other seeds' autoencoders aligned onto the first) a row per
  example. Codes are stored raw; ``pipeline.analysis.transforms.symlog`` is a view option.
- ``projection_class_stability.parquet`` and ``projection_pair_stability.parquet``
  (classification runs): see ``pipeline.analysis.trust.seed_stability``; a ``dims`` column tells the 2-D
  and 3-D autoencoders apart.

Returns the manifest entries: ``projections`` (one description per projection id: method, dims,
layer, state, scope, params and quality), ``projection_training`` (which vectors were used and how
still ends were trimmed), ``projection_trust`` (summaries), ``projection_seconds`` (per sub-step),
``projection_outputs`` (files written) and ``hand_usage`` (counts, for data with hands).

Quality, per projection, on the last-step states of every example: ``knn_preservation`` (the
share of each example's 10 nearest neighbours in the full space that stay among its 10 nearest in
the picture), ``trustworthiness`` (Venna & Kaski), and for the autoencoders and PCA the
``reconstruction_mse`` of held-out test-split vectors.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from pipeline import distributed, runformat
from pipeline.analysis import dense, trust
from pipeline.core.config import merge
from pipeline.analysis.layout import row_ids
from pipeline.analysis.lstm import NetworkWeights, layer_steps
from pipeline.core.progress import QUIET, Progress
from pipeline.core.stages import StageContext, StageSkipped
from pipeline.datasets.hands import hand_usage_counts
from pipeline.runformat import CLASS_STABILITY_FILE, PAIR_STABILITY_FILE, PROJECTIONS_FILE

METHODS = ("autoencoder", "pca", "tsne")
PATH_BLOCK_ROWS = 1 << 18      # steps drawn at a time (a task each on a cluster: 100 MB of 100-unit states)
DEFAULTS = {                   # pictures of the LSTM states, and their trust
    "methods": list(METHODS),  # any of METHODS; language models default to PCA (paths of documents)
    "layer": -1,               # which LSTM layer (-1: the last)
    "state": "h",              # "h" or "c" (any per-step tensor kind works)
    "dims": [2, 3],            # one autoencoder (and one PCA) per entry
    "hidden": [600, 150],      # encoder widths; the decoder mirrors them (the study's sizes)
    "noise": 0.1,              # std of the Gaussian noise on the autoencoder's input
    "seeds": 3,                # autoencoders per dimension; the first is drawn, all are compared
    "stability_dims": None,    # the dims whose autoencoders get every seed (None: all); others get one
    "learning_rate": 0.003,
    "batch_size": 256,
    "max_epochs": 30,          # a cap for speed: the loss still creeps down after it (STUDY_AUTOENCODERS)
    "patience": 5,             # early stopping on the validation split's vectors
    "max_vectors": 12000,      # training vectors subsampled to this many (speed); None: all
    "still_fraction": 0.1,     # trim start/end steps changing < this x the sequence's median
    "tsne_perplexity": 30,
    "tsne_iterations": 500,    # sklearn's default is 1000; 500 keeps 98% of its k-NN agreement
    "k": 10,                   # neighbours for the trust measures
    "seed": 0,                 # subsampling and t-SNE
}
# The study's way (Tempczyk & Bartołd), Auslan's default: no sample, no epoch cap short of
# convergence. On the real run's 101,343 moving training steps a 2-D autoencoder in batches of
# 2,048 at 0.01 stopped after 50 epochs (225 CPU s) with test MSE 0.057; batches of 1,024 at 0.003
# took 68 epochs (343 CPU s) for 0.046; the 12,000-vector sample capped at 30 epochs gave 0.070.
# Two seeds are the fewest the stability measure can compare, and only the 2-D pictures get them:
# the study's stability claim (God vs science) and the report read the 2-D autoencoders, and a
# second 3-D one was a quarter of the stage (477 s of the 963 s both 3-D fits took at load 3-5).
STUDY_AUTOENCODERS = {"max_vectors": None, "max_epochs": 300, "patience": 5, "batch_size": 2048,
                      "learning_rate": 0.01, "seeds": 2, "stability_dims": [2]}
TRUST_SAMPLE = 5000   # examples the neighbourhood measures score (trust_sample)
STILL_RULE = ("drop an example's first and last steps while the L2 norm of h_t - h_(t-1) stays "
              "below still_fraction x that example's median step change")


def settings_of(config: dict) -> dict:
    """The stage's settings: DEFAULTS under the run's ``project`` section."""
    settings = merge(DEFAULTS, config.get("project") or {})
    wanted = settings["stability_dims"]
    if wanted is not None and (not isinstance(wanted, list) or not all(isinstance(d, int) for d in wanted)):
        raise runformat.RunError(f"project.stability_dims: a list of dimensions (e.g. [2]) or null, not {wanted!r}")
    unknown = sorted(set(settings["methods"]) - set(METHODS))
    if unknown:
        raise runformat.RunError(f"project.methods: unknown {', '.join(map(str, unknown))}; "
                                 f"use any of {', '.join(METHODS)}")
    return settings


def project_stage(ctx: StageContext) -> str:
    """The project stage of every run kind (``core.stages.Stage``)."""
    settings = settings_of(ctx.config)
    if not settings["methods"]:
        raise StageSkipped("project.methods is empty: no projections")
    ctx.begin()
    updates = run_projection_stage(ctx.path, ctx.config, ctx.progress, ctx.scheduler)
    ctx.finish(updates.get("projection_outputs", []), **updates)
    return ", ".join(str(entry.get("id")) for entry in updates.get("projections", []))


# ---------------------------------------------------------------------------------------------
# What the projections read and learn from

@dataclass
class StageInputs:
    """One layer's per-step states of a run, and where each example's rows are."""

    run: runformat.Run
    examples: pd.DataFrame     # sorted by example_id, like the rows
    layer: int
    state: str
    states: np.ndarray         # (rows, units)

    @cached_property
    def lengths(self) -> np.ndarray:
        return self.examples["length"].to_numpy(np.int64)

    @cached_property
    def ids(self) -> np.ndarray:
        return self.examples["example_id"].to_numpy(np.int32)

    @cached_property
    def last_states(self) -> np.ndarray:
        return self.states[self.examples["row_start"].to_numpy(np.int64) + self.lengths - 1]

    def last_of(self, path: np.ndarray) -> np.ndarray:
        """The rows of ``path`` (one per step) at each example's last step."""
        return path[self.examples["row_start"].to_numpy(np.int64) + self.lengths - 1]


def read_inputs(run: runformat.Run, settings: dict) -> StageInputs:
    examples = run.examples().sort_values("example_id").reset_index(drop=True)
    layer, state = _layer_of(run, settings["layer"]), settings["state"]
    states = run.step_matrix(layer, state)
    total = int(examples["length"].sum())
    if len(states) != total:
        raise runformat.RunError(f"{runformat.steps_file(layer, state)} has {len(states)} rows but "
                             f"examples.parquet's lengths add up to {total}; rebuild the run")
    return StageInputs(run, examples, layer, state, states)


def moving_rows(states: np.ndarray, row_start: np.ndarray, lengths: np.ndarray,
                still_fraction: float) -> tuple[np.ndarray, int, int]:
    """A mask of the rows to learn from, and how many start and end steps were trimmed.

    At each end of a sequence the steps whose change ``||h_t - h_(t-1)||`` is below
    ``still_fraction`` x the sequence's median change are near-repeats of one state (the network
    waiting before the sign starts or after it ends); a few copies of each such state would weigh
    on the autoencoder like a whole sign. The step where movement starts is kept, as is the last
    moving one. Padding is not in the rows at all.
    """
    keep = np.zeros(len(states), dtype=bool)
    dropped_start = dropped_end = 0
    for start, length in zip(row_start, lengths):
        if length < 3:
            keep[start:start + length] = True
            continue
        change = np.linalg.norm(np.diff(states[start:start + length], axis=0), axis=1)
        moving = np.flatnonzero(change >= still_fraction * np.median(change))
        first, last = moving[0], moving[-1] + 1     # change[i] is the step from i to i + 1
        keep[start + first:start + last + 1] = True
        dropped_start += int(first)
        dropped_end += int(length - 1 - last)
    return keep, dropped_start, dropped_end


def training_vectors(inputs: StageInputs, settings: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Shuffled single-step vectors per split, without still ends, and the manifest's record of them.

    "train" fits the projections, "validation" stops the autoencoders early and "test" measures
    reconstruction: every moving step of each split, or a sample of at most ``max_vectors`` (a
    quarter of that for the other two) when it is set.
    """
    keep, dropped_start, dropped_end = moving_rows(
        inputs.states, inputs.examples["row_start"].to_numpy(np.int64), inputs.lengths,
        settings["still_fraction"])
    row_split = np.repeat(inputs.examples["split"].to_numpy(), inputs.lengths)
    rng = np.random.default_rng(settings["seed"])
    vectors, available = {}, {}
    fitted_on = "train" if (row_split == "train").any() else "all"
    cap = settings["max_vectors"]
    for name, limit in (("train", cap), ("validation", None if cap is None else cap // 4),
                        ("test", None if cap is None else cap // 4)):
        rows = np.flatnonzero(keep & (row_split == name))
        if len(rows) == 0:       # e.g. an import whose sequences are all "test": fit on all of them
            rows = np.flatnonzero(keep)
        available[name] = len(rows)
        vectors[name] = inputs.states[rng.permutation(rows)[:limit]]
    record = {
        "split": fitted_on, "layer": inputs.layer, "state": inputs.state, "rule": STILL_RULE,
        "still_fraction": settings["still_fraction"], "steps": int(len(inputs.states)),
        "steps_dropped_start": dropped_start, "steps_dropped_end": dropped_end,
        "train_steps_available": available["train"], "train_vectors": len(vectors["train"]),
        "subsampled": available["train"] > len(vectors["train"]),
        "early_stopping_vectors": len(vectors["validation"]), "held_out_vectors": len(vectors["test"]),
        "held_out_split": "test",
    }
    return vectors, record


# ---------------------------------------------------------------------------------------------
# The projections

@dataclass
class Projection:
    description: dict          # the manifest's entry: id, method, dims, layer, state, scope, params, quality
    table: pa.Table            # its rows of projections.parquet
    last: np.ndarray           # each example's last-step point

    @property
    def id(self) -> str:
        return self.description["id"]


def autoencoder_projections(inputs: StageInputs, vectors: dict, dims: int, settings: dict,
                            bar, scheduler=None) -> list[Projection]:
    """The first seed's autoencoder draws every path; the others give last steps, aligned onto it."""
    from pipeline.models.autoencoder import train_autoencoder  # TensorFlow only when the stage runs

    found = []
    for s in range(seeds_for(settings, dims)):
        model = train_autoencoder(vectors["train"], vectors["validation"], dims, seed=settings["seed"] + s,
                                  hidden=tuple(settings["hidden"]), noise=settings["noise"],
                                  learning_rate=settings["learning_rate"], batch_size=settings["batch_size"],
                                  max_epochs=settings["max_epochs"], patience=settings["patience"])
        params = {"hidden": list(settings["hidden"]), "noise": settings["noise"], "seed": settings["seed"] + s,
                  "epochs": model.epochs, "best_epoch": model.best_epoch, "max_epochs": settings["max_epochs"],
                  "batch_size": settings["batch_size"], "learning_rate": settings["learning_rate"]}
        quality = {"reconstruction_mse": model.reconstruction_mse(vectors["test"])}
        if s == 0:
            path = draw_paths(inputs.states, model.encoder_layers(), scheduler)
            found.append(Projection(_describe(f"ae{dims}", "autoencoder", dims, inputs, "paths", params, quality),
                                    _path_table(f"ae{dims}", inputs, path), inputs.last_of(path)))
        else:
            codes = model.encode(inputs.last_states)
            alignment = trust.procrustes_align(codes, found[0].last)
            codes = alignment.apply(codes).astype(np.float32)
            params["aligned_to"] = f"ae{dims}"
            quality["procrustes_disparity"] = alignment.disparity
            pid = f"ae{dims}-seed{s}"
            found.append(Projection(_describe(pid, "autoencoder", dims, inputs, "last", params, quality),
                                    _last_table(pid, inputs, codes), codes))
        bar.update()
    return found


def seeds_for(settings: dict, dims: int) -> int:
    """How many autoencoders draw ``dims`` dimensions: ``seeds`` for the ``stability_dims``
    (every dimension when None), one for the others."""
    wanted = settings.get("stability_dims")
    return int(settings["seeds"]) if wanted is None or dims in wanted else 1


def pca_projection(inputs: StageInputs, vectors: dict, dims: int, scheduler=None) -> Projection:
    pca = PCA(n_components=dims, svd_solver="full").fit(vectors["train"])
    components = pca.components_.T.astype(np.float32)
    path = draw_paths(inputs.states, dense.affine(components, -pca.mean_.astype(np.float32) @ components),
                      scheduler)
    restored = pca.inverse_transform(pca.transform(vectors["test"]))
    quality = {"reconstruction_mse": float(np.mean((restored - vectors["test"]) ** 2))}
    params = {"explained_variance_ratio": pca.explained_variance_ratio_.tolist()}
    return Projection(_describe(f"pca{dims}", "pca", dims, inputs, "paths", params, quality),
                      _path_table(f"pca{dims}", inputs, path), inputs.last_of(path))


def draw_paths(states: np.ndarray, layers: list[dense.Layer], scheduler=None) -> np.ndarray:
    """Every step's point: ``states`` through ``layers`` in blocks of PATH_BLOCK_ROWS, on the
    workers of ``scheduler`` when given one (a block at a time per worker), else here; the same
    blocks and arithmetic either way, so the same paths."""
    blocks = (states[r0:r0 + PATH_BLOCK_ROWS] for r0 in range(0, len(states), PATH_BLOCK_ROWS))
    drawn = list(distributed.ordered_map(dense.forward, blocks, scheduler, args=(layers,)))
    return np.concatenate(drawn) if drawn else np.zeros((0, layers[-1][0].shape[1]), np.float32)


def tsne_projection(inputs: StageInputs, settings: dict) -> Projection:
    """t-SNE of the last-step states only: it has no map for new points, so it draws no paths."""
    perplexity = float(min(settings["tsne_perplexity"], (len(inputs.ids) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=settings["tsne_iterations"],
                init="pca", random_state=settings["seed"])
    # One OpenMP thread: on a shared machine t-SNE's spinning threads ran 4x slower than one.
    with threadpool_limits(limits=1, user_api="openmp"):
        codes = tsne.fit_transform(inputs.last_states).astype(np.float32)
    params = {"perplexity": perplexity, "iterations": settings["tsne_iterations"], "init": "pca",
              "seed": settings["seed"]}
    return Projection(_describe("tsne2", "tsne", 2, inputs, "last", params,
                                {"kl_divergence": float(tsne.kl_divergence_)}),
                      _last_table("tsne2", inputs, codes), codes)


# ---------------------------------------------------------------------------------------------
# The stage

def run_projection_stage(run_path: str | Path, config: dict, progress: Progress = QUIET,
                         scheduler=None) -> dict:
    """Compute and write every projection of the run at ``run_path``; return the manifest entries.

    ``scheduler``: a dask.distributed scheduler that draws the paths (``draw_paths``); the fits
    (on at most ``max_vectors`` vectors), t-SNE and the trust measures stay in this process.

    Needs examples.parquet (example_id, split, length, row_start; label and prediction for
    classification; hand_usage when the data has hands) and the chosen layer's per-step table.
    """
    settings = settings_of(config)
    timings: dict[str, float] = {}
    with _timed(timings, "prepare"):
        inputs = read_inputs(runformat.Run(run_path), settings)
        vectors, training = training_vectors(inputs, settings)
    methods = settings["methods"]
    # A picture cannot have more dimensions than the states (or, for PCA, than the training vectors).
    width = min(inputs.states.shape[1], len(vectors["train"]))
    dims_list = [d for d in settings["dims"] if d <= width]
    skipped = [d for d in settings["dims"] if d > width]
    projections: list[Projection] = []
    steps = sum(seeds_for(settings, dims) for dims in dims_list) * ("autoencoder" in methods) + 2
    with progress.bar(steps, "project", "model") as bar:
        if "autoencoder" in methods:
            for dims in dims_list:
                with _timed(timings, f"autoencoders_{dims}d"):
                    projections += autoencoder_projections(inputs, vectors, dims, settings, bar, scheduler)
        if "pca" in methods:
            with _timed(timings, "pca"):
                projections += [pca_projection(inputs, vectors, dims, scheduler) for dims in dims_list]
        bar.update()
        if "tsne" in methods and len(inputs.ids) > 4 and width >= 2:
            with _timed(timings, "tsne"):
                projections.append(tsne_projection(inputs, settings))
        bar.update()
    if not projections:
        raise runformat.RunError(f"no projection fits states of {inputs.states.shape[1]} unit(s) "
                                 f"(project.dims {settings['dims']}, methods {methods})")
    if skipped:
        training["dims_skipped"] = {"dims": skipped, "why": f"the states have {inputs.states.shape[1]} unit(s)"}
    # Trust measures need k < n/2 neighbours: fewer for small imports, none below 4 examples.
    asked_k = int(settings["k"])
    settings = {**settings, "k": min(asked_k, (len(inputs.ids) - 1) // 2)}
    with _timed(timings, "trust_and_write"):
        if settings["k"] >= 1:
            rows = trust_sample(len(inputs.ids), settings["seed"])
            neighbourhoods = trust.Neighbourhoods(inputs.last_states[rows], settings["k"])
            for projection in projections:
                # How well the last-step picture keeps the full space's neighbourhoods (1.0: perfectly).
                projection.description["quality"].update(
                    knn_preservation=neighbourhoods.preservation(projection.last[rows]),
                    trustworthiness=neighbourhoods.trustworthiness(projection.last[rows]))
            updates, outputs = _trust(inputs, projections, settings, rows)
        else:
            why = "project.k is 0" if asked_k < 1 else "too few examples for neighbourhoods"
            updates, outputs = {"projection_trust": {"k": 0, "why": why}}, []
        runformat.write_parquet(pa.concat_tables([p.table for p in projections]), Path(run_path) / PROJECTIONS_FILE)
    updates.update(projections=[p.description for p in projections], projection_training=training,
                   projection_seconds={name: round(s, 2) for name, s in timings.items()},
                   projection_outputs=[PROJECTIONS_FILE, *outputs])
    return updates


def trust_sample(n_examples: int, seed: int) -> np.ndarray:
    """The examples the neighbourhood measures score: all of them up to ``TRUST_SAMPLE``, else a
    seeded sample of that many (the exact measures hold n x n matrices: ~2 GB at 10,000 examples)."""
    if n_examples <= TRUST_SAMPLE:
        return np.arange(n_examples)
    return np.sort(np.random.default_rng([seed, n_examples]).choice(n_examples, TRUST_SAMPLE, replace=False))


def _trust(inputs: StageInputs, projections: list[Projection], settings: dict,
           rows: np.ndarray) -> tuple[dict, list[str]]:
    """Hand-usage counts and agreement; for classifiers, seed stability (written) and mistakes.

    Neighbourhoods are scored on the examples ``rows`` (``trust_sample``); class centroids on all.
    """
    k, examples = settings["k"], inputs.examples
    drawn = {p.id: p.last for p in projections if "aligned_to" not in p.description["params"]}
    updates, summary, outputs = {}, {"k": k, "examples_scored": int(len(rows)), "examples": int(len(inputs.ids))}, []
    if "hand_usage" in examples:
        usage = examples["hand_usage"].astype("string")
        updates["hand_usage"] = hand_usage_counts(usage)
        summary["hand_usage_knn_agreement"] = _label_agreement(
            usage.iloc[rows].reset_index(drop=True), inputs.last_states[rows],
            {pid: codes[rows] for pid, codes in drawn.items()}, k)
    has_autoencoders = any(p.description["method"] == "autoencoder" for p in projections)
    if inputs.run.manifest.is_classification and "label" in examples and has_autoencoders:
        labels = examples["label"].to_numpy(np.int64)
        n_classes = len(inputs.run.classes) or int(labels.max()) + 1
        class_frames, pair_frames = [], []
        for dims in sorted({p.description["dims"] for p in projections if p.description["method"] == "autoencoder"}):
            codes = [p.last for p in projections
                     if p.description["method"] == "autoencoder" and p.description["dims"] == dims]
            per_class, pairs = trust.seed_stability(codes, labels, n_classes, inputs.last_states)
            class_frames.append(per_class.assign(dims=np.int32(dims)))
            pair_frames.append(pairs.assign(dims=np.int32(dims)))
            summary[f"ae{dims}"] = _stability_summary(per_class, pairs, codes)
        runformat.write_parquet(pd.concat(class_frames, ignore_index=True), inputs.run.path / CLASS_STABILITY_FILE)
        runformat.write_parquet(pd.concat(pair_frames, ignore_index=True), inputs.run.path / PAIR_STABILITY_FILE)
        outputs += [CLASS_STABILITY_FILE, PAIR_STABILITY_FILE]
        summary["misclassified"] = _misclassified(examples, labels, n_classes, inputs.last_states, drawn)
    updates["projection_trust"] = summary
    return updates, outputs


# ---------------------------------------------------------------------------------------------
# Helpers

@contextlib.contextmanager
def _timed(timings: dict, name: str):
    clock = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - clock


def _layer_of(run: runformat.Run, layer: int) -> int:
    """A layer index from the manifest's layers (or the step files), -1 meaning the last."""
    indices = [entry.index for entry in run.layers] or sorted(
        int(p.name[len("layer"):].split("-")[0]) for p in (run.path / "steps").glob("layer*-h.parquet"))
    if not indices:
        raise runformat.RunError(f"run {run.run_id!r} has no LSTM layers to project; rebuild it")
    if layer < 0:
        layer = indices[layer] if -len(indices) <= layer else indices[0] - 1
    if layer not in indices:
        raise runformat.RunError(f"project.layer={layer}: run {run.run_id!r} has layers {indices}")
    return layer


def _table(pid: str, ids: np.ndarray, t: np.ndarray, codes: np.ndarray, last: np.ndarray) -> pa.Table:
    n, dims = codes.shape
    z = codes[:, 2] if dims > 2 else np.full(n, np.nan, dtype=np.float32)
    return pa.table({
        "projection": pa.array([pid] * n, pa.string()),
        "example_id": pa.array(ids, pa.int32()), "t": pa.array(t, pa.int32()),
        "x": pa.array(codes[:, 0], pa.float32()), "y": pa.array(codes[:, 1], pa.float32()),
        "z": pa.array(z, pa.float32()), "last": pa.array(last, pa.bool_()),
    })


def _path_table(pid: str, inputs: StageInputs, path: np.ndarray) -> pa.Table:
    """Rows per (example, t), like the step tables."""
    lengths = inputs.lengths
    t = np.arange(len(path)) - np.repeat(np.cumsum(lengths) - lengths, lengths)   # rows are contiguous
    return _table(pid, np.repeat(inputs.ids, lengths), t, path, t == np.repeat(lengths - 1, lengths))


def _last_table(pid: str, inputs: StageInputs, codes: np.ndarray) -> pa.Table:
    """One row per example, at its last step."""
    return _table(pid, inputs.ids, inputs.lengths - 1, codes, np.ones(len(codes), dtype=bool))


def _describe(pid: str, method: str, dims: int, inputs: StageInputs, scope: str, params: dict,
              quality: dict) -> dict:
    return {"id": pid, "method": method, "dims": dims, "layer": inputs.layer, "state": inputs.state,
            "scope": scope, "params": params, "quality": quality}


def _label_agreement(usage: pd.Series, full: np.ndarray, drawn: dict, k: int) -> dict | None:
    """k-NN agreement of a per-example label in the full space and in each last-step picture.

    ``chance`` is what a picture that ignores the label would score.
    """
    known = usage.notna().to_numpy()
    labels = usage[known].to_numpy(str)
    if known.sum() <= k or len(set(labels)) < 2:
        return None
    shares = pd.Series(labels).value_counts(normalize=True)
    result = {"chance": float((shares ** 2).sum()), "full": trust.knn_label_agreement(full[known], labels, k)}
    for pid, codes in drawn.items():
        result[pid] = trust.knn_label_agreement(codes[known], labels, k)
    return result


def _stability_summary(per_class: pd.DataFrame, pairs: pd.DataFrame, codes_by_seed: list) -> dict:
    present = per_class["nearest"] >= 0
    mutual_somewhere = pairs["mutual_nearest"] > 0
    several = len(codes_by_seed) > 1        # with one seed there is nothing to compare
    stability = per_class.loc[present, "nearest_stability"]
    return {
        "seeds": len(codes_by_seed),
        "nearest_stability_mean": float(stability.mean()) if several else None,
        "classes_nearest_same_in_all_seeds": float((stability == 1).mean()) if several else None,
        "nearest_same_as_full": float((per_class.loc[present, "nearest"]
                                       == per_class.loc[present, "nearest_full"]).mean()),
        "mutual_pairs_in_any_seed": int(mutual_somewhere.sum()),
        "mutual_pairs_in_all_seeds": int((pairs["mutual_nearest"] == 1).sum()),
        "mutual_pairs_in_full_space": int(pairs["mutual_nearest_full"].sum()),
        "mutual_pairs_in_all_seeds_and_full": int(((pairs["mutual_nearest"] == 1)
                                                   & pairs["mutual_nearest_full"]).sum()),
    }


def _misclassified(examples: pd.DataFrame, labels: np.ndarray, n_classes: int, full: np.ndarray,
                   drawn: dict) -> dict | None:
    """Where the network's mistakes fall: the rank of the predicted class among the classes
    nearest the true one (by centroid distance of last-step states, 1 = the nearest), in the
    2-D autoencoder picture and in the full space. All test mistakes are listed; other splits
    are summarised."""
    pid = "ae2" if "ae2" in drawn else next((p for p in drawn if p.startswith("ae")), None)
    if pid is None or "prediction" not in examples:
        return None
    distances = {"picture": trust.centroid_distances(trust.class_centroids(drawn[pid], labels, n_classes)),
                 "full": trust.centroid_distances(trust.class_centroids(full, labels, n_classes))}
    predicted = examples["prediction"].to_numpy(np.int64)
    wrong = np.flatnonzero(predicted != labels)
    ranks = {name: np.array([trust.class_rank(d, labels[i], predicted[i]) for i in wrong], dtype=int)
             for name, d in distances.items()}
    splits = examples["split"].to_numpy()[wrong]
    by_split = {}
    for split in ("train", "validation", "test"):
        mine = splits == split
        by_split[split] = {"errors": int(mine.sum())}
        for name, r in ranks.items():
            if mine.any():
                by_split[split][f"median_rank_{name}"] = float(np.median(r[mine]))
                by_split[split][f"rank1_{name}"] = float(np.mean(r[mine] == 1))
    test = [{"example_id": int(examples["example_id"].iloc[i]), "label": int(labels[i]),
             "prediction": int(predicted[i]), "rank_picture": int(ranks["picture"][j]),
             "rank_full": int(ranks["full"][j])}
            for j, i in enumerate(wrong) if splits[j] == "test"]
    return {"picture": pid, "n_classes": n_classes, "by_split": by_split, "test": test}


# ---------------------------------------------------------------------------------------------
# Recordings: the picture as it was at each kept epoch, in one common space

def epoch_projections(snapshots: dict[int, NetworkWeights], x_rows: np.ndarray, lengths: np.ndarray,
                      layer: int = -1, max_vectors: int = 20000, seed: int = 0) -> tuple[pa.Table, dict]:
    """2-D paths of the recorded examples under each epoch's weights, in one PCA space fitted on the
    states of every kept epoch together (so that pictures of different epochs are comparable: a
    point that moves between epochs moved in state space). Returns the table and its description."""
    states = {}
    for epoch, weights in sorted(snapshots.items()):
        tensors = list(layer_steps(weights, x_rows, lengths))
        states[epoch] = tensors[layer]["h"]
    stacked = np.concatenate(list(states.values()))
    rng = np.random.default_rng(seed)
    sample = stacked[rng.permutation(len(stacked))[:max_vectors]]
    pca = PCA(n_components=min(2, stacked.shape[1]), svd_solver="full").fit(sample)
    ids, t = row_ids(lengths)
    last = t == np.repeat(np.asarray(lengths) - 1, lengths)
    tables = []
    for epoch, h in states.items():
        codes = pca.transform(h).astype(np.float32)
        if codes.shape[1] < 2:
            codes = np.column_stack([codes, np.zeros(len(codes), np.float32)])
        tables.append(pa.table({"epoch": pa.array(np.full(len(h), epoch, np.int32)),
                                "example_id": pa.array(ids), "t": pa.array(t),
                                "x": pa.array(codes[:, 0]), "y": pa.array(codes[:, 1]),
                                "last": pa.array(last)}))
    described = {"method": "pca", "dims": 2, "layer": layer, "state": "h", "epochs": sorted(states),
                 "fitted_on": f"the states of all {len(states)} kept epochs together ({len(sample)} vectors)",
                 "explained_variance_ratio": pca.explained_variance_ratio_.tolist()}
    return pa.concat_tables(tables), described

"""Run kind ``classification``: an LSTM classifier trained here on sequences (Auslan, synthetic signs).

Stages: data -> train -> extract -> project.

- data: the data set (``pipeline.datasets``) -> examples.parquet and steps/inputs.parquet (the raw
  input channels at every real step); nothing is written before the data has loaded.
- train: ``models.classifier`` -> models/classifier.keras, models/weights.npz, history.parquet.
- extract: the NumPy recompute of every layer's h, c and gates and the per-step class
  probabilities (``core.steps``), the examples' prediction columns, metrics per split; with
  ``model.attention``, each step's attention weight (steps/attention.parquet).
- project: ``pipeline.project``, shared by every kind.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import attribute, project
from pipeline.core import aggregates, steps
from pipeline.core.config import merge
from pipeline.core.errors import DataError
from pipeline.core.examples import examples_table, with_predictions
from pipeline.analysis.layout import StepLayout
from pipeline.analysis.lstm import NetworkWeights
from pipeline.core.predictions import Predictions
from pipeline.core.progress import QUIET, Progress
from pipeline.core.stages import RunSummary, Stage, StageContext, library_versions, run_stages, source_listing
from pipeline.datasets import SequenceDataset, registry
from pipeline.datasets.hands import hand_columns
from pipeline.datasets.splits import stratified_split
from pipeline.runformat import (CLASSIFICATION, EXAMPLES_FILE, HISTORY_FILE, INPUTS_FILE, SPLITS,
                                WEIGHTS_FILE, Run, stable_hash, step_table)

DEFAULT_RUNS_DIR = Path("data") / "runs"
MODEL_FILE = "models/classifier.keras"

# The Tempczyk & Bartołd protocol for Auslan is the default; the synthetic signs share it.
BASE = {
    "dataset": registry.DEFAULTS,
    "split": {"train": 0.7, "seed": 0},   # stratified; the rest is halved into validation and test
    # dropout: on LSTM inputs, training only; attention: attention pooling instead of the last step
    "model": {"units": [100], "standardise": True, "dropout": 0.2, "attention": False},
    "train": {
        # Batches of 128 at 0.006 with patience 6 and 16 took 124-155 epochs (413-523 CPU s) but
        # spread wider on seeds 0-4 (bench/accuracy.py): 0.987, 0.971, 0.979, 0.952, 0.947.
        "epochs": 300,
        "batch_size": 64,          # 2x fewer steps than 32 at the same accuracy (bench/accuracy.py)
        "learning_rate": 0.003,
        "patience": 30,            # early stopping on validation loss; best weights are restored
        "seed": 0,
        "jit_compile": False,      # XLA: on 2-core CPUs its steps took 1.8x as long as TF's own kernels
        # Learning rate halved after lr_patience epochs without a lower validation loss.
        "lr_schedule": "plateau", "lr_factor": 0.5, "lr_patience": 10, "min_lr": 1e-4,
        # Fresh glove-data augmentation of the training split at every epoch (models.classifier):
        # pace (time warp), movement size, hand position/glove fit offsets, sensor noise.
        "augment": {"time_warp": 0.1, "scale": 0.1, "offset": 0.05, "noise": 0.02},
    },
    "extract": {"top_k": 5},
    "attribute": attribute.DEFAULTS,
    "project": project.DEFAULTS,
}

DATASET_OVERRIDES = {
    # The generated signs: batches of 32 for their 450 training signs, lighter projections. With
    # the dropout and patience of Auslan's protocol (150 epochs at most), a seed that stopped at
    # 0.926 test accuracy after 30 epochs without dropout reached 0.963 (bench/accuracy.py).
    # Averaged weights (models.classifier, ``ema``): seeds 0-4 0.982, 0.963, 0.954, 0.982, 0.954
    # test accuracy, without 0.963, 0.954, 0.954, 0.981, 0.898 (validation accuracy is 1.0 in
    # most trials, so early stopping alone has little to go on).
    "synthetic": {"train": {"epochs": 150, "patience": 25, "lr_patience": 8, "batch_size": 32, "ema": 0.99},
                  "project": {"max_vectors": 6000, "max_epochs": 20}},
    # The study's autoencoders: every moving step of the training split, trained until the
    # validation loss stops falling (project.DEFAULTS samples 12,000 and caps at 30 epochs).
    "auslan": {"project": project.STUDY_AUTOENCODERS},
}


def default_config(dataset: str) -> dict:
    config = copy.deepcopy(BASE)
    config["dataset"]["name"] = dataset
    return merge(config, DATASET_OVERRIDES.get(dataset, {}))


def default_run_id(config: dict) -> str:
    """Readable ids: ``synthetic``, ``auslan``, ``auslan-merged`` (his/hers kept as a class)."""
    dataset = config["dataset"]
    return dataset["name"] + ("-merged" if dataset.get("his_hers") == "merge" else "")


def stage_hashes(config: dict) -> dict[str, str]:
    data = stable_hash("data", config["dataset"], config["split"], source_listing(config["dataset"]["source"]))
    train = stable_hash("train", data, _hashed_model(config["model"]), config["train"])
    extract = stable_hash("extract", train, config["extract"])
    return {"data": data, "train": train, "extract": extract,
            "attribute": stable_hash("attribute", extract, config.get("attribute")),
            "project": stable_hash("project", extract, config["project"])}


def _hashed_model(model: dict) -> dict:
    """The model config as hashed: ``attention: false`` left out, so runs from before the option
    keep their hashes (and are not retrained)."""
    return {k: v for k, v in model.items() if not (k == "attention" and not v)}


def run_classification(config: dict, runs_dir=DEFAULT_RUNS_DIR, run_id: str | None = None,
                       force: bool = False, progress: Progress = QUIET, loader=registry.load_dataset,
                       scheduler=None) -> RunSummary:
    """Build (or resume) the run of ``config``; ``loader`` turns ``config["dataset"]`` into a
    SequenceDataset (the registry by default). ``scheduler``: a dask.distributed scheduler for
    the extraction and the projections' paths (the same run as in process)."""
    config = _resolved(config)
    stages = [Stage("data", lambda ctx: _data_stage(ctx, loader)), Stage("train", _train_stage),
              Stage("extract", _extract_stage), Stage("attribute", attribute.attribute_stage),
              Stage("project", project.project_stage)]
    return run_stages(stages, config, stage_hashes(config), runs_dir, run_id or default_run_id(config),
                      force, progress, scheduler)


def _resolved(config: dict) -> dict:
    """The config with the data source as an absolute path (the hash must not depend on the cwd)."""
    source = config["dataset"].get("source")
    if source is None:
        return config
    return {**config, "dataset": {**config["dataset"], "source": str(Path(source).resolve())}}


@dataclass
class Prepared:
    """What the stages after ``data`` read: the left-padded raw inputs and their labels."""

    X: np.ndarray            # float32 (n, T, channels), left-padded with zeros
    lengths: np.ndarray      # int (n,)
    labels: np.ndarray       # int (n,)
    split: np.ndarray        # "train" / "validation" / "test" per example
    classes: list[str]
    examples: pd.DataFrame   # examples.parquet as the data stage wrote it


def _prepared(ctx: StageContext) -> Prepared:
    if "prepared" not in ctx.memo:
        ctx.memo["prepared"] = read_prepared(ctx.path)
    return ctx.memo["prepared"]


def _data_stage(ctx: StageContext, loader) -> str:
    dataset = loader(ctx.config["dataset"])            # DataError here leaves the run untouched
    split = stratified_split(dataset.labels, float(ctx.config["split"]["train"]), int(ctx.config["split"]["seed"]))
    X = left_padded(dataset)
    hands = hand_columns(dataset)
    meta = dataset.meta.reset_index(drop=True)
    if hands is not None:
        meta = pd.concat([meta, hands.drop(columns=[c for c in hands if c in meta])], axis=1)
    try:
        examples = examples_table(dataset.lengths, split, labels=dataset.labels, classes=list(dataset.classes),
                                  meta=meta)
    except DataError as error:
        raise DataError(f"{dataset.name}: {error}") from None
    layout = StepLayout(dataset.lengths, dataset.n_steps)
    writer = ctx.begin()
    inputs = step_table(layout.example_ids(), layout.step_index(), layout.real_rows(X), dataset.channels)
    outputs = [writer.write_table(EXAMPLES_FILE, examples), writer.write_table(INPUTS_FILE, inputs)]
    counts = pd.Series(split).value_counts()
    ctx.finish(outputs, kind=CLASSIFICATION, origin="trained",
               dataset={"name": dataset.name, "source": dataset.source, "notes": dataset.notes},
               classes=list(dataset.classes), n_examples=len(examples),
               n_steps=int(dataset.n_steps), channels=list(dataset.channels),
               splits={name: int(counts.get(name, 0)) for name in SPLITS},
               hands={hand: [int(c) for c in channels] for hand, channels in dataset.hands.items()})
    ctx.memo["prepared"] = Prepared(X, np.asarray(dataset.lengths), np.asarray(dataset.labels), split,
                                    list(dataset.classes), examples)
    return f"{len(examples)} examples, {len(dataset.classes)} classes"


def _train_stage(ctx: StageContext) -> str:
    from pipeline.models import classifier, keras_weights
    prepared = _prepared(ctx)
    writer = ctx.begin()
    training = classifier.train_classifier(prepared.X, prepared.lengths, prepared.labels, prepared.split,
                                           len(prepared.classes), ctx.config["model"], ctx.config["train"],
                                           ctx.progress)
    ctx.memo["weights"], outputs = keras_weights.save_trained(training.model, writer.path, MODEL_FILE)
    standardisation = (None if training.mean is None else
                       {"mean": training.mean.tolist(), "std": training.std.tolist()})
    ctx.finish([*outputs, writer.write_table(HISTORY_FILE, training.history)],
               layers=[{"index": i, "units": int(u)} for i, u in enumerate(ctx.config["model"]["units"])],
               standardisation=standardisation, versions=library_versions())
    return f"{len(training.history)} epochs"


def _extract_stage(ctx: StageContext) -> str:
    prepared = _prepared(ctx)
    weights = ctx.memo.get("weights") or NetworkWeights.load(ctx.path / WEIGHTS_FILE)
    top_k = int(ctx.config["extract"]["top_k"])
    writer = ctx.begin()
    layout = StepLayout(prepared.lengths, prepared.X.shape[1])
    rows = layout.real_rows(prepared.X)
    source = steps.network_source(weights, lambda r0, r1: rows[r0:r1], prepared.lengths,
                                  scheduler=ctx.scheduler)
    predictions = Predictions(CLASSIFICATION, prepared.lengths, prepared.classes, top_k, labels=prepared.labels)
    outputs = steps.write_steps(writer, source, predictions, progress=ctx.progress,
                                storage=ctx.config["extract"].get("storage"))
    examples = with_predictions(prepared.examples, predictions.per_example())
    outputs.append(writer.write_table(EXAMPLES_FILE, examples))
    outputs += aggregates.write_gate_aggregates(writer, examples, source.layers)
    outputs += aggregates.write_example_states(writer, examples, source.layers)
    metrics = predictions.metrics(prepared.split)
    ctx.finish(outputs, top_k=top_k, metrics=metrics, attention="pooling" if weights.has_attention else None)
    accuracy = metrics.get("test", {}).get("accuracy")
    return f"{layout.n_rows} steps x {len(weights.layers)} layer(s)" + (
        f", test accuracy {accuracy:.4f}" if accuracy is not None else "")


def left_padded(dataset: SequenceDataset) -> np.ndarray:
    """The dataset's X with the zeros before each sequence (the models read the last step)."""
    X = np.asarray(dataset.X, dtype=np.float32)
    if dataset.padding == "left":
        return X
    layout = StepLayout(dataset.lengths, dataset.n_steps)
    rows = X[layout.example_ids(), layout.step_index()]
    return layout.to_padded(rows)


def read_prepared(run_path) -> Prepared:
    """Rebuild the data stage's result from the run itself (when that stage is skipped)."""
    run = Run(run_path)
    examples = run.examples()
    channels = run.manifest["channels"]
    layout = StepLayout(examples["length"].to_numpy(), int(run.manifest["n_steps"]))
    rows = run.steps("inputs", columns=channels).to_numpy(dtype=np.float32)
    return Prepared(layout.to_padded(rows), layout.lengths, examples["label"].to_numpy(),
                    examples["split"].to_numpy(), run.classes, examples)

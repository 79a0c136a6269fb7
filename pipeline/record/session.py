"""A run recorded while a model trains, framework-free: the examples and inputs when training starts,
a history row every epoch (the run is readable all along, status "training"), every per-step tensor,
the predictions and the projections when it ends (``kinds.imported.write_run``, origin "recorded").

The Keras callback (``record.keras``) and the PyTorch recorder (``record.torch``) turn their model
into ``core.lstm.NetworkWeights`` and call this; the recompute is the engine's own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.examples import examples_table
from pipeline.analysis.layout import row_ids
from pipeline.analysis.lstm import SATURATION, NetworkWeights, gate_statistics, layer_steps
from pipeline.importers.base import DEFAULT_SPLIT, ImportedRun, StepArray, check_labels, check_split, model_blocks
from pipeline.kinds.imported import write_run
from pipeline.project import epoch_projections
from pipeline.runformat import (CLASSIFICATION, EPOCH_PROJECTIONS_FILE, EXAMPLES_FILE, HISTORY_FILE, INPUTS_FILE,
                                LANGUAGE_MODEL, SPLITS, RunWriter, stable_hash, step_table, validate_run_id)

SAMPLE = 128          # recorded examples the per-epoch gate statistics are computed on
PADDINGS = ("right", "left")


class Recording:
    """One run being recorded. ``inputs`` are the examples as the model takes them: (n, T, channels)
    floats, or (n, T) token ids; ``lengths`` their real steps (default: all T), ``padding`` which
    side the padding is on ("right": real steps first)."""

    def __init__(self, run: str | os.PathLike, inputs, *, labels=None, classes=None, split=None,
                 lengths=None, names=None, padding: str = "right", every: int = 0,
                 project: dict | None = None, framework: str = "keras"):
        path = Path(run)
        self.runs_dir, self.run_id = path.parent, validate_run_id(path.name)
        self.inputs = np.asarray(inputs)
        if self.inputs.ndim not in (2, 3) or not len(self.inputs):
            raise DataError(f"inputs has shape {self.inputs.shape}: expected (examples, steps, channels) "
                            f"or (examples, steps) token ids")
        n, T = self.inputs.shape[:2]
        if padding not in PADDINGS:
            raise DataError(f"padding must be one of {PADDINGS}, not {padding!r}")
        self.padding = padding
        self.lengths = np.full(n, T, np.int64) if lengths is None else np.asarray(lengths, np.int64)
        if self.lengths.shape != (n,) or self.lengths.min() < 1 or self.lengths.max() > T:
            raise DataError(f"lengths must give each of the {n} examples 1 to {T} steps")
        self.labels, self.classes = (None, [])
        if labels is not None:
            self.labels, self.classes = check_labels(np.asarray(labels).reshape(-1), classes, n)
        self.split = (np.full(n, DEFAULT_SPLIT, object) if split is None
                      else check_split(np.asarray(split).astype(str), n))
        self.names = None if names is None else np.asarray(names, dtype=object)
        self.every, self.project, self.framework = int(every), project, framework
        self.history: list[dict] = []
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"cannot create the runs folder {self.runs_dir.name!r}: {error.strerror}") from None
        if not os.access(self.runs_dir, os.W_OK):
            raise DataError(f"the runs folder {self.runs_dir.name!r} is not writable")
        sample = np.random.default_rng(0).permutation(n)[:SAMPLE]
        self.sample = np.sort(sample)

    @property
    def kind(self) -> str:
        return CLASSIFICATION if self.labels is not None else LANGUAGE_MODEL

    def step_array(self) -> StepArray:
        values = self.inputs if self.inputs.ndim == 3 else self.inputs[..., None]
        return StepArray("inputs", values, self.lengths, self.padding)

    def rows(self, examples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The real steps of (some) examples back to back, and their lengths."""
        chosen = np.arange(len(self.lengths)) if examples is None else examples
        lengths = self.lengths[chosen]
        array = StepArray("inputs", (self.inputs if self.inputs.ndim == 3 else self.inputs[..., None])[chosen],
                          lengths, self.padding)
        return array.read(0, int(lengths.sum())), lengths

    # -- while training ------------------------------------------------------------------------
    def start(self) -> None:
        """Write what is known before the first epoch; the run is listed as training from now on."""
        writer = RunWriter(self.runs_dir, self.run_id)
        writer.reset(status="training")
        examples = examples_table(self.lengths, self.split, labels=self.labels, classes=self.classes,
                                  names=self.names)
        outputs = [writer.write_table(EXAMPLES_FILE, examples)]
        channels = None
        if self.inputs.ndim == 3 and np.issubdtype(self.inputs.dtype, np.floating):
            rows, _ = self.rows()
            ids, t = row_ids(self.lengths)
            channels = [f"input{j}" for j in range(rows.shape[1])]
            outputs.append(writer.write_table(INPUTS_FILE, step_table(ids, t, rows, channels)))
        counts = pd.Series(self.split).value_counts()
        writer.finish_stage("record", "", 0.0, outputs, kind=self.kind, origin="recorded", status="training",
                            dataset={"name": self.run_id, "source": f"recorded from {self.framework}",
                                     "format": self.framework},
                            classes=list(self.classes), n_examples=len(self.lengths), channels=channels,
                            splits={name: int(counts.get(name, 0)) for name in SPLITS},
                            recording=self._description())

    def epoch(self, epoch: int, logs: dict, weights: NetworkWeights) -> dict:
        """One history row: the framework's logs, and gate saturation and state spread on the sample."""
        row = {"epoch": int(epoch), **{k: float(v) for k, v in logs.items() if _is_number(v)}}
        x, lengths = self.rows(self.sample)
        row.update(gate_statistics(weights, x, lengths))
        row.update(state_spread(weights, x, lengths))
        self.history.append(row)
        writer = RunWriter(self.runs_dir, self.run_id)
        name = writer.write_table(HISTORY_FILE, pd.DataFrame(self.history))
        if self.every and epoch % self.every == 0:
            (writer.path / "models" / "epochs").mkdir(parents=True, exist_ok=True)
            weights.save(writer.path / "models" / "epochs" / f"epoch-{epoch:05d}.npz")
        writer.finish_stage("record", "", 0.0, [EXAMPLES_FILE, name], status="training",
                            recording={**self._description(), "epochs": len(self.history)})
        return row

    # -- at the end ----------------------------------------------------------------------------
    def finish(self, weights: NetworkWeights, final_probabilities: np.ndarray | None = None,
               notes: dict | None = None) -> Path:
        """Write every per-step tensor, the predictions and the projections: the run is complete."""
        imported = ImportedRun(name=self.run_id, source=f"recorded from {self.framework}", format=self.framework,
                               lengths=self.lengths, widths={}, blocks=lambda: iter(()), labels=self.labels,
                               classes=list(self.classes), split=self.split, names=self.names,
                               fingerprint=[self.started, len(self.history)],
                               notes={"recording": {**self._description(), "epochs": len(self.history),
                                                    **(notes or {})}})
        inputs = self.step_array()
        model_blocks(imported, weights, inputs)
        if self.inputs.ndim == 3 and weights.embedding is None:
            imported.inputs, imported.channels = inputs, [f"input{j}" for j in range(inputs.width)]
        if imported.n_predictions and self.kind == CLASSIFICATION and len(self.classes) < imported.n_predictions:
            imported.classes = self.classes + [f"class{k}" for k in range(len(self.classes), imported.n_predictions)]
        if imported.n_predictions and self.kind == LANGUAGE_MODEL:
            imported.vocabulary = [f"token{k}" for k in range(imported.n_predictions)]
        path, _ = write_run(imported, self.runs_dir, self.run_id, force=True, project_settings=self.project,
                            origin="recorded", history=pd.DataFrame(self.history) if self.history else None,
                            final_probabilities=final_probabilities)
        if self.every:
            self._epoch_pictures(weights)
        return path

    def _epoch_pictures(self, final: NetworkWeights) -> None:
        """The representation forming: the recorded examples' paths at each kept epoch (and the
        last), in one space (``project.epoch_projections``)."""
        folder = self.runs_dir / self.run_id / "models" / "epochs"
        snapshots = {int(p.stem.split("-")[1]): NetworkWeights.load(p) for p in sorted(folder.glob("epoch-*.npz"))}
        snapshots[len(self.history)] = final
        started = time.perf_counter()
        x, lengths = self.rows()
        table, described = epoch_projections(snapshots, x, lengths)
        writer = RunWriter(self.runs_dir, self.run_id)
        name = writer.write_table(EPOCH_PROJECTIONS_FILE, table)
        writer.finish_stage("epochs", stable_hash("epochs", sorted(snapshots)), time.perf_counter() - started,
                            [name], epoch_projections=described)

    def _description(self) -> dict:
        return {"framework": self.framework, "every": self.every, "started": self.started,
                "sample": len(self.sample), "saturation": list(SATURATION)}


def state_spread(weights: NetworkWeights, x: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """How far apart the examples' last-step h are (mean over units of the std across examples), per
    layer: near 0 means the hidden state has collapsed to a constant."""
    last = np.cumsum(lengths) - 1
    return {f"layer{index}_h_spread": float(tensors["h"][last].std(axis=0).mean())
            for index, tensors in enumerate(layer_steps(weights, x, lengths))}


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True

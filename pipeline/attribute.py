"""The attribute stage: which frames and channels each prediction rests on.

For a classification run with weights (``models/weights.npz``) and, for integrated gradients, a
Keras model:

- ``steps/attribution-predicted.parquet`` / ``steps/attribution-true.parquet``: integrated
  gradients (``models.attribution``) of the predicted / the true class's probability with respect
  to every input (step x channel), one float32 column per channel. The baseline is the padding
  (standardised 0); the true class is computed for mistakes only (for the others it is the
  predicted one). ``completeness_gap`` in examples.parquet.
- ``steps/occlusion.parquet``: per step, the drop of the predicted (``predicted_drop``) and the
  true class's (``true_drop``) final probability when the window of ``window`` frames holding the
  step is replaced by the neutral frame (``analysis.whatif.occlusion``, NumPy).

An attention model (``model.attention``) is skipped, said why (``ATTENTION_REFUSAL``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.analysis.layout import StepLayout, row_ids
from pipeline.analysis.lstm import NetworkWeights
from pipeline.analysis.whatif import occlusion
from pipeline.core.config import merge
from pipeline.core.stages import StageContext, StageSkipped
from pipeline.runformat import (ATTRIBUTION_BY_CLASS_FILE, ATTRIBUTION_FILES, EXAMPLES_FILE, INPUTS_FILE,
                                OCCLUSION_FILE, WEIGHTS_FILE, Run, step_table)

METHODS = ("integrated_gradients", "occlusion")
DEFAULTS = {
    "methods": list(METHODS),
    "steps": 4,                # integrated gradients: equal trapezoid intervals to start with,
    "tolerance": 0.02,         # halved where they err while an example's completeness gap is over this,
    "max_steps": 32,           # up to this many intervals (models.attribution)
    "batch": 256,              # examples at a time
    "window": 5,               # occluded frames at a time
}
ATTENTION_REFUSAL = ("attribution is not computed for attention models: integrated gradients and "
                     "occlusion here run the network to its last step's h, which an attention model "
                     "does not feed to its head (its Attention view shows the weights instead)")
BASELINE = ("the padding: all-zero standardised frames (the channel means), what the network reads "
            "before a sign starts; the path runs in standardised space")


def settings_of(config: dict) -> dict:
    return merge(DEFAULTS, config.get("attribute") or {})


def attribute_stage(ctx: StageContext) -> str:
    settings = settings_of(ctx.config)
    if not settings["methods"]:
        raise StageSkipped("attribute.methods is empty: no attribution")
    run = Run(ctx.path)
    if not run.manifest.is_classification or not run.has(WEIGHTS_FILE) or not run.has(INPUTS_FILE):
        raise StageSkipped("attribution needs a classifier's weights and inputs")
    examples = run.examples()
    channels = list(run.manifest["channels"])
    lengths = examples["length"].to_numpy(np.int64)
    rows = run.steps("inputs", columns=channels).to_numpy(np.float32)
    predicted = examples["prediction"].to_numpy(np.int64)
    true = examples["label"].to_numpy(np.int64)
    wrong = np.flatnonzero(predicted != true)
    weights = NetworkWeights.load(run.path / WEIGHTS_FILE)
    if weights.has_attention:
        raise StageSkipped(ATTENTION_REFUSAL)
    writer = ctx.begin()
    outputs, described, seconds = [], {"baseline": BASELINE, "methods": settings["methods"]}, {}
    ids, t = row_ids(lengths)
    examples = examples.drop(columns=["completeness_gap"], errors="ignore")
    if "integrated_gradients" in settings["methods"]:
        started = time.perf_counter()
        from pipeline.models import attribution, keras_weights
        model = keras_weights.load_keras_model(_model_file(run))
        layout = StepLayout(lengths, int(run.manifest["n_steps"]))
        X = layout.to_padded(rows)
        jobs = np.concatenate([np.arange(len(examples)), wrong])    # the predicted class, then the true one
        result = attribution.integrated_gradients(
            model, X[jobs], np.concatenate([predicted, true[wrong]]), settings["steps"], settings["batch"],
            settings["tolerance"], settings["max_steps"])
        predicted_rows = layout.real_rows(result.values[:len(examples)])
        true_rows = predicted_rows.copy()
        if len(wrong):
            mask = np.isin(ids, wrong)
            true_rows[mask] = StepLayout(lengths[wrong], layout.n_steps).real_rows(result.values[len(examples):])
        for which, values in (("predicted", predicted_rows), ("true", true_rows)):
            outputs.append(writer.write_table(ATTRIBUTION_FILES[which], step_table(ids, t, values, channels)))
        outputs.append(writer.write_table(ATTRIBUTION_BY_CLASS_FILE,
                                          by_class(predicted_rows, lengths, true, channels)))
        gaps = result.gaps[:len(examples)]
        examples["completeness_gap"] = gaps.astype(np.float32)
        seconds["integrated_gradients"] = round(time.perf_counter() - started, 2)
        described["integrated_gradients"] = {
            "rule": attribution.RULE, "steps": settings["steps"], "max_steps": settings["max_steps"],
            "tolerance": settings["tolerance"], "target": "class probability",
            "refined": int(np.sum(result.intervals > settings["steps"])), "attributions": len(jobs),
            "intervals_mean": round(float(result.intervals.mean()), 2),
            "completeness_gap_median": float(np.median(gaps)), "completeness_gap_p90": float(np.quantile(gaps, 0.9))}
    if "occlusion" in settings["methods"]:
        started = time.perf_counter()
        drop_predicted = occlusion(weights, rows, lengths, predicted, settings["window"])
        drop_true = drop_predicted.copy()
        if len(wrong):
            starts = examples["row_start"].to_numpy(np.int64)
            wrong_rows = np.concatenate([np.arange(starts[i], starts[i] + lengths[i]) for i in wrong])
            drop_true[wrong_rows] = occlusion(weights, rows[wrong_rows], lengths[wrong], true[wrong],
                                              settings["window"])
        table = pa.table({"example_id": ids, "t": t, "predicted_drop": drop_predicted, "true_drop": drop_true})
        outputs.append(writer.write_table(OCCLUSION_FILE, table))
        seconds["occlusion"] = round(time.perf_counter() - started, 2)
        described["occlusion"] = {"window": settings["window"], "replaced_by": "the neutral frame (channel means)"}
    outputs.append(writer.write_table(EXAMPLES_FILE, examples))
    described["seconds"] = seconds
    ctx.finish(outputs, attribution=described)
    gap = described.get("integrated_gradients", {}).get("completeness_gap_median")
    return ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()) + (
        f"; median completeness gap {gap:.1%}" if gap is not None else "")


def _model_file(run: Run) -> str:
    return str(run.path / next(name for name in run.manifest["stages"]["train"]["outputs"] if name.endswith(".keras")))


def by_class(values: np.ndarray, lengths: np.ndarray, labels: np.ndarray, channels: list[str]) -> pd.DataFrame:
    """Per class and tenth of the sign (``part`` 0..9), the mean |attribution| of each channel:
    which part of a sign, and which channels, the network looks at."""
    lengths = np.asarray(lengths, np.int64)
    _, t = row_ids(lengths)
    frame = pd.DataFrame(np.abs(values), columns=channels)
    frame["label"] = np.repeat(labels, lengths).astype(np.int32)
    frame["part"] = np.minimum(t * 10 // np.repeat(lengths, lengths), 9).astype(np.int8)
    return frame.groupby(["label", "part"], as_index=False).mean()

"""Why did it decide: integrated gradients against a finite-difference gradient and completeness,
occlusion against a direct recompute, what-if edits against Keras, and the attribute stage's run."""

from __future__ import annotations

import numpy as np
import pytest

from factories import random_dataset
from pipeline import runformat
from pipeline.analysis import whatif
from pipeline.analysis.layout import StepLayout
from pipeline.analysis.lstm import NetworkWeights

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny():
    from pipeline.models import classifier
    from pipeline.models.keras_weights import network_weights
    data = random_dataset(n=12, n_steps=8, n_channels=3, seed=5)
    keras.utils.set_random_seed(5)
    mean, std = classifier.channel_stats(data.X, data.lengths)
    model = classifier.build_classifier(8, 3, 3, [5], mean, std)
    return data, model, network_weights(model)[0]


def test_att001_integrated_gradients_match_finite_differences_and_complete(tiny):
    from pipeline.models import attribution
    data, model, _ = tiny
    classes = np.arange(len(data.labels)) % 3
    result = attribution.integrated_gradients(model, data.X, classes, batch=4)
    attributions = result.values
    assert attributions.shape == data.X.shape
    # Completeness: the attributions sum to p(x) - p(baseline), to the tolerance (2%).
    assert np.median(result.gaps) < 0.02
    # At the start of the path the integrand is the gradient at the baseline; check the gradient the
    # code differentiates against central finite differences of the standardised-input model.
    tail, mean, std = attribution.network_tail(model)
    z = attribution.standardised(data.X[:1], mean, std)
    import tensorflow as tf
    point = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(point)
        picked = tail(point)[0, classes[0]]
    analytic = tape.gradient(picked, point).numpy()[0]
    eps = 1e-3
    for step, channel in ((7, 0), (6, 2), (8 - int(data.lengths[0]), 1)):
        plus, minus = z.copy(), z.copy()
        plus[0, step, channel] += eps
        minus[0, step, channel] -= eps
        numeric = (tail(plus).numpy()[0, classes[0]] - tail(minus).numpy()[0, classes[0]]) / (2 * eps)
        assert analytic[step, channel] == pytest.approx(numeric, abs=2e-3)
    # Padding frames get no attribution (they are the baseline).
    padding = np.arange(8)[None, :] < (8 - data.lengths)[:, None]
    assert np.all(attributions[padding] == 0)


def test_att005_refinement_halves_intervals_until_the_gap_is_under_the_tolerance(tiny):
    from pipeline.models import attribution
    data, model, _ = tiny
    classes = np.asarray(data.labels)
    coarse = attribution.integrated_gradients(model, data.X, classes, steps=1, tolerance=np.inf)
    assert np.all(coarse.intervals == 1) and np.median(coarse.gaps) > 0.01     # one trapezoid errs
    refined = attribution.integrated_gradients(model, data.X, classes, steps=1, tolerance=0.001, max_steps=64)
    assert refined.intervals.max() > 1 and refined.intervals.max() <= 64
    done = refined.intervals < 64
    assert done.any() and np.all(refined.gaps[done] <= 0.001 * 1.01 + 1e-6)
    # A cap on the intervals stops the refinement there.
    capped = attribution.integrated_gradients(model, data.X, classes, steps=1, tolerance=0.0, max_steps=3)
    assert np.all(capped.intervals == 3)
    with pytest.raises(ValueError, match="steps <= max_steps"):
        attribution.integrated_gradients(model, data.X, classes, steps=8, max_steps=4)


def test_att006_cutting_the_common_padding_changes_nothing(tiny):
    """Batches run from the state their leading padding leaves: the same as the whole padded input."""
    import tensorflow as tf
    from pipeline.models import attribution
    data, model, _ = tiny
    classes = np.asarray(data.labels)
    steps = 4
    result = attribution.integrated_gradients(model, data.X, classes, steps=steps, batch=3, tolerance=np.inf)
    tail, mean, std = attribution.network_tail(model)
    z = attribution.standardised(data.X, mean, std)
    total = np.zeros_like(z)
    for k in range(steps + 1):
        point = tf.constant(z * (k / steps))
        with tf.GradientTape() as tape:
            tape.watch(point)
            picked = tf.gather(tail(point), classes, axis=1, batch_dims=1)
        total += tape.gradient(picked, point).numpy() * (0.5 if k in (0, steps) else 1.0) / steps
    np.testing.assert_allclose(result.values, total * z, atol=1e-5)


def test_att002_occlusion_equals_a_direct_recompute(tiny):
    data, model, weights = tiny
    layout = StepLayout(data.lengths, data.n_steps)
    rows = layout.real_rows(data.X)
    classes = np.asarray(data.labels)
    drop = whatif.occlusion(weights, rows, data.lengths, classes, window=3)
    i = int(np.argmax(data.lengths))
    start = int(layout.row_start[i])
    frames = rows[start:start + data.lengths[i]]
    base = whatif.answer(weights, frames)["probabilities"][-1, classes[i]]
    masked = whatif.answer(weights, whatif.mask_window(frames, weights, 3, 6))["probabilities"][-1, classes[i]]
    np.testing.assert_allclose(drop[start + 3:start + 6], base - masked, atol=1e-6)
    assert drop[start + 3] == drop[start + 5] and len(drop) == layout.n_rows


def test_att003_what_if_edits_equal_keras_on_the_edited_input(tiny):
    data, model, weights = tiny
    layout = StepLayout(data.lengths, data.n_steps)
    i = int(np.argmax(data.lengths))
    frames = layout.real_rows(data.X)[layout.row_start[i]:layout.row_start[i] + data.lengths[i]]
    for edited in (whatif.mask_window(frames, weights, 2, 5), whatif.drop_channels(frames, weights, [0, 1]),
                   whatif.cut_at(frames, 4)):
        ours = whatif.answer(weights, edited)["probabilities"][-1]
        padded = np.zeros((1, data.n_steps, 3), np.float32)
        padded[0, data.n_steps - len(edited):] = edited
        np.testing.assert_allclose(ours, model.predict(padded, verbose=0)[0], atol=1e-5)
    # The neutral frame standardises to exactly zero: "gone" is what the padding looks like.
    np.testing.assert_allclose((whatif.neutral_frame(weights, 3) - weights.mean) / weights.std, 0)


def test_att004_the_attribute_stage_writes_attributions_and_decisive_steps(synthetic_run):
    run = synthetic_run
    manifest = run.manifest
    described = manifest["attribution"]
    assert set(described["methods"]) == {"integrated_gradients", "occlusion"}
    assert "padding" in described["baseline"]
    examples = run.examples()
    predicted = run.read_table(runformat.ATTRIBUTION_FILES["predicted"])
    assert list(predicted.columns[2:]) == manifest["channels"] and len(predicted) == examples["length"].sum()
    assert examples["completeness_gap"].notna().all()
    assert described["integrated_gradients"]["completeness_gap_median"] == pytest.approx(
        float(np.median(examples["completeness_gap"])), rel=1e-5)
    occluded = run.read_table(runformat.OCCLUSION_FILE)
    correct = np.repeat(examples["correct"].to_numpy(), examples["length"].to_numpy())
    np.testing.assert_array_equal(occluded["predicted_drop"][correct], occluded["true_drop"][correct])
    by_class = run.read_table(runformat.ATTRIBUTION_BY_CLASS_FILE)
    assert set(by_class["part"]) == set(range(10)) and by_class["label"].nunique() == len(run.classes)
    assert NetworkWeights.load(run.path / runformat.WEIGHTS_FILE).padding == "left"

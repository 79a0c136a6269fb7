"""The project stage on a real (small) synthetic-signs run: what it writes and what it shows."""

import shutil

import numpy as np
import pytest

from pipeline import runformat
from pipeline.cli import main
from pipeline.core.config import merge
from pipeline.kinds.classification import default_config, run_classification
from pipeline.project import moving_rows, read_inputs, run_projection_stage, settings_of, training_vectors
from pipeline.runformat import CLASS_STABILITY_FILE, PAIR_STABILITY_FILE, PROJECTIONS_FILE

# Small enough for two shared cores: a short training and light autoencoders.
SMALL = {
    "model": {"units": [48], "dropout": 0.0},
    "train": {"epochs": 20, "patience": 20},
    "project": {"seeds": 2, "max_vectors": 3000, "max_epochs": 8, "tsne_iterations": 300},
}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    config = merge(default_config("synthetic"), SMALL)
    summary = run_classification(config, runs, run_id="synthetic-small")
    assert summary.status == "complete"
    return runformat.Run(summary.path)


def _real_steps(run):
    return int(run.examples()["length"].sum())


def test_prj001_moving_rows_trims_still_ends_only():
    rng = np.random.default_rng(0)
    moving = np.cumsum(rng.normal(size=(10, 4)), axis=0)
    still_start = np.repeat(moving[:1], 4, axis=0) + 1e-4 * rng.normal(size=(4, 4))
    still_end = np.repeat(moving[-1:], 3, axis=0)
    one = np.vstack([still_start, moving, still_end])             # 17 steps
    two = np.cumsum(rng.normal(size=(6, 4)), axis=0)               # moving throughout
    states = np.vstack([one, two])
    keep, dropped_start, dropped_end = moving_rows(states, np.array([0, 17]), np.array([17, 6]), 0.1)
    # The still copies go; the step where the movement starts (moving[0]) and the last moving
    # step stay.
    assert (dropped_start, dropped_end) == (4, 3)
    assert keep[:17].tolist() == [False] * 4 + [True] * 10 + [False] * 3
    assert keep[17:].all()


def test_prj002_projection_files_and_manifest(synthetic_run):
    run = synthetic_run
    manifest = run.manifest
    frame = run.projections()
    assert list(frame.columns) == ["projection", "example_id", "t", "x", "y", "z", "last"]
    assert str(frame["x"].dtype) == "float32" and str(frame["example_id"].dtype) == "int32"
    described = {entry["id"]: entry for entry in manifest["projections"]}
    assert set(described) == {"ae2", "ae3", "ae2-seed1", "ae3-seed1", "pca2", "pca3", "tsne2"}
    assert set(frame["projection"]) == set(described)
    n, steps = len(run.examples()), _real_steps(run)
    for pid, entry in described.items():
        rows = frame[frame["projection"] == pid]
        assert entry["layer"] == 0 and entry["state"] == "h"
        assert rows["z"].isna().all() == (entry["dims"] == 2)
        assert len(rows) == (steps if entry["scope"] == "paths" else n)
        assert rows["last"].sum() == n                       # one last step per example
        last = rows[rows["last"]].merge(run.examples()[["example_id", "length"]], on="example_id")
        assert (last["t"] == last["length"] - 1).all()
        assert 0 < entry["quality"]["knn_preservation"] <= 1
    assert {described[p]["scope"] for p in ("ae2", "ae3", "pca2", "pca3")} == {"paths"}
    ratios = described["pca3"]["params"]["explained_variance_ratio"]
    assert ratios == sorted(ratios, reverse=True) and 0 < sum(ratios) <= 1
    assert described["pca2"]["params"]["explained_variance_ratio"] == pytest.approx(ratios[:2], rel=1e-4)
    # Three dimensions keep more than two, for the autoencoder and for PCA.
    for method in ("ae", "pca"):
        assert (described[f"{method}3"]["quality"]["reconstruction_mse"]
                < described[f"{method}2"]["quality"]["reconstruction_mse"])
    assert described["ae2-seed1"]["params"]["aligned_to"] == "ae2"
    training = manifest["projection_training"]
    assert training["train_vectors"] == 3000 and training["subsampled"]
    assert training["steps_dropped_start"] + training["steps_dropped_end"] < 0.2 * steps
    assert "still_fraction" in training["rule"]
    assert set(manifest["projection_outputs"]) == {PROJECTIONS_FILE, CLASS_STABILITY_FILE, PAIR_STABILITY_FILE}
    assert manifest["stages"]["project"]["outputs"] == sorted(manifest["projection_outputs"])


def _early_mean_path(run, pid, label, steps):
    """The class's mean path over its first ``steps`` steps, in the projection ``pid``."""
    frame = run.projections(pid).merge(run.examples()[["example_id", "label"]], on="example_id")
    early = frame[(frame["label"] == label) & (frame["t"] < steps)]
    return early.groupby("t")[["x", "y"]].mean().to_numpy()


def test_prj003_prefix_signs_share_the_start_of_their_paths(synthetic_run):
    run = synthetic_run
    classes = run.classes
    steps = 20                       # the shared stroke lasts longer than this in every signer
    for pid in ("ae2", "pca2"):
        paths = {c: _early_mean_path(run, pid, i, steps) for i, c in enumerate(classes)}
        distance = {(a, b): float(np.linalg.norm(paths[a] - paths[b], axis=1).mean())
                    for i, a in enumerate(classes) for b in classes[i + 1:]}
        pairs = {tuple(sorted(p)) for p in run.manifest["dataset"]["notes"]["prefix_pairs"]}
        unrelated = np.array([d for pair, d in distance.items() if pair not in pairs])
        for pair in pairs:
            # Among the closest tenth of all class pairs, and well below the typical distance.
            assert distance[pair] < np.quantile(unrelated, 0.1), (pid, pair)
            assert distance[pair] < 0.5 * np.median(unrelated), (pid, pair)


def test_prj004_hand_usage_and_trust_summaries(synthetic_run):
    manifest = synthetic_run.manifest
    examples = synthetic_run.examples()
    two_handed = set(manifest["dataset"]["notes"]["two_handed_classes"])
    expected_two = int(examples["label_name"].isin(two_handed).sum())
    assert manifest["hand_usage"] == {"one-handed": len(examples) - expected_two, "two-handed": expected_two}
    trust = manifest["projection_trust"]
    agreement = trust["hand_usage_knn_agreement"]
    assert agreement["full"] > agreement["chance"]
    assert set(agreement) >= {"ae2", "pca2", "tsne2", "full", "chance"}
    stability = trust["ae2"]
    assert stability["seeds"] == 2
    assert 0 <= stability["nearest_stability_mean"] <= 1
    assert stability["mutual_pairs_in_full_space"] >= 1
    n_classes = len(synthetic_run.classes)
    pairs = synthetic_run.read_table(PAIR_STABILITY_FILE)
    assert len(pairs) == 2 * n_classes * (n_classes - 1) // 2          # both dims
    per_class = synthetic_run.read_table(CLASS_STABILITY_FILE)
    assert sorted(per_class["dims"].unique()) == [2, 3] and len(per_class) == 2 * n_classes
    mistakes = trust["misclassified"]
    wrong_test = examples[(examples["split"] == "test") & ~examples["correct"]]
    assert len(mistakes["test"]) == len(wrong_test)
    for entry in mistakes["test"]:
        assert 1 <= entry["rank_picture"] < n_classes and 1 <= entry["rank_full"] < n_classes


def test_prj005_runs_without_hands_other_state_and_bad_layer(synthetic_run, tmp_path):
    path = tmp_path / "no-hands"
    shutil.copytree(synthetic_run.path, path)
    examples = synthetic_run.examples().drop(columns=["hand_usage", "hand_ratio"], errors="ignore")
    runformat.write_parquet(examples, path / "examples.parquet")
    config = merge(synthetic_run.manifest["config"],
                   {"project": {"dims": [2], "seeds": 1, "max_epochs": 2, "state": "c"}})
    updates = run_projection_stage(path, config)
    assert "hand_usage" not in updates and "hand_usage_knn_agreement" not in updates["projection_trust"]
    assert [p["id"] for p in updates["projections"]] == ["ae2", "pca2", "tsne2"]
    assert {p["state"] for p in updates["projections"]} == {"c"}
    assert updates["projection_trust"]["ae2"]["nearest_stability_mean"] is None      # one seed
    with pytest.raises(runformat.RunError, match="project.layer=3"):
        run_projection_stage(path, merge(config, {"project": {"layer": 3}}))


def test_prj006_without_a_cap_every_moving_step_of_each_split_is_used(synthetic_run):
    """``max_vectors: null`` (the study's way): no sampling; with a cap, a sample of that size."""
    settings = settings_of({"project": {"max_vectors": None}})
    inputs = read_inputs(synthetic_run, settings)
    keep, _, _ = moving_rows(inputs.states, inputs.examples["row_start"].to_numpy(), inputs.lengths,
                             settings["still_fraction"])
    row_split = np.repeat(inputs.examples["split"].to_numpy(), inputs.lengths)
    vectors, record = training_vectors(inputs, settings)
    for split in ("train", "validation", "test"):
        expected = inputs.states[keep & (row_split == split)]
        assert len(vectors[split]) == len(expected)
        # The same vectors, shuffled: compare them sorted row by row.
        assert np.array_equal(np.unique(vectors[split], axis=0), np.unique(expected, axis=0))
    assert record["train_vectors"] == record["train_steps_available"] and not record["subsampled"]
    capped, record = training_vectors(inputs, {**settings, "max_vectors": 400})
    assert [len(capped[s]) for s in ("train", "validation", "test")] == [400, 100, 100]
    assert record["subsampled"] and record["train_steps_available"] == len(vectors["train"])


def test_prj007_over_the_trust_sample_the_neighbourhoods_are_scored_on_a_seeded_sample(
        synthetic_run, tmp_path, monkeypatch):
    """A big run's trust measures use ``TRUST_SAMPLE`` examples (their exact form is n x n)."""
    from pipeline import project

    path = tmp_path / "run"
    shutil.copytree(synthetic_run.path, path)
    config = merge(synthetic_run.manifest.config, {"project": {"methods": ["pca"]}})
    exact = run_projection_stage(path, config)
    n = len(synthetic_run.examples())
    assert exact["projection_trust"]["examples_scored"] == n == exact["projection_trust"]["examples"]
    monkeypatch.setattr(project, "TRUST_SAMPLE", 200)
    rows = project.trust_sample(n, 0)
    assert len(rows) == 200 == len(set(rows.tolist())) and np.array_equal(rows, project.trust_sample(n, 0))
    sampled = run_projection_stage(path, config)
    assert sampled["projection_trust"]["examples_scored"] == 200
    for before, after in zip(exact["projections"], sampled["projections"]):
        # A sample's neighbourhoods are not the whole run's: the scores move, but stay scores.
        assert 0 < after["quality"]["knn_preservation"] <= 1
        assert after["quality"]["knn_preservation"] != before["quality"]["knn_preservation"]
    agreement = sampled["projection_trust"]["hand_usage_knn_agreement"]
    assert agreement["full"] > agreement["chance"]
    skipped = run_projection_stage(path, merge(config, {"project": {"k": 0}}))
    assert skipped["projection_trust"] == {"k": 0, "why": "project.k is 0"}


def test_prj008_stability_dims_give_every_seed_to_those_dimensions_only(synthetic_run, tmp_path, capsys):
    """The study's setting: two seeds for the 2-D autoencoder (its stability claim), one 3-D fit."""
    from pipeline import project

    assert project.STUDY_AUTOENCODERS["stability_dims"] == [2]
    path = tmp_path / "run"
    shutil.copytree(synthetic_run.path, path)
    config = merge(synthetic_run.manifest.config,
                   {"project": {"methods": ["autoencoder"], "seeds": 2, "stability_dims": [2], "max_epochs": 2}})
    updates = run_projection_stage(path, config)
    assert [p["id"] for p in updates["projections"]] == ["ae2", "ae2-seed1", "ae3"]
    trust = updates["projection_trust"]
    assert trust["ae2"]["seeds"] == 2 and trust["ae2"]["nearest_stability_mean"] is not None
    assert trust["ae3"]["seeds"] == 1 and trust["ae3"]["nearest_stability_mean"] is None
    written = runformat.Run(path).projections("ae3")
    assert len(written) == _real_steps(synthetic_run)                      # the 3-D paths are drawn
    for wrong in ("2", [2.5], {"2": 1}):
        with pytest.raises(runformat.RunError, match="project.stability_dims"):
            settings_of({"project": {"stability_dims": wrong}})
    assert main(["project", "run", "--runs", str(tmp_path), "--stability-dims", "2,x"]) == 2
    assert "--stability-dims: comma-separated dimensions" in capsys.readouterr().err
    assert main(["project", "run", "--runs", str(tmp_path), "--methods", "autoencoder", "--seeds", "2",
                 "--stability-dims", "all", "--quiet"]) == 0
    assert {"ae2-seed1", "ae3-seed1"} <= set(runformat.Run.open(tmp_path, "run").manifest.projection_ids)

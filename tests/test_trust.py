"""Trust measures for projections: Procrustes alignment, neighbourhoods, class stability, symlog."""

import numpy as np
import pytest

from pipeline.analysis import trust
from pipeline.analysis.transforms import symlog


def _rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def test_trs001_symlog_keeps_sign_order_and_zero():
    x = np.linspace(-50, 50, 1001)
    y = symlog(x)
    assert symlog(0.0) == 0.0
    assert symlog(np.e - 1) == pytest.approx(1.0)
    assert symlog(-(np.e ** 2 - 1)) == pytest.approx(-2.0)
    np.testing.assert_allclose(symlog(-x), -y)          # odd: the sign is kept
    assert np.all(np.diff(y) > 0)                         # strictly increasing: order is kept
    assert symlog(1e-6) == pytest.approx(1e-6, rel=1e-5)  # the identity near zero
    assert abs(symlog(1000.0)) < 7.0                      # long tails are compressed


def test_trs002_procrustes_recovers_a_rotated_reflected_scaled_shifted_copy():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(200, 2))
    reflect = np.diag([1.0, -1.0])
    source = 3.5 * target @ _rotation(1.1) @ reflect + np.array([4.0, -2.0])
    alignment = trust.procrustes_align(source, target)
    np.testing.assert_allclose(alignment.apply(source), target, atol=1e-9)
    assert alignment.disparity < 1e-12
    assert alignment.scale == pytest.approx(1 / 3.5)
    # It also maps points it was not fitted on (a whole path, from last steps only).
    others = rng.normal(size=(20, 2))
    np.testing.assert_allclose(alignment.apply(3.5 * others @ _rotation(1.1) @ reflect + [4.0, -2.0]),
                               others, atol=1e-9)


def test_trs003_procrustes_of_unrelated_points_leaves_a_large_disparity():
    rng = np.random.default_rng(1)
    alignment = trust.procrustes_align(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)))
    assert alignment.disparity > 0.8
    with pytest.raises(ValueError, match="cannot align"):
        trust.procrustes_align(np.zeros((3, 2)), np.zeros((4, 2)))


def test_trs004_knn_preservation_is_one_for_an_isometry_and_low_for_noise():
    rng = np.random.default_rng(2)
    full = rng.normal(size=(300, 10))
    full[:, 2:] *= 0.0                                   # the data lie in a plane of the 10-d space
    rotation = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    rotated = full @ rotation + 5.0
    plane = full[:, :2] @ _rotation(0.4) - 1.0          # an isometric 2-D picture
    assert trust.knn_preservation(rotated, plane, k=10) == pytest.approx(1.0)
    random_picture = rng.normal(size=(300, 2))
    assert trust.knn_preservation(rotated, random_picture, k=10) < 0.15
    with pytest.raises(ValueError, match="k=150"):
        trust.knn_preservation(full, plane, k=150)


def test_trs008_trustworthiness_matches_sklearn_and_is_one_for_an_isometry():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(5)
    full = rng.normal(size=(250, 8))
    neighbourhoods = trust.Neighbourhoods(full, k=10)
    for low in (full[:, :2], rng.normal(size=(250, 2)), full[:, :3] @ np.diag([3.0, 2.0, 1.0])):
        assert neighbourhoods.trustworthiness(low) == pytest.approx(
            trustworthiness(full, low, n_neighbors=10), abs=1e-12)
    assert neighbourhoods.trustworthiness(full @ np.linalg.qr(rng.normal(size=(8, 8)))[0]) == pytest.approx(1.0)


def test_trs005_knn_label_agreement_separates_clustered_from_mixed_labels():
    rng = np.random.default_rng(3)
    labels = np.repeat(["one-handed", "two-handed"], 100)
    clustered = rng.normal(size=(200, 2)) + np.where(labels == "one-handed", 0, 20)[:, None]
    assert trust.knn_label_agreement(clustered, labels, k=10) == 1.0
    mixed = rng.normal(size=(200, 2))
    assert 0.3 < trust.knn_label_agreement(mixed, labels, k=10) < 0.7


def _classes_at(centres, per_class=5, spread=0.01, seed=0):
    """Points scattered tightly around one centre per class, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), per_class)
    return np.asarray(centres, dtype=float)[labels] + spread * rng.normal(size=(len(labels), 2)), labels


def test_trs006_class_ranks_and_nearest_classes():
    points, labels = _classes_at([[0, 0], [1, 0], [5, 0], [5, 2]])
    centroids = trust.class_centroids(points, labels, 5)        # class 4 has no examples
    assert np.isnan(centroids[4]).all()
    assert list(trust.nearest_classes(centroids)) == [1, 0, 3, 2, -1]
    distances = trust.centroid_distances(centroids)
    assert trust.class_rank(distances, 0, 1) == 1
    assert trust.class_rank(distances, 0, 2) == 2
    assert trust.class_rank(distances, 0, 3) == 3


def test_trs007_seed_stability_counts_agreeing_seeds():
    # Seed 0: pairs (0, 1) and (2, 3). Seed 1 is seed 0 rotated and scaled: the same relations.
    # Seed 2 moves class 1 next to class 2: (1, 2) becomes a mutual pair and 0's nearest is 1 still.
    seed0, labels = _classes_at([[0, 0], [1, 0], [5, 0], [5, 2]])
    seed1 = 2.0 * seed0 @ _rotation(2.0)
    seed2, _ = _classes_at([[0, 0], [4.5, 0], [5, 0], [5, 2]], seed=1)
    full = np.hstack([seed0, np.zeros((len(seed0), 3))])
    per_class, pairs = trust.seed_stability([seed0, seed1, seed2], labels, 4, full)

    assert list(per_class["nearest"]) == [1, 0, 3, 2]
    np.testing.assert_allclose(per_class["nearest_stability"], [1.0, 0.5, 0.5, 1.0])   # of seeds 1, 2
    assert list(per_class["nearest_full"]) == [1, 0, 3, 2]
    assert len(pairs) == 6                                     # every unordered pair of 4 classes
    pair = pairs.set_index(["class_a", "class_b"])
    assert pair.loc[(0, 1), "mutual_nearest"] == pytest.approx(2 / 3)
    assert pair.loc[(2, 3), "mutual_nearest"] == pytest.approx(2 / 3)
    assert pair.loc[(1, 2), "mutual_nearest"] == pytest.approx(1 / 3)
    assert pair.loc[(0, 1), "either_nearest"] == pytest.approx(1.0)
    assert pair.loc[(0, 3), "either_nearest"] == 0.0
    assert pair["mutual_nearest_full"].sum() == 2
    assert bool(pair.loc[(0, 1), "mutual_nearest_full"])
    assert pair.loc[(0, 1), "distance"] < pair.loc[(0, 2), "distance"]
    single, _ = trust.seed_stability([seed0], labels, 4, full)
    assert single["nearest_stability"].isna().all()


def test_cka001_linear_cka_is_one_with_itself_and_ignores_rotation_and_scale():
    from pipeline.analysis.cka import linear_cka
    rng = np.random.default_rng(0)
    states = rng.normal(size=(200, 12))
    rotation, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(states, states) == pytest.approx(1.0)
    assert linear_cka(states, 3.5 * states @ rotation + 2.0) == pytest.approx(1.0)
    unrelated = linear_cka(states, rng.normal(size=(200, 8)))
    assert 0 <= unrelated < 0.2
    half = linear_cka(states, np.column_stack([states[:, :6], rng.normal(size=(200, 6))]))
    assert unrelated < half < 1
    with pytest.raises(ValueError, match="same rows"):
        linear_cka(states, states[:10])

"""The study's claims, measured (pipeline.study): each measure on arrays whose answer is known, the
synthetic signs' known structure, a hand-made run where every claim is built to hold, and the
report written into a real (small) synthetic run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline import study
from pipeline.analysis.layout import StepLayout
from pipeline.datasets.synthetic import generate_synthetic
from pipeline.runformat import Run, verify_run

# -- the measures on hand-made arrays -------------------------------------------------------------


def test_resample_paths_interpolates_along_each_sign():
    # Two examples: 0, 1, 2, 3, 4 and 10, 20 (one channel), stored one after the other.
    points = np.array([0, 1, 2, 3, 4, 10, 20], float)[:, None]
    paths = study.resample_paths(points, np.array([0, 5]), np.array([5, 2]), m=3)
    np.testing.assert_allclose(paths[..., 0], [[0, 2, 4], [10, 15, 20]])
    first = study.resample_paths(points, np.array([0, 5]), np.array([5, 2]), m=2, stop=0.5)
    np.testing.assert_allclose(first[..., 0], [[0, 2], [10, 15]])


def test_perpendicular_directions_make_90_degrees():
    up = np.column_stack([np.zeros(5), np.linspace(0, 2, 5)])
    right = np.column_stack([np.linspace(1, 4, 5), np.full(5, 3.0)])
    assert study.angle_degrees(study.direction(up), study.direction(right)) == pytest.approx(90)
    assert study.angle_degrees(study.direction(right), study.direction(right[::-1])) == pytest.approx(180)
    assert study.angle_degrees(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == pytest.approx(0, abs=1e-5)
    assert study.perpendicular_verdict([90, 75, 104]) == study.HOLDS
    assert study.perpendicular_verdict([10, 170, 30]) == study.FAILS
    assert study.perpendicular_verdict([90, 90, 40]) == study.UNCLEAR
    assert np.isnan(study.angle_degrees(np.zeros(2), np.ones(2)))


def test_an_identical_prefix_overlaps_fully_and_a_diverging_rest_not_at_all():
    short = np.column_stack([np.linspace(0, 1, 10), np.zeros(10)])
    rest = short + [0, 5]                                   # far away from the short sign
    result = study.prefix_overlap(short, short.copy(), rest, radius=0.1, baseline=0.2)
    assert result["overlap_first"] == 1 and result["overlap_rest"] == 0
    assert result["margin"] == pytest.approx(0.8)
    assert study.prefix_verdict(result) == study.HOLDS
    same = study.prefix_overlap(short, short, short, radius=0.1)   # the same sign twice: no prefix
    assert same["overlap_rest"] == 1 and study.prefix_verdict(same) == study.FAILS
    assert study.aligned_overlap(short, short[::-1], radius=0.1) == pytest.approx(0)
    assert study.overlap(short, short[::-1], radius=0.1) == 1      # nearest point: order ignored


def test_pair_percentile_puts_the_closest_pair_at_0_and_the_farthest_at_100():
    centres = np.array([[0, 0], [0.1, 0], [5, 0], [20, 0]], float)
    means = np.repeat(centres[:, None, :], 4, axis=1)      # constant paths at the centres
    distances = study.path_distances(means)
    assert distances[0, 1] == pytest.approx(0.1) and np.isnan(distances[2, 2])
    np.testing.assert_allclose(distances, distances.T)
    assert study.pair_percentile(distances, 0, 1) == 0
    assert study.pair_percentile(distances, 1, 0) == 0
    assert study.pair_percentile(distances, 0, 3) == 100
    assert study.close_verdict([0.0, 3.0]) == study.HOLDS
    assert study.close_verdict([0.0, 50.0]) == study.FAILS
    assert study.close_verdict([10.0]) == study.UNCLEAR


def test_hand_separation_is_perfect_for_separated_groups_and_near_chance_for_random_labels():
    rng = np.random.default_rng(0)
    usage = np.array(["one-handed"] * 60 + ["two-handed"] * 40)
    picture = np.vstack([rng.normal(0, 0.1, (60, 2)), rng.normal(5, 0.1, (40, 2))])
    full = np.column_stack([picture, rng.normal(size=(100, 3))])
    result = study.hand_separation(picture, full, usage, k=5)
    assert result["chance"] == pytest.approx(0.6 ** 2 + 0.4 ** 2)
    assert result["picture"] == 1 and result["above_chance"] == pytest.approx(1)
    assert study.hand_verdict(result) == study.HOLDS
    mixed = study.hand_separation(rng.normal(size=(100, 2)), full, usage, k=5)
    assert abs(mixed["above_chance"]) < 0.25 and study.hand_verdict(mixed) != study.HOLDS
    assert study.hand_separation(picture, full, ["one-handed"] * 100) is None
    assert study.hand_verdict(None) == study.NOT_APPLICABLE


def test_seed_ranks_see_a_pair_that_is_close_in_one_seed_only():
    labels = np.repeat(np.arange(5), 4)
    centres_close = np.array([[0, 0], [0.1, 0], [3, 0], [6, 0], [9, 0]], float)
    centres_far = np.array([[0, 0], [12, 0], [3, 0], [6, 0], [9, 0]], float)
    codes = [centres_close[labels], centres_far[labels]]
    ranks = study.seed_ranks(codes, labels, 5, 0, 1)
    assert ranks == [1, 4]                 # far: classes 2, 3, 4 lie between them either way
    assert study.seed_ranks([centres_far[labels]], labels, 5, 0, 1) == [4]
    assert study.unstable_verdict([1, 4]) == study.HOLDS
    assert study.unstable_verdict([1, 1, 2]) == study.FAILS
    assert study.unstable_verdict([1]) == study.UNCLEAR


def test_error_ranks_count_the_predicted_class_among_the_true_class_neighbours():
    labels = np.repeat(np.arange(4), 3)
    centres = np.array([[0, 0], [1, 0], [5, 0], [10, 0]], float)
    points = centres[labels]
    predicted = labels.copy()
    predicted[0] = 1          # true 0 -> 1: its nearest class
    predicted[1] = 3          # true 0 -> 3: its farthest (rank 3 of 3)
    ranks = study.error_ranks(points, points, labels, predicted, 4)
    assert ranks["rank_picture"].tolist() == [1, 3] and ranks["rank_full"].tolist() == [1, 3]
    assert study.rank_summary(ranks)["median_rank_picture"] == 2
    assert study.mistakes_verdict(1.0, 94) == study.HOLDS
    assert study.mistakes_verdict(40.0, 94) == study.FAILS
    assert study.mistakes_verdict(10.0, 94) == study.UNCLEAR


# -- the synthetic signs' structure, known by construction ---------------------------------------

def test_the_synthetic_prefix_pairs_overlap_at_the_start_in_the_input_channels():
    """hello -> goodbye and book -> read are built as "the first sign, then more": measured on the
    raw input channels, each long sign's first part follows the short sign and its rest does not."""
    data = generate_synthetic(seed=0)
    layout = StepLayout(data.lengths, data.n_steps)
    rows = layout.real_rows(data.X).astype(float)
    starts = np.concatenate([[0], np.cumsum(data.lengths)[:-1]])
    labels = np.asarray(data.labels)
    paths = study.resample_paths(rows, starts, data.lengths)
    means = study.class_mean_paths(paths, labels, len(data.classes))
    run = study.RunData(pd.DataFrame({"example_id": np.arange(len(labels)), "row_start": starts,
                                      "length": data.lengths, "label": labels}),
                        list(data.classes), "inputs", rows, rows, [], None, None, {}, 0, "inputs")
    for short, long in (("hello", "goodbye"), ("book", "read")):
        result = study._prefix(run, rows, paths, means, data.classes.index(short), data.classes.index(long))
        assert study.prefix_verdict(result) == study.HOLDS, (short, long, result)
    unrelated = study._prefix(run, rows, paths, means, data.classes.index("me"), data.classes.index("rain"))
    assert study.prefix_verdict(unrelated) != study.HOLDS


# -- every claim on a hand-made run ---------------------------------------------------------------

AUSLAN_NAMES = ["you", "think", "crazy", "sorry", "God", "science", "drink", "danger", "who", "soon",
                "alive", "boy", "cold", "deaf"]


def _hand_made_run(n_per_class: int = 8, steps: int = 10) -> study.RunData:
    """Straight paths from the origin: think, crazy (think's path, then as far again along x), sorry
    along x; you along y; drink/danger and who/soon ending next to each other; the rest spread on a
    far circle. God and science are nearest neighbours in one autoencoder seed only."""
    rng = np.random.default_rng(1)
    classes = AUSLAN_NAMES
    ends = {name: 8 * np.array([np.cos(a), np.sin(a)])
            for name, a in zip(classes, np.linspace(0.3, 2 * np.pi, len(classes), endpoint=False))}
    ends.update(think=np.array([3.0, 0]), sorry=np.array([4.0, -1.5]), you=np.array([0, 3.0]),
                drink=np.array([-3.0, -3.0]), danger=np.array([-3.1, -3.0]),
                who=np.array([3.0, -4.0]), soon=np.array([3.1, -4.0]))
    points, lengths, labels = [], [], []
    for label, name in enumerate(classes):
        for _ in range(n_per_class):
            if name == "crazy":
                t = np.linspace(0, 1, steps)[:, None]
                path = np.vstack([t * ends["think"], ends["think"] + t[1:] * [3.0, 0]])   # think, then more
            elif name == "sorry":
                path = np.array([0, -1.5]) + np.linspace(0, 1, steps)[:, None] * [4.0, 0]
            else:
                path = np.linspace(0, 1, steps)[:, None] * ends[name]
            points.append(path + rng.normal(0, 0.03, path.shape))
            lengths.append(len(path))
            labels.append(label)
    picture = np.vstack(points)
    lengths = np.array(lengths)
    labels = np.array(labels)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    hands = np.where(np.isin(labels, [0, 1, 2, 3]), "one-handed", "two-handed")
    predicted = labels.copy()
    drink, danger = classes.index("drink"), classes.index("danger")
    predicted[np.flatnonzero(labels == drink)[:6]] = danger          # mistakes between neighbours
    split = np.array(["test", "train"] * (len(labels) // 2))
    examples = pd.DataFrame({"example_id": np.arange(len(labels)), "row_start": starts, "length": lengths,
                             "label": labels, "prediction": predicted, "split": split,
                             "hand_usage": pd.array(hands, dtype="string")})
    last = picture[starts + lengths - 1]
    moved = last.copy()
    god, science = classes.index("God"), classes.index("science")
    other = classes.index("alive")
    close = last.copy()
    close[labels == science] = last[labels == god] + 0.05           # seed 0: science right next to God
    moved[labels == science] = last[labels == other] + 0.05         # seed 1: next to alive instead
    picture[(starts + lengths - 1)[labels == science]] = close[labels == science]
    full = np.column_stack([picture, np.zeros((len(picture), 2))])
    return study.RunData(examples, classes, "ae2", picture, full, [close, moved], None, None, {}, 0, "h")


def test_every_claim_holds_on_a_run_built_for_them():
    result = study.study_of(_hand_made_run())
    verdicts = {c["claim"]: c["verdict"] for c in result["claims"]}
    assert verdicts == {"hand_usage": study.HOLDS, "close_paths": study.HOLDS, "prefix": study.HOLDS,
                        "perpendicular": study.HOLDS, "unstable": study.HOLDS, "mistakes": study.HOLDS}, result
    angles = next(c for c in result["claims"] if c["claim"] == "perpendicular")["numbers"]["picture"]
    assert angles["think"] == pytest.approx(90, abs=2)
    for claim in result["claims"]:
        assert claim["statement"] and claim["rule"] and claim["numbers"]


def test_claims_about_classes_a_data_set_lacks_are_not_applicable_and_name_them():
    data = _hand_made_run()
    renamed = [name if name not in ("danger", "God") else name.upper() for name in data.classes]
    data.classes = renamed
    result = study.study_of(data)
    by_claim = {c["claim"]: c for c in result["claims"]}
    assert by_claim["close_paths"]["verdict"] == study.NOT_APPLICABLE
    assert by_claim["close_paths"]["missing_classes"] == ["danger"]
    assert by_claim["unstable"]["verdict"] == study.NOT_APPLICABLE
    assert by_claim["unstable"]["missing_classes"] == ["God"]
    assert by_claim["prefix"]["verdict"] == study.HOLDS


# -- the report, written into a real synthetic run ------------------------------------------------

@pytest.fixture(scope="module")
def reported(synthetic_runs_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("report-runs")
    shutil.copytree(synthetic_runs_dir / "synthetic", runs / "synthetic")
    from pipeline.cli import main
    assert main(["report", "synthetic", "--runs", str(runs), "--quiet"]) == 0
    return Run.open(runs, "synthetic")


def test_report_is_written_into_the_run_and_recorded_in_its_manifest(reported):
    assert reported.manifest.complete
    record = reported.manifest["report"]
    stage = reported.manifest.stages["report"]
    assert set(stage["outputs"]) >= {study.REPORT_MD, study.REPORT_JSON}
    assert record["verdicts"]["close_paths"] == study.NOT_APPLICABLE
    text = (reported.path / study.REPORT_MD).read_text()
    assert "## Hand usage" in text and "*Verdict:*" in text and "*Rule:*" in text
    assert verify_run(reported.path).ok, verify_run(reported.path).problems
    assert study.report_is_current(reported)
    pytest.importorskip("matplotlib")
    for name in study.FIGURES.values():
        assert (reported.path / name).read_bytes()[:4] == b"\x89PNG"


def test_report_numbers_on_the_synthetic_signs(reported):
    result = json.loads((reported.path / study.REPORT_JSON).read_text())
    by_claim = {c["claim"]: c for c in result["claims"]}
    verdicts = {study.HOLDS, study.FAILS, study.UNCLEAR, study.NOT_APPLICABLE}
    assert {c["verdict"] for c in result["claims"]} <= verdicts
    # The Auslan-only names are missing; the synthetic signs' own prefix pairs are measured instead.
    assert by_claim["close_paths"]["missing_classes"] == ["danger", "soon", "who"]
    assert by_claim["unstable"]["missing_classes"] == ["God", "science"]
    assert set(by_claim["prefix_known"]["numbers"]) == {"think/crazy", "hello/goodbye", "book/read"}
    assert by_claim["perpendicular"]["verdict"] != study.NOT_APPLICABLE       # you, think, crazy, sorry exist
    # Designed hand usage is what the network's last states separate (even after 3 epochs).
    hands = by_claim["hand_usage"]["numbers"]["designed_hands"]
    assert hands["counts"] == {"one-handed": 456, "two-handed": 192}
    assert hands["full_above_chance"] > 0.3
    mistakes = by_claim["mistakes"]["numbers"]
    assert set(mistakes["by_split"]) == {"train", "validation", "test"}
    assert mistakes["by_split"]["test"]["errors"] == len(mistakes["test_errors"])


def test_report_refuses_a_run_without_a_2d_path_projection(reported, tmp_path):
    from pipeline.runformat import RunError
    shutil.copytree(reported.path, tmp_path / "bare")
    manifest = json.loads((tmp_path / "bare" / "manifest.json").read_text())
    manifest["projections"] = [p for p in manifest["projections"] if p["id"] not in ("ae2", "pca2")]
    (tmp_path / "bare" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="no 2-D path projection"):
        study.read_run(Run(tmp_path / "bare"))

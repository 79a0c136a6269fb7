"""Data sets: the Auslan loader (on written fixtures and on the real copy), the synthetic signs,
the stratified split and the registry."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets import DataError
from pipeline.datasets.auslan import CHANNELS, load_auslan, parse_file_name, read_tsd
from pipeline.datasets.registry import load_dataset
from pipeline.datasets.splits import SPLITS, stratified_split
from pipeline.datasets.synthetic import generate_synthetic

AUSLAN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "auslan"
needs_auslan = pytest.mark.skipif(not AUSLAN.is_dir(), reason="no copy of the Auslan data next to the repo")


def frames(n, start=0.0):
    """n frames of 22 distinct values; value (t, c) = start + t + c / 100."""
    return start + np.arange(n)[:, None] + np.arange(22)[None, :] / 100


def tsd_text(data):
    return "".join("\t".join(f"{v:.6f}" for v in row) + "\n" for row in data)


def write_tsd(root, relative, content):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else tsd_text(content))
    return path


@pytest.fixture
def tree(tmp_path):
    """Two sessions, one good sign each, plus whatever a test adds."""
    write_tsd(tmp_path, "tctodd1/alive-1.tsd", frames(50))
    write_tsd(tmp_path, "tctodd2/alive-1.tsd", frames(60, start=1.0))
    return tmp_path


def replace_line(text, number, line):
    lines = text.splitlines()
    lines[number - 1] = line
    return "\n".join(lines) + "\n"


GOOD = tsd_text(frames(10))
FIELDS = GOOD.splitlines()[1].split("\t")
MALFORMED = {
    # case: (content, substrings the message must contain)
    "empty": ("", ["empty"]),
    "only blank lines": ("\n  \n\n", ["empty"]),
    "truncated line": (replace_line(GOOD, 3, "\t".join(FIELDS[:21])), ["line 3", "21 fields"]),
    "file cut inside a line": ("\n".join(GOOD.splitlines()[:5] + [GOOD.splitlines()[5][:100]]),
                               ["line 6", "12 fields"]),
    "too many columns": (replace_line(GOOD, 1, "\t".join(FIELDS + ["0.5"])), ["line 1", "23 fields"]),
    "blank line inside": (replace_line(GOOD, 4, ""), ["line 4", "0 fields"]),
    "non-numeric": (replace_line(GOOD, 2, "\t".join(FIELDS[:4] + ["abc"] + FIELDS[5:])),
                    ["line 2", "column 5", "left_pitch", "'abc'"]),
    "decimal comma": (replace_line(GOOD, 7, "\t".join(FIELDS[:21] + ["0,5"])),
                      ["line 7", "column 22", "'0,5'"]),
    "nan": (replace_line(GOOD, 4, "\t".join(FIELDS[:11] + ["nan"] + FIELDS[12:])),
            ["line 4", "column 12", "right_x", "not a finite number"]),
    "inf": (replace_line(GOOD, 9, "\t".join(["-inf"] + FIELDS[1:])), ["line 9", "column 1", "left_x"]),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_dat001_malformed_file_raises_data_error_naming_file_and_line(tree, case):
    content, expected = MALFORMED[case]
    write_tsd(tree, "tctodd2/bad-2.tsd", content)
    with pytest.raises(DataError) as raised:
        load_auslan(tree)
    message = str(raised.value)
    assert "tctodd2/bad-2.tsd" in message
    for part in expected:
        assert part in message


def test_dat002_file_name_without_repetition_is_named(tree):
    write_tsd(tree, "tctodd1/alive.tsd", frames(50))
    with pytest.raises(DataError, match=r"tctodd1/alive\.tsd: .*repetition"):
        load_auslan(tree)


@pytest.mark.parametrize("name", ["alive-x.tsd", "-3.tsd"])
def test_dat003_parse_file_name_rejects_names_without_sign_or_number(name):
    with pytest.raises(DataError, match="repetition"):
        parse_file_name(name)


def test_dat004_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="nowhere.*not found"):
        load_auslan(tmp_path / "nowhere")


def test_dat005_folder_without_sessions_is_named(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="no session folders"):
        load_auslan(tmp_path)


def test_dat006_session_folder_without_tsd_files_is_named(tree):
    (tree / "tctodd3").mkdir()
    (tree / "tctodd3" / "notes.txt").write_text("not a sign")
    with pytest.raises(DataError, match="tctodd3.*no .tsd files"):
        load_auslan(tree)


def test_dat007_skip_bad_files_warns_counts_and_keeps_the_good_ones(tree):
    write_tsd(tree, "tctodd1/bad-1.tsd", "")
    write_tsd(tree, "tctodd2/bad-1.tsd", replace_line(GOOD, 3, "1 2 3"))
    with pytest.warns(UserWarning, match="bad-1.tsd"):
        data = load_auslan(tree, skip_bad_files=True)
    assert len(data.X) == 2
    assert data.classes == ["alive"]
    skipped = data.notes["skipped_files"]
    assert len(skipped) == 2
    assert skipped[0].startswith("tctodd1/bad-1.tsd") and "empty" in skipped[0]
    assert skipped[1].startswith("tctodd2/bad-1.tsd") and "line 3" in skipped[1]
    assert data.notes["files_found"] == 4 and data.notes["files_read"] == 2


def test_dat008_line_with_two_spaces_between_fields_parses(tmp_path):
    data = frames(5)
    text = tsd_text(data)
    fields = text.splitlines()[2].split("\t")
    text = replace_line(text, 3, "\t".join(fields[:10]) + "\t" + fields[10] + "  " + "\t".join(fields[11:]))
    path = write_tsd(tmp_path, "x-1.tsd", text)
    np.testing.assert_allclose(read_tsd(path), data, atol=1e-6)


def test_dat009_sign_names_with_dashes_split_on_the_last_dash(tree):
    write_tsd(tree, "tctodd1/flash-light-2.tsd", frames(40))
    write_tsd(tree, "tctodd1/not-my-problem-3.tsd", frames(40))
    assert parse_file_name("flash-light-2.tsd") == ("flash-light", 2)
    data = load_auslan(tree)
    assert data.classes == ["alive", "flash-light", "not-my-problem"]
    row = data.meta[data.meta.file == "tctodd1/flash-light-2.tsd"].iloc[0]
    assert data.classes[data.labels[row.name]] == "flash-light"
    assert row.repetition == 2 and row.session == 1


def test_dat010_his_hers_dropped_by_default_or_merged(tree):
    write_tsd(tree, "tctodd1/her-1.tsd", frames(40))
    write_tsd(tree, "tctodd2/his_hers-1.tsd", frames(40))
    dropped = load_auslan(tree)
    assert dropped.classes == ["alive"]
    assert dropped.notes["dropped_his_hers"] == 2
    merged = load_auslan(tree, his_hers="merge")
    assert merged.classes == ["alive", "his_hers"]
    assert sorted(merged.meta.file[merged.labels == 1]) == ["tctodd1/her-1.tsd", "tctodd2/his_hers-1.tsd"]
    with pytest.raises(DataError, match="his_hers"):
        load_auslan(tree, his_hers="keep")


def test_dat011_length_limit_padding_and_metadata(tree):
    write_tsd(tree, "tctodd2/long-1.tsd", frames(90))
    write_tsd(tree, "tctodd2/long-2.tsd", frames(89))
    data = load_auslan(tree)
    assert data.notes["dropped_too_long"] == 1
    assert data.notes["dropped_too_long_files"] == ["tctodd2/long-1.tsd (90 frames)"]
    assert data.X.shape == (3, 90, 22) and data.X.dtype == np.float32
    assert data.channels == CHANNELS and data.channels[0] == "left_x" and data.channels[21] == "right_little"
    assert data.hands == {"left": list(range(11)), "right": list(range(11, 22))}
    assert list(data.meta.file) == ["tctodd1/alive-1.tsd", "tctodd2/alive-1.tsd", "tctodd2/long-2.tsd"]
    assert list(data.meta.session) == [1, 2, 2]
    assert list(data.meta.repetition) == [1, 1, 2]
    assert list(data.meta.n_frames_raw) == [50, 60, 89]
    assert set(data.meta.signer) == {"Adam"}
    assert list(data.lengths) == [50, 60, 89]
    # left padding: zeros first, then the frames exactly as written
    assert not data.X[1, :30].any()
    np.testing.assert_allclose(data.X[1, 30:], frames(60, start=1.0), atol=1e-6)
    np.testing.assert_allclose(data.real_steps(0), frames(50), atol=1e-6)


def test_dat012_max_length_must_be_a_positive_integer(tree):
    with pytest.raises(DataError, match="max_length"):
        load_auslan(tree, max_length=0)


@pytest.fixture(scope="module")
def auslan():
    return load_auslan(AUSLAN)


@needs_auslan
def test_dat013_real_auslan_follows_the_study_protocol(auslan):
    assert auslan.X.shape == (2528, 90, 22)
    assert len(auslan.classes) == 94
    assert auslan.classes == sorted(auslan.classes)
    assert "his_hers" not in auslan.classes and "her" not in auslan.classes
    assert {"flash-light", "not-my-problem", "God", "change_mind_"} <= set(auslan.classes)
    counts = np.bincount(auslan.labels, minlength=94)
    assert counts.min() == 26 and counts.max() == 27
    assert auslan.lengths.max() < 90 and auslan.lengths.min() >= 45
    steps = np.arange(90)[None, :]
    padding = steps < 90 - auslan.lengths[:, None]
    assert not auslan.X[padding].any()
    assert (np.abs(auslan.X[~padding]).sum(axis=1) > 0).all()
    assert auslan.notes["dropped_too_long"] == 10 and auslan.notes["dropped_his_hers"] == 27
    assert sorted(auslan.meta.session.unique()) == list(range(1, 10))


@needs_auslan
def test_dat014_real_auslan_reads_the_two_space_line_of_drink_1(auslan):
    i = auslan.meta.index[auslan.meta.file == "tctodd1/drink-1.tsd"][0]
    assert auslan.lengths[i] == 57
    line_55 = auslan.real_steps(i)[54]
    np.testing.assert_allclose(line_55[10:12], [0.007699, 0.097939], atol=1e-6)


@needs_auslan
def test_dat015_real_auslan_merging_his_hers_gives_95_classes():
    merged = load_dataset({"name": "auslan", "source": str(AUSLAN), "his_hers": "merge"})
    assert merged.X.shape == (2555, 90, 22)
    assert len(merged.classes) == 95
    assert (merged.labels == merged.classes.index("his_hers")).sum() == 27


@pytest.fixture(scope="module")
def synthetic():
    return generate_synthetic(seed=0)


def test_dat016_synthetic_is_deterministic_for_a_seed(synthetic):
    again = generate_synthetic(seed=0)
    np.testing.assert_array_equal(again.X, synthetic.X)
    np.testing.assert_array_equal(again.labels, synthetic.labels)
    assert not np.array_equal(generate_synthetic(seed=1).X, synthetic.X)


def test_dat017_synthetic_shape_ranges_and_padding(synthetic):
    d = synthetic
    assert len(d.classes) >= 20 and d.classes == sorted(d.classes)
    counts = np.bincount(d.labels)
    assert counts.min() == counts.max() >= 20
    assert d.X.shape[1:] == (90, 22) and d.channels == CHANNELS
    assert d.lengths.min() >= 40 and d.lengths.max() <= 85
    assert len(set(d.lengths)) > 20
    padding = np.arange(90)[None, :] < 90 - d.lengths[:, None]
    assert not d.X[padding].any()
    real = d.X[~padding]
    assert np.abs(real[:, [0, 1, 2, 11, 12, 13]]).max() <= 0.5
    others = np.delete(real, [0, 1, 2, 11, 12, 13], axis=1)
    assert others.min() >= 0 and others.max() <= 1
    assert d.meta.session.nunique() == d.meta.signer.nunique() == 6
    assert list(d.meta.n_frames_raw) == list(d.lengths)


def motion(d, i, hand):
    """Mean frame-to-frame change of one hand's position."""
    steps = d.real_steps(i)[:, d.hands[hand][:3]]
    return np.abs(np.diff(steps, axis=0)).mean()


def test_dat018_synthetic_has_one_and_two_handed_signs(synthetic):
    d = synthetic
    two_handed = set(d.notes["two_handed_classes"])
    assert two_handed and len(two_handed) < len(d.classes)
    for c, name in enumerate(d.classes):
        examples = np.flatnonzero(d.labels == c)
        ratio = np.median([motion(d, i, "left") / motion(d, i, "right") for i in examples])
        if name in two_handed:
            assert ratio > 0.5, name
        else:
            assert ratio < 0.25, name
    is_two_handed = np.isin(d.labels, [d.classes.index(n) for n in two_handed])
    assert set(d.meta.designed_hands[is_two_handed]) == {"two-handed"}
    assert set(d.meta.designed_hands[~is_two_handed]) == {"one-handed"}


def test_dat019_synthetic_prefix_pairs_share_their_start(synthetic):
    d = synthetic
    k = 25   # frames from the start of each sign, shorter than any sign

    def start(name):
        examples = np.flatnonzero(d.labels == d.classes.index(name))
        return np.mean([d.real_steps(i)[:k] for i in examples], axis=0)

    starts = {name: start(name) for name in d.classes}
    assert len(d.notes["prefix_pairs"]) >= 2
    for short, long in d.notes["prefix_pairs"]:
        distance = {name: np.sqrt(((starts[short] - s) ** 2).mean())
                    for name, s in starts.items() if name != short}
        others = [v for name, v in distance.items() if name != long]
        assert distance[long] < 0.5 * np.median(others), (short, long)
        # ... and the longer sign goes on after it
        mean_length = {name: d.lengths[d.labels == d.classes.index(name)].mean() for name in (short, long)}
        assert mean_length[long] > mean_length[short] + 10


def test_dat020_synthetic_needs_room_for_its_longest_sign():
    with pytest.raises(DataError, match="max_length"):
        generate_synthetic(max_length=60)


def test_dat021_stratified_split_proportions_per_class():
    labels = np.repeat(np.arange(5), [27, 26, 10, 3, 1])
    split = stratified_split(labels, 0.7, seed=0)
    assert split.dtype.kind == "U" and set(split) == set(SPLITS) == {"train", "validation", "test"}
    expected = {0: (19, 4, 4), 1: (18, 4, 4), 2: (7, 1, 2), 3: (1, 1, 1), 4: (1, 0, 0)}
    for c, counts in expected.items():
        got = tuple(int((split[labels == c] == s).sum()) for s in ("train", "validation", "test"))
        assert got == counts, c


def test_dat022_stratified_split_is_deterministic_and_seeded():
    labels = np.repeat(["a", "b", "c"], 20)
    first = stratified_split(labels, 0.7, seed=3)
    np.testing.assert_array_equal(first, stratified_split(labels, 0.7, seed=3))
    assert not np.array_equal(first, stratified_split(labels, 0.7, seed=4))


def test_dat023_stratified_split_keeps_validation_and_test_for_small_classes():
    labels = np.repeat(np.arange(4), [3, 4, 5, 6])
    split = stratified_split(labels, 0.9, seed=0)
    for c in range(4):
        assert {"validation", "test"} <= set(split[labels == c])


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1])
def test_dat024_stratified_split_rejects_bad_fractions(fraction):
    with pytest.raises(DataError, match="split.train"):
        stratified_split([0, 0, 1], fraction, seed=0)


def test_dat025_registry_dispatches_and_names_bad_config():
    data = load_dataset({"name": "synthetic", "seed": 2})
    np.testing.assert_array_equal(data.X, generate_synthetic(seed=2).X)
    with pytest.raises(DataError, match="dataset.source"):
        load_dataset({"name": "auslan"})
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        load_dataset({"name": "mnist"})


def test_dat026_synthetic_examples_sets_the_size_and_keeps_classes_and_signers_balanced(synthetic):
    big = generate_synthetic(examples=1000)
    assert big.X.shape == (1000, 90, 22) and len(big.meta) == 1000 and len(big.lengths) == 1000
    per_class = np.bincount(big.labels, minlength=len(big.classes))
    assert big.classes == synthetic.classes and per_class.max() - per_class.min() <= 1
    per_signer = big.meta["session"].value_counts()
    assert len(per_signer) == 6 and per_signer.max() - per_signer.min() <= len(big.classes)
    assert (big.lengths >= 40).all() and (big.lengths <= 85).all()
    np.testing.assert_array_equal(generate_synthetic(examples=1000).X, big.X)
    same = generate_synthetic(examples=648)          # the default size: the default data set
    np.testing.assert_array_equal(same.X, synthetic.X)
    np.testing.assert_array_equal(load_dataset({"name": "synthetic", "examples": 30}).X,
                                  generate_synthetic(examples=30).X)


@pytest.mark.parametrize("examples", [0, -3, 2.5, True, "100"])
def test_dat027_synthetic_examples_must_be_a_positive_integer(examples):
    with pytest.raises(DataError, match="dataset.examples must be a positive integer"):
        generate_synthetic(examples=examples)


@pytest.mark.parametrize("value, message", [("0", "'0' must be at least 1"), ("ten", "'ten' is not an integer")])
def test_dat028_run_synthetic_examples_flag_refuses_a_bad_number_naming_it(tmp_path, capsys, value, message):
    from pipeline.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["run", "synthetic", "--examples", value, "--runs", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert f"error: argument --examples: {message}" in err
    assert not (tmp_path / "runs").exists()


def test_dat029_run_synthetic_examples_flag_reaches_the_dataset_config_only_when_given():
    from pipeline.cli import build_parser
    from pipeline.cli.run import classification_config
    given = classification_config(build_parser().parse_args(["run", "synthetic", "--examples", "5000"]))
    plain = classification_config(build_parser().parse_args(["run", "synthetic"]))
    assert given["dataset"]["examples"] == 5000 and "examples" not in plain["dataset"]

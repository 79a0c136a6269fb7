"""Hand usage: one-handed vs two-handed from how much each hand moves over real frames."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.datasets import SequenceDataset
from pipeline.datasets.hands import (
    ONE_HANDED,
    TWO_HANDED,
    hand_columns,
    hand_ratios,
    hand_usage,
    hand_usage_counts,
    position_channels,
)

AUSLAN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "auslan"
HANDS = {"left": [0, 1, 2], "right": [3, 4, 5]}
CHANNELS = ["left_x", "left_y", "left_z", "right_x", "right_y", "right_z"]


def _dataset(sequences, padding="left", n_steps=30, hands=HANDS, channels=CHANNELS):
    """A SequenceDataset of the given real-frame arrays, zero-padded to ``n_steps``."""
    X = np.zeros((len(sequences), n_steps, len(channels)), dtype=np.float32)
    for i, frames in enumerate(sequences):
        if padding == "left":
            X[i, n_steps - len(frames):] = frames
        else:
            X[i, :len(frames)] = frames
    n = len(sequences)
    return SequenceDataset(name="hands", source="test", X=X,
                           lengths=np.array([len(s) for s in sequences], dtype=np.int32),
                           labels=np.zeros(n, dtype=np.int32), classes=["sign"], channels=list(channels),
                           meta=pd.DataFrame(index=range(n)), padding=padding, hands=hands)


def _moving(length, speed, rng):
    """A hand drifting by ``speed`` per frame on each channel, away from the origin."""
    return 0.3 + speed * np.cumsum(rng.choice([-1.0, 1.0], size=(length, 3)), axis=0)


@pytest.fixture
def examples():
    rng = np.random.default_rng(0)
    still_left = np.hstack([np.full((20, 3), 0.3), _moving(20, 0.02, rng)])
    both = np.hstack([_moving(25, 0.02, rng), _moving(25, 0.02, rng)])
    slight_left = np.hstack([0.3 + 0.001 * rng.standard_normal((15, 3)), _moving(15, 0.02, rng)])
    return [still_left, both, slight_left]


@pytest.mark.parametrize("padding", ["left", "right"])
def test_hnd001_still_left_hand_is_one_handed_and_padding_is_ignored(examples, padding):
    # The padding's jump from 0 to the resting hand at 0.3 would look like a lot of movement.
    ratios = hand_ratios(_dataset(examples, padding))
    assert ratios[0] == pytest.approx(0.0)
    assert ratios[1] == pytest.approx(1.0, abs=0.2)
    assert ratios[2] < 0.1
    assert list(hand_usage(ratios)) == [ONE_HANDED, TWO_HANDED, ONE_HANDED]


def test_hnd002_ratio_does_not_depend_on_padding_length(examples):
    short = hand_ratios(_dataset(examples, n_steps=30))
    long = hand_ratios(_dataset(examples, n_steps=90))
    np.testing.assert_allclose(short, long)


def test_hnd003_threshold_and_still_right_hand():
    assert list(hand_usage([0.2, 0.25, 0.3, np.nan])) == [ONE_HANDED, TWO_HANDED, TWO_HANDED, None]
    assert list(hand_usage([0.2, 0.3], threshold=0.35)) == [ONE_HANDED, ONE_HANDED]
    frozen_right = np.hstack([np.linspace(0, 1, 10)[:, None].repeat(3, 1), np.full((10, 3), 0.5)])
    assert np.isnan(hand_ratios(_dataset([frozen_right]))[0])


def test_hnd004_columns_and_counts(examples):
    columns = hand_columns(_dataset(examples))
    assert list(columns.columns) == ["hand_ratio", "hand_usage"]
    assert columns["hand_ratio"].dtype == np.float32
    assert hand_usage_counts(columns["hand_usage"]) == {ONE_HANDED: 2, TWO_HANDED: 1}
    assert hand_usage_counts([ONE_HANDED, None]) == {ONE_HANDED: 1, TWO_HANDED: 0, "unknown": 1}


def test_hnd005_only_positions_count_unless_no_channel_is_named_as_one():
    # The resting left hand's bend sensor jitters a lot from frame to frame; its position is still.
    rng = np.random.default_rng(4)
    channels = ["left_x", "left_y", "left_z", "left_thumb", "right_x", "right_y", "right_z", "right_thumb"]
    hands = {"left": [0, 1, 2, 3], "right": [4, 5, 6, 7]}
    frames = np.hstack([np.full((20, 3), 0.3), rng.uniform(0, 1, (20, 1)),
                        _moving(20, 0.02, rng), np.full((20, 1), 0.5)])
    dataset = _dataset([frames], hands=hands, channels=channels)
    assert position_channels(dataset, "left") == [0, 1, 2]
    assert hand_ratios(dataset)[0] == pytest.approx(0.0)
    # Channels not named by axis: every channel of the hand is measured.
    anonymous = _dataset([frames], hands=hands, channels=[f"c{i}" for i in range(8)])
    assert position_channels(anonymous, "right") == [4, 5, 6, 7]
    assert hand_ratios(anonymous)[0] > 1.0


def test_hnd006_data_without_hands_gets_no_columns(examples):
    assert hand_columns(_dataset(examples, hands={})) is None
    assert hand_columns(_dataset(examples, hands={"right": [3, 4, 5]})) is None


@pytest.mark.skipif(not AUSLAN.is_dir(), reason="the Auslan data is not next to the repository")
def test_hnd007_auslan_signs_split_into_one_and_two_handed():
    from pipeline.datasets.auslan import load_auslan

    dataset = load_auslan(AUSLAN)
    columns = hand_columns(dataset)
    one = columns["hand_usage"] == ONE_HANDED
    # SOURCE.md: in 55% of signs the left hand moves less than 0.25 x the right.
    assert 0.5 < one.mean() < 0.6
    # A sign is one- or two-handed: nearly every example agrees with its class's majority.
    share = one.groupby(dataset.labels).transform("mean")
    assert np.maximum(share, 1 - share).mean() > 0.97
    # The two modes are far apart: few examples near the threshold.
    assert columns["hand_ratio"].between(0.15, 0.35).mean() < 0.08


def test_hnd008_synthetic_signs_measure_as_designed():
    from pipeline.datasets.synthetic import generate_synthetic

    dataset = generate_synthetic(seed=0, signers=2, repetitions=2)
    columns = hand_columns(dataset)
    assert (columns["hand_usage"].to_numpy(str) == dataset.meta["designed_hands"].to_numpy(str)).all()

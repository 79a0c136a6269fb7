"""Synthetic glove signs: the embedded default data set, for users who have no recordings.

Shaped like Auslan (22 channels, left hand then right: x, y, z within about ±0.5; roll, pitch,
yaw and five finger bends in [0, 1]; left-padded to 90 frames) so every view of the dashboard
works the same on both. Each sign is built from shared motion primitives, so the network has to
tell signs apart by where, with which handshape and in what order the primitives happen:

Primitives: ``tap`` (towards a body location and back), ``circle`` (in the frontal plane),
``swipe`` (a straight stroke), ``shake`` (side to side or up and down), ``wave`` (the wrist
swings), ``nod`` (the wrist bends), ``twist`` (the hand rotates), ``point`` (the index extends
towards the addressee), ``wiggle`` (the fingers flutter), ``hold``; and a handshape change during
any stroke, such as a fist closing (flat -> fist) or a finger curling (point -> hook).

Classes (27; 19 one-handed with the right hand while the left rests, 8 two-handed):

- one-handed: think, crazy, know, hello, goodbye, yes, no, you, me, eat, drink, want, give,
  come, go, up, down, sorry, turn
- two-handed: meet, big, clap, book, read, rain, drive, house
- prefix pairs, where the first sign is the start of the second (as *think* starts *crazy* in
  Auslan): think -> crazy (tap at the head, then circle), hello -> goodbye (wave, then the fist
  closes), book -> read (the palms open, then the right hand swipes down over the left palm).
- near neighbours by design: think/know (temple or forehead, one tap or two), up/down,
  give/go, want/come.

Each of 6 signers (one session each, like Auslan's sessions; 4 repetitions per sign) has their
own speed, size, position offset and handshape habits; every repetition adds timing, size, place
and handshape jitter and sensor noise (white, a wobble over a few frames, a slow position drift),
small enough that a resting hand moves a tenth to a fifth as much as a signing one, as in Auslan.
Lengths run from 40 to 85 frames, proportional to how much the sign does, so a prefix sign is
shorter than its extension, as in real signing. The defaults are tuned so an LSTM(100) learns
them to about 95% test accuracy, with a few realistic confusions (me/up, book/clap, think/crazy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.datasets import DataError, SequenceDataset
from pipeline.datasets.auslan import CHANNELS, HANDS

MIN_LENGTH, MAX_LENGTH = 40, 85
FRAMES_PER_BEAT = 16.0
N_SIGNERS = 6
REPETITIONS = 4

# Body locations of the right hand (x: towards its side, y: up, z: forward); the left mirrors x.
LOCATIONS = {
    "rest": (0.14, -0.18, -0.15),
    "chest": (0.03, 0.00, -0.15),
    "neutral": (0.08, 0.05, -0.02),
    "midline": (0.04, 0.08, 0.00),
    "wide": (0.24, 0.05, -0.02),
    "forward": (0.06, 0.08, 0.15),
    "palm": (-0.02, 0.14, 0.02),     # just above the left palm held at the midline
    "mouth": (0.02, 0.20, -0.08),
    "head": (0.10, 0.38, -0.12),
    "forehead": (0.04, 0.42, -0.08),
    "side": (0.28, 0.28, -0.05),
    "high": (0.05, 0.40, 0.02),
}
# Finger bends: thumb, fore, middle, ring, little (0 straight, 1 fully bent).
HANDSHAPES = {
    "relaxed": (0.25, 0.20, 0.25, 0.30, 0.30),
    "flat": (0.10, 0.05, 0.05, 0.05, 0.05),
    "fist": (0.75, 0.90, 0.90, 0.90, 0.90),
    "point": (0.70, 0.05, 0.90, 0.90, 0.90),
    "hook": (0.70, 0.55, 0.90, 0.90, 0.90),
    "vee": (0.70, 0.05, 0.05, 0.90, 0.90),
    "bunch": (0.50, 0.55, 0.55, 0.55, 0.55),
    "cup": (0.30, 0.40, 0.40, 0.40, 0.40),
}
# Palm orientation as (roll, pitch, yaw) of the right hand; the left mirrors roll and yaw.
PALMS = {
    "side": (0.45, 0.40, 0.55),
    "down": (0.25, 0.45, 0.55),
    "up": (0.70, 0.40, 0.55),
    "in": (0.45, 0.60, 0.40),
}


@dataclass(frozen=True)
class Stroke:
    """One primitive performed at a location; ``to`` is the handshape it ends with."""

    at: str
    shape: str
    motion: tuple[str, ...]
    beats: float = 1.0
    d: tuple[float, float, float] = (0.0, 0.0, 0.0)  # direction (swipe, tap, shake) or rotation (twist)
    count: int = 1
    to: str | None = None
    palm: str = "side"


def _s(at, shape, motion, beats=1.0, **kwargs) -> Stroke:
    return Stroke(at, shape, tuple(motion.split("+")), beats, **kwargs)


@dataclass(frozen=True)
class Sign:
    name: str
    right: tuple[Stroke, ...]
    left: tuple[Stroke, ...] | None = None   # None: the left hand rests

    def __post_init__(self):
        # Both hands share one timeline, stroke by stroke.
        if self.left is not None and [s.beats for s in self.left] != [s.beats for s in self.right]:
            raise ValueError(f"sign {self.name!r}: the hands' strokes must have the same beats")


def _mirrored(name, *strokes) -> Sign:
    """A symmetric two-handed sign: the left hand does what the right does, mirrored."""
    return Sign(name, strokes, strokes)


THINK = (_s("head", "point", "tap", 1.3, d=(-0.4, 0.0, -1.0)),)
HELLO = (_s("side", "flat", "wave", 1.6, palm="in"),)
BOOK = (_s("midline", "flat", "twist", 1.4, d=(-0.3, 0.0, 0.0), palm="in"),)
SIGNS = (
    Sign("think", THINK),
    Sign("crazy", THINK + (_s("head", "point", "circle", 1.5),)),
    Sign("know", (_s("forehead", "point", "tap", 1.6, d=(0.0, 0.0, -1.0), count=2, palm="in"),)),
    Sign("hello", HELLO),
    Sign("goodbye", HELLO + (_s("side", "flat", "hold", 1.0, to="fist", palm="in"),)),
    Sign("yes", (_s("neutral", "fist", "nod", 1.8, count=2),)),
    Sign("no", (_s("neutral", "flat", "shake", 1.8, d=(1.0, 0.0, 0.0), count=2, palm="down"),)),
    Sign("you", (_s("chest", "relaxed", "point", 1.5, to="point"),)),
    Sign("me", (_s("chest", "point", "tap", 1.4, d=(0.0, 0.0, -1.0), palm="in"),)),
    Sign("eat", (_s("mouth", "bunch", "tap", 1.8, d=(0.0, 0.0, -1.0), count=2),)),
    Sign("drink", (_s("neutral", "cup", "swipe", 1.0, d=(-0.3, 1.0, -0.4)),
                   _s("mouth", "cup", "twist", 1.2, d=(0.0, 0.35, 0.0)))),
    Sign("want", (_s("forward", "flat", "swipe", 1.6, d=(0.0, 0.0, -1.0), to="fist", palm="down"),)),
    Sign("give", (_s("chest", "flat", "swipe", 1.5, d=(0.2, 0.1, 1.0), palm="up"),)),
    Sign("come", (_s("forward", "point", "swipe", 1.6, d=(0.0, 0.0, -1.0), to="hook", palm="up"),)),
    Sign("go", (_s("chest", "point", "swipe", 1.4, d=(0.7, 0.0, 1.0)),)),
    Sign("up", (_s("chest", "point", "swipe", 1.4, d=(0.0, 1.0, 0.0), palm="in"),)),
    Sign("down", (_s("high", "point", "swipe", 1.4, d=(0.0, -1.0, 0.0), palm="in"),)),
    Sign("sorry", (_s("chest", "fist", "circle", 2.0, palm="in"),)),
    Sign("turn", (_s("neutral", "flat", "twist", 1.6, d=(0.4, 0.0, 0.0), palm="down"),)),
    _mirrored("meet", _s("wide", "point", "swipe", 1.5, d=(-1.0, 0.0, 0.0))),
    _mirrored("big", _s("midline", "flat", "swipe", 1.5, d=(1.0, 0.2, 0.0), palm="in")),
    _mirrored("clap", _s("midline", "flat", "tap", 1.8, d=(-1.0, 0.0, 0.0), count=2, palm="in")),
    _mirrored("book", *BOOK),
    Sign("read", BOOK + (_s("palm", "vee", "swipe", 1.3, d=(0.0, -0.6, 0.2), palm="down"),),
         BOOK + (_s("midline", "flat", "hold", 1.3, palm="up"),)),
    _mirrored("rain", _s("high", "flat", "swipe+wiggle", 1.8, d=(0.0, -1.0, 0.0), palm="down")),
    Sign("drive", (_s("neutral", "fist", "shake", 2.0, d=(0.0, 1.0, 0.0), count=2, palm="in"),),
         (_s("neutral", "fist", "shake", 2.0, d=(0.0, -1.0, 0.0), count=2, palm="in"),)),
    _mirrored("house", _s("high", "flat", "swipe", 1.6, d=(1.0, -1.0, 0.0), palm="in")),
)
PREFIX_PAIRS = (("think", "crazy"), ("hello", "goodbye"), ("book", "read"))

APPROACH_BEATS, TRANSITION_BEATS, RETRACT_BEATS = 0.9, 0.4, 0.6


def generate_synthetic(seed: int = 0, max_length: int = 90, signers: int = N_SIGNERS,
                       repetitions: int = REPETITIONS, examples: int | None = None) -> SequenceDataset:
    """``len(SIGNS) * signers * repetitions`` sequences, the same for the same arguments.

    ``examples``: exactly that many sequences instead (a big run to time the dashboard on): as many
    repetitions as it takes, then the first ``examples`` in (repetition, signer, class) order, so
    every class and signer keeps its share (within one). ``examples=None`` is the data set above."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= MAX_LENGTH:
        raise DataError(f"dataset.max_length must be an integer above {MAX_LENGTH} for the synthetic "
                        f"signs (they run up to {MAX_LENGTH} frames), not {max_length!r}")
    if signers < 1 or repetitions < 1:
        raise DataError("synthetic signs need at least one signer and one repetition")
    if examples is not None:
        if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
            raise DataError(f"dataset.examples must be a positive integer, not {examples!r}")
        repetitions = -(-examples // (len(SIGNS) * signers))
    rng = np.random.default_rng(seed)
    styles = [_signer_style(rng) for _ in range(signers)]
    classes = sorted(sign.name for sign in SIGNS)
    by_name = {sign.name: sign for sign in SIGNS}

    per_repetition = len(classes) * signers
    n = per_repetition * repetitions if examples is None else examples
    X = np.zeros((n, max_length, len(CHANNELS)), dtype=np.float32)
    lengths = np.zeros(n, dtype=np.int32)
    labels = np.zeros(n, dtype=np.int32)
    rows = []
    i = 0
    for session, style in enumerate(styles, start=1):
        for label, name in enumerate(classes):
            sign = by_name[name]
            for repetition in range(1, repetitions + 1):
                if (repetition - 1) * per_repetition + (session - 1) * len(classes) + label >= n:
                    continue
                frames = _perform(sign, style, rng)
                X[i, max_length - len(frames):] = _smooth(frames)
                lengths[i], labels[i] = len(frames), label
                rows.append({"session": session, "signer": f"signer{session}", "repetition": repetition,
                             "n_frames_raw": len(frames),
                             "designed_hands": "one-handed" if sign.left is None else "two-handed"})
                i += 1
    _add_sensor_noise(X, lengths, rng)
    meta = pd.DataFrame(rows).astype({"session": "int32", "repetition": "int32", "n_frames_raw": "int32"})
    notes = {
        "seed": seed,
        "signers": signers,
        "repetitions": repetitions,
        "two_handed_classes": sorted(s.name for s in SIGNS if s.left is not None),
        "prefix_pairs": [list(pair) for pair in PREFIX_PAIRS],
    }
    return SequenceDataset(
        name="synthetic", source=f"generated (seed {seed})", X=X, lengths=lengths, labels=labels,
        classes=classes, channels=list(CHANNELS), meta=meta, padding="left",
        hands={hand: list(channels) for hand, channels in HANDS.items()}, notes=notes)


def _signer_style(rng: np.random.Generator) -> dict:
    return {
        "speed": rng.uniform(0.88, 1.12),          # frames per beat, relative
        "size": rng.uniform(0.75, 1.3),            # amplitude of every motion
        "offset": rng.normal(0.0, 0.06, 3),        # where they hold their hands
        "fingers": rng.normal(0.0, 0.07, 5),       # handshape habits
        "palm": rng.normal(0.0, 0.05, 3),
    }


def _perform(sign: Sign, style: dict, rng: np.random.Generator) -> np.ndarray:
    """One clean repetition of ``sign`` by a signer with ``style``: (frames, 22), before smoothing."""
    beats = (APPROACH_BEATS + sum(s.beats for s in sign.right)
             + TRANSITION_BEATS * (len(sign.right) - 1) + RETRACT_BEATS)
    n = int(np.clip(round(beats * FRAMES_PER_BEAT * style["speed"] * rng.normal(1.0, 0.05)),
                    MIN_LENGTH, MAX_LENGTH))
    size = style["size"] * rng.normal(1.0, 0.2)
    offset = style["offset"] + rng.normal(0.0, 0.035, 3)
    style = {**style, "fingers": style["fingers"] + rng.normal(0.0, 0.1, 5),
             "palm": style["palm"] + rng.normal(0.0, 0.06, 3)}
    jitter = rng.uniform(0.75, 1.25, len(sign.right) * 2 + 1)   # the same timing for both hands
    # The left hand is computed in the right hand's frame and reflected, so its offset is too.
    left_offset = offset * (-1, 1, 1)
    if sign.left is None:
        left = np.broadcast_to(_pose("rest", "relaxed", "side", style, left_offset), (n, 11))
    else:
        left = _hand_track(sign.left, n, size, left_offset, style, jitter)
    return np.concatenate([left * MIRROR_SCALE + MIRROR_SHIFT,
                           _hand_track(sign.right, n, size, offset, style, jitter)], axis=1)


# A right-hand pose reflected into the left hand's: x, roll and yaw mirror.
MIRROR_SCALE = np.array([-1, 1, 1, -1, 1, -1] + [1] * 5, dtype=float)
MIRROR_SHIFT = np.array([0, 0, 0, 1, 0, 1] + [0] * 5, dtype=float)
# Sensor noise per channel (position, orientation, finger bends; both hands): a white part and a
# wobble that is correlated over about WOBBLE_FRAMES frames, like a glove's tracking error.
NOISE = np.tile(np.r_[np.full(3, 0.0003), np.full(3, 0.002), np.full(5, 0.004)], 2).astype(np.float32)
WOBBLE = np.tile(np.r_[np.full(3, 0.001), np.full(3, 0.008), np.full(5, 0.015)], 2).astype(np.float32)
WOBBLE_FRAMES = 8
DRIFT = 0.004   # how far a position sensor wanders over one sign


NOISE_BLOCK = 4096   # examples noised at a time: a 100k-sign set's noise would take ~3 GB at once


def _add_sensor_noise(X: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> None:
    """Noise and a slow drift of the position sensors, on the real frames only; then the glove's
    ranges (positions within ±0.5, angles and bends in [0, 1]). In blocks of ``NOISE_BLOCK``
    examples (the default data set is one block, so its draws are as they always were)."""
    for start in range(0, len(X), NOISE_BLOCK):
        _noise_block(X[start:start + NOISE_BLOCK], lengths[start:start + NOISE_BLOCK], rng)


def _noise_block(X: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> None:
    n, steps, channels = X.shape
    real = (np.arange(steps) >= steps - lengths[:, None])[..., None]
    white = rng.standard_normal((n, steps + WOBBLE_FRAMES, channels), dtype=np.float32)
    total = np.cumsum(white, axis=1)
    wobble = (total[:, WOBBLE_FRAMES:] - total[:, :-WOBBLE_FRAMES]) / np.float32(np.sqrt(WOBBLE_FRAMES))
    X += (white[:, WOBBLE_FRAMES:] * NOISE + wobble * WOBBLE) * real
    hands = X.reshape(n, steps, 2, 11)           # a view: (example, t, hand, channel)
    walk = rng.standard_normal((n, steps, 2, 3), dtype=np.float32)
    walk *= (DRIFT / np.sqrt(lengths)).astype(np.float32)[:, None, None, None] * real[..., None]
    hands[..., :3] += np.cumsum(walk, axis=1)
    np.clip(hands[..., :3], -0.5, 0.5, out=hands[..., :3])
    np.clip(hands[..., 3:], 0.0, 1.0, out=hands[..., 3:])
    hands[..., 3:] *= real[..., None]


def _pose(at: str, shape: str, palm: str, style: dict, offset: np.ndarray) -> np.ndarray:
    """The 11 channels of a right hand held still."""
    return np.concatenate([np.add(LOCATIONS[at], offset), np.add(PALMS[palm], style["palm"]),
                           np.add(HANDSHAPES[shape], style["fingers"])])


def _hand_track(strokes, n, size, offset, style, jitter) -> np.ndarray:
    """Rest -> each stroke (joined by short transitions) -> part way back to rest, over n frames.

    Computed in the right hand's frame; the caller mirrors the left hand's result.
    """
    rest = _pose("rest", "relaxed", "side", style, offset)
    segments = []          # (beats, function of u in [0, 1] -> (len(u), 11) poses)
    previous = rest
    for k, stroke in enumerate(strokes):
        start = _pose(stroke.at, stroke.shape, stroke.palm, style, offset)
        end = _pose(stroke.at, stroke.to or stroke.shape, stroke.palm, style, offset)
        lead = APPROACH_BEATS if k == 0 else TRANSITION_BEATS
        segments.append((lead * jitter[2 * k], _blend(previous, start)))
        segments.append((stroke.beats * jitter[2 * k + 1], _stroke(stroke, start, end, size)))
        previous = segments[-1][1](np.ones(1))[0]
    segments.append((RETRACT_BEATS * jitter[-1], _blend(previous, previous + 0.5 * (rest - previous))))

    bounds = np.round(np.cumsum([0.0] + [b for b, _ in segments]) / sum(b for b, _ in segments) * n)
    return np.concatenate([f(np.arange(int(b - a)) / max(b - a, 1)) for (_, f), a, b
                           in zip(segments, bounds[:-1], bounds[1:])])


def _smoothstep(u: np.ndarray) -> np.ndarray:
    return u * u * (3 - 2 * u)


def _blend(a: np.ndarray, b: np.ndarray):
    return lambda u: a + _smoothstep(u)[:, None] * (b - a)


def _stroke(stroke: Stroke, start: np.ndarray, end: np.ndarray, size: float):
    def poses(u):
        base = start + _smoothstep(u)[:, None] * (end - start)
        return base + size * sum(PRIMITIVES[m](u, stroke) for m in stroke.motion)
    return poses


def _offsets(u, position=None, orientation=None, fingers=None) -> np.ndarray:
    out = np.zeros((len(u), 11))
    for columns, value in ((slice(0, 3), position), (slice(3, 6), orientation), (slice(6, 11), fingers)):
        if value is not None:
            out[:, columns] = value
    return out


def _direction(stroke: Stroke) -> np.ndarray:
    d = np.asarray(stroke.d, dtype=float)
    norm = np.linalg.norm(d)
    return d / norm if norm else d


def _bump(u, count):
    """0 -> 1 -> 0, ``count`` times."""
    return 0.5 * (1 - np.cos(2 * np.pi * count * u))


PRIMITIVES = {
    "hold": lambda u, s: _offsets(u),
    "tap": lambda u, s: _offsets(u, position=0.06 * _bump(u, s.count)[:, None] * _direction(s)),
    "circle": lambda u, s: _offsets(u, position=0.07 * np.stack(
        [np.cos(2 * np.pi * u) - 1, np.sin(2 * np.pi * u), np.zeros_like(u)], axis=1)),
    "swipe": lambda u, s: _offsets(u, position=0.18 * _smoothstep(u)[:, None] * _direction(s)),
    "shake": lambda u, s: _offsets(
        u, position=0.06 * np.sin(2 * np.pi * s.count * u)[:, None] * _direction(s)),
    "wave": lambda u, s: _offsets(u, position=0.025 * np.sin(4 * np.pi * u)[:, None] * (1, 0, 0),
                                  orientation=0.15 * np.sin(4 * np.pi * u)[:, None] * (0, 0, 1)),
    "nod": lambda u, s: _offsets(u, position=-0.03 * _bump(u, s.count)[:, None] * (0, 1, 0),
                                 orientation=0.15 * _bump(u, s.count)[:, None] * (0, 1, 0)),
    "twist": lambda u, s: _offsets(u, orientation=_smoothstep(u)[:, None] * np.asarray(s.d)),
    "point": lambda u, s: _offsets(u, position=0.15 * _smoothstep(u)[:, None] * (0.2, 0.1, 1.0)),
    "wiggle": lambda u, s: _offsets(u, fingers=0.15 * np.sin(6 * np.pi * u[:, None] + np.arange(5))),
}


def _smooth(frames: np.ndarray, radius: int = 4, sigma: float = 1.5) -> np.ndarray:
    """Gaussian smoothing along time, so joins between segments look like real hand motion."""
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    n = len(frames)
    padded = np.concatenate([np.repeat(frames[:1], radius, axis=0), frames,
                             np.repeat(frames[-1:], radius, axis=0)])
    return sum(w * padded[k:k + n] for k, w in enumerate(kernel))

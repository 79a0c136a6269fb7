"""The Tempczyk & Bartołd study's claims about the Auslan LSTM, measured on any classification run.

Each claim of the study is restated, measured on the run's own files (examples.parquet,
projections.parquet, the projected layer's per-step states, the autoencoders' seed-stability
tables) and given a verdict, ``holds``, ``does not hold`` or ``unclear``, by a rule written next to
the numbers; a claim about classes the data set lacks is ``not applicable`` (the missing names are
listed). Data sets with structure known by construction (the synthetic signs' prefix pairs and
designed hand usage, from the manifest's dataset notes) get the same measures on those.

The measures are pure functions of arrays (numpy, scipy, ``pipeline.analysis.trust``) so that each
can be checked on arrays whose answer is known; ``study_of(run)`` reads a run and applies them all.
Paths: each example's sequence of 2-D points (or full-space states), resampled to ``PATH_POINTS``
points at equal fractions of its own length, so that signs of different lengths compare; a class's
*mean path* is the average of its examples' resampled paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from pipeline.analysis import trust
from pipeline.runformat import CLASS_STABILITY_FILE, PAIR_STABILITY_FILE, Run, RunError

HOLDS, FAILS, UNCLEAR, NOT_APPLICABLE = "holds", "does not hold", "unclear", "not applicable"
PATH_POINTS = 20
K = 10

# The study's claims, by the Auslan class names they are about.
CLOSE_PAIRS = (("drink", "danger"), ("who", "soon"))
PREFIX_PAIRS = (("think", "crazy"),)
PERPENDICULAR = ("you", ("think", "crazy", "sorry"))
UNSTABLE_PAIRS = (("God", "science"),)

RULES = {
    "hand_usage": "holds if the 2-D picture's k-NN agreement of hand usage is at least halfway from "
                  "chance to 1 ((agreement - chance) / (1 - chance) >= 0.5); does not hold below 0.1 of "
                  "the way; unclear between",
    "close_paths": "percentile of the pair's mean-path distance among all class pairs (0 = the closest "
                   "pair): holds at <= 5 for every pair, does not hold if any pair is above 20, unclear "
                   "otherwise",
    "prefix": "first part of the long sign = its first (median_length(short) - 1) / (median_length(long) - 1) "
              "of steps; "
              "overlap of a part = share of its mean-path points within r of the short sign's mean "
              "path at the same fraction of the way (both resampled to the same points; r: the median "
              "within-class spread, the typical distance of a sign's path from its class's mean path). "
              "Holds if the first part's "
              "overlap is >= 0.5 and exceeds both the rest's and the median overlap of other classes' "
              "first parts (baseline) by >= 0.25; does not hold if it is not above both (first <= max(rest, "
              "baseline)); unclear otherwise",
    "perpendicular": "angle between mean path directions (start to end of the class's mean path): holds "
                     "if every angle is within 90 +- 20 degrees; does not hold if the mean |angle - 90| "
                     "is above 35; unclear otherwise",
    "unstable": "rank of one class among the other's nearest classes (centroids of last-step points, "
                "1 = the nearest, the smaller of the two ways) in each autoencoder seed: holds if the "
                "pair is close (rank <= 3) in some seed and at least 3 ranks further in another; does "
                "not hold if the ranks differ by at most 1; unclear otherwise or with one seed",
    "mistakes": "rank of the predicted class among the true class's nearest classes (centroids of "
                "last-step points, 1 = the nearest): holds if the median rank of the errors (test "
                "split; all splits when it has fewer than 5) in the 2-D picture is <= max(3, 5% of the "
                "other classes); does not hold if it is >= 25% of them; unclear between",
}
STATEMENTS = {
    "hand_usage": "One-handed and two-handed signs are separated in the 2-D picture of the last step.",
    "close_paths": "The paths of drink and danger, and of who and soon, are close.",
    "close_paths_known": "The paths of each prefix pair (the first sign is the start of the second) are close.",
    "prefix": "think is the start of crazy: their paths overlap over the first part of crazy, not the rest.",
    "prefix_known": "Each prefix pair's paths overlap over the first part of the longer sign, not the rest.",
    "perpendicular": "The path of you goes perpendicular to those of think, crazy and sorry.",
    "unstable": "Some closeness changes when the autoencoder is retrained (God and science).",
    "mistakes": "The network's mistakes are made between signs that are near in the projected space.",
}


# ---------------------------------------------------------------------------------------------
# Paths

def resample_paths(points: np.ndarray, row_start: np.ndarray, lengths: np.ndarray, m: int = PATH_POINTS,
                   start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """(n, m, d): each example's rows ``points[row_start : row_start + length]`` linearly
    interpolated at ``m`` equally spaced fractions of its length from ``start`` to ``stop``."""
    points = np.asarray(points, dtype=np.float64)
    row_start, lengths = np.asarray(row_start, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    u = np.linspace(start, stop, m)
    position = u[None, :] * (lengths - 1)[:, None]                   # (n, m) steps from each start
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, lengths[:, None] - 1)
    weight = (position - low)[..., None]
    return points[row_start[:, None] + low] * (1 - weight) + points[row_start[:, None] + high] * weight


def class_mean_paths(paths: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, m, d): the mean of each class's paths (NaN for classes without examples)."""
    labels = np.asarray(labels)
    means = np.full((n_classes, *paths.shape[1:]), np.nan)
    for c in np.unique(labels):
        means[c] = paths[labels == c].mean(axis=0)
    return means


def path_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the points of two paths of equal length of their point-to-point distance."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).mean())


def path_distances(mean_paths: np.ndarray) -> np.ndarray:
    """(C, C) ``path_distance`` between every two classes' mean paths; NaN on the diagonal and for
    classes without examples."""
    n = len(mean_paths)
    distances = np.zeros((n, n))
    for t in range(mean_paths.shape[1]):
        distances += cdist(mean_paths[:, t], mean_paths[:, t])
    distances /= mean_paths.shape[1]
    np.fill_diagonal(distances, np.nan)
    return distances


def pair_percentile(distances: np.ndarray, a: int, b: int) -> float:
    """Where the pair (a, b) falls among all unordered class pairs by distance, in percent:
    0 = the closest pair, 100 = the farthest (ties count half)."""
    i, j = np.triu_indices(len(distances), k=1)
    values = distances[i, j]
    values = values[np.isfinite(values)]
    d = distances[a, b]
    if len(values) < 2 or not np.isfinite(d):
        return float("nan")
    below = float((values < d).sum()) + 0.5 * float((values == d).sum() - 1)
    return 100.0 * below / (len(values) - 1)


def within_class_spread(paths: np.ndarray, labels: np.ndarray, mean_paths: np.ndarray) -> float:
    """The median over classes of the mean distance of a class's paths to its mean path."""
    labels = np.asarray(labels)
    spreads = [np.linalg.norm(paths[labels == c] - mean_paths[c], axis=-1).mean() for c in np.unique(labels)]
    return float(np.median(spreads))


def overlap(reference: np.ndarray, segment: np.ndarray, radius: float) -> float:
    """Share of ``segment``'s points within ``radius`` of the nearest point of ``reference``
    (1.0 when the segment runs along the reference path)."""
    return float((cdist(np.asarray(segment), np.asarray(reference)).min(axis=1) <= radius).mean())


def direction(mean_path: np.ndarray) -> np.ndarray:
    """A path's direction: from its first point to its last."""
    mean_path = np.asarray(mean_path, dtype=float)
    return mean_path[-1] - mean_path[0]


def angle_degrees(u: np.ndarray, v: np.ndarray) -> float:
    """The angle between two vectors in degrees, 0 .. 180 (NaN for a zero vector)."""
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0 or nv == 0:
        return float("nan")
    return math.degrees(math.acos(float(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0))))


# ---------------------------------------------------------------------------------------------
# The measures

def hand_separation(picture: np.ndarray, full: np.ndarray, usage, k: int = K) -> dict | None:
    """k-NN agreement of a per-example label (hand usage) in the 2-D picture and in the full
    space, with chance (what a picture ignoring the label scores: the sum of squared shares) and
    how far the picture is from chance to 1 (``above_chance``). None without two labels."""
    usage = pd.Series(usage, dtype="string")
    known = usage.notna().to_numpy()
    labels = usage[known].to_numpy(str)
    if known.sum() <= 2 * k or len(set(labels)) < 2:
        return None
    shares = pd.Series(labels).value_counts(normalize=True)
    chance = float((shares ** 2).sum())
    in_picture = trust.knn_label_agreement(np.asarray(picture)[known], labels, k)
    in_full = trust.knn_label_agreement(np.asarray(full)[known], labels, k)
    return {"k": k, "examples": int(known.sum()), "counts": {str(a): int(b) for a, b in
                                                              pd.Series(labels).value_counts().items()},
            "chance": chance, "picture": in_picture, "full": in_full,
            "above_chance": (in_picture - chance) / (1 - chance), "full_above_chance": (in_full - chance) / (1 - chance)}


def hand_verdict(result: dict | None) -> str:
    if result is None:
        return NOT_APPLICABLE
    return HOLDS if result["above_chance"] >= 0.5 else FAILS if result["above_chance"] < 0.1 else UNCLEAR


def close_pair(distances: np.ndarray, a: int, b: int) -> dict:
    return {"distance": float(distances[a, b]), "percentile": pair_percentile(distances, a, b),
            "median_pair_distance": float(np.nanmedian(distances[np.triu_indices(len(distances), k=1)]))}


def close_verdict(percentiles: list[float]) -> str:
    if not percentiles or any(not np.isfinite(p) for p in percentiles):
        return UNCLEAR
    return HOLDS if max(percentiles) <= 5 else FAILS if max(percentiles) > 20 else UNCLEAR


def aligned_overlap(a: np.ndarray, b: np.ndarray, radius: float) -> float:
    """Share of the time points of two paths of equal length where they are within ``radius`` of
    each other (1.0 for identical paths)."""
    return float((np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1) <= radius).mean())


def prefix_overlap(short_path: np.ndarray, long_first: np.ndarray, long_rest: np.ndarray, radius: float,
                   baseline: float = 0.0) -> dict:
    """How the shorter sign's mean path overlaps the longer one's first part and its rest, point by
    point (``aligned_overlap``: the short sign's whole path against each part, all resampled to the
    same number of points). ``baseline``: the first-part overlap other classes have with the short
    sign; ``margin``: how far the first part's overlap exceeds both the rest's and the baseline."""
    first, rest = aligned_overlap(short_path, long_first, radius), aligned_overlap(short_path, long_rest, radius)
    return {"radius": float(radius), "overlap_first": first, "overlap_rest": rest, "baseline": float(baseline),
            "margin": first - max(rest, baseline)}


def prefix_verdict(result: dict) -> str:
    if result["overlap_first"] >= 0.5 and result["margin"] >= 0.25:
        return HOLDS
    return FAILS if result["margin"] <= 0 else UNCLEAR


def perpendicular_verdict(angles: list[float]) -> str:
    if not angles or any(not np.isfinite(a) for a in angles):
        return UNCLEAR
    off = [abs(a - 90) for a in angles]
    return HOLDS if max(off) <= 20 else FAILS if float(np.mean(off)) > 35 else UNCLEAR


def seed_ranks(codes_by_seed: list[np.ndarray], labels: np.ndarray, n_classes: int, a: int, b: int) -> list[int]:
    """Per seed, the rank of ``b`` among ``a``'s nearest classes or of ``a`` among ``b``'s,
    whichever is smaller (centroids of the seed's last-step codes; 1 = the nearest)."""
    ranks = []
    for codes in codes_by_seed:
        d = trust.centroid_distances(trust.class_centroids(codes, labels, n_classes))
        ranks.append(min(trust.class_rank(d, a, b), trust.class_rank(d, b, a)))
    return ranks


def unstable_verdict(ranks: list[int]) -> str:
    if len(ranks) < 2:
        return UNCLEAR
    if min(ranks) <= 3 and max(ranks) - min(ranks) >= 3:
        return HOLDS
    return FAILS if max(ranks) - min(ranks) <= 1 else UNCLEAR


def error_ranks(picture: np.ndarray, full: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                n_classes: int) -> pd.DataFrame:
    """One row per misclassified example: the rank of its predicted class among its true class's
    nearest classes (centroids of last-step points; 1 = the nearest) in the picture and in full."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    wrong = np.flatnonzero(predicted != labels)
    ranks = {}
    for name, points in (("picture", picture), ("full", full)):
        d = trust.centroid_distances(trust.class_centroids(points, labels, n_classes))
        ranks[name] = np.array([trust.class_rank(d, labels[i], predicted[i]) for i in wrong], dtype=np.int64)
    return pd.DataFrame({"index": wrong, "label": labels[wrong], "prediction": predicted[wrong],
                         "rank_picture": ranks["picture"], "rank_full": ranks["full"]})


def rank_summary(ranks: pd.DataFrame) -> dict:
    if not len(ranks):
        return {"errors": 0}
    out: dict = {"errors": int(len(ranks))}
    for name in ("picture", "full"):
        r = ranks[f"rank_{name}"]
        out.update({f"median_rank_{name}": float(r.median()), f"rank1_{name}": float((r == 1).mean()),
                    f"rank_le3_{name}": float((r <= 3).mean())})
    return out


def mistakes_verdict(median_rank: float | None, n_classes: int) -> str:
    if median_rank is None or not np.isfinite(median_rank):
        return UNCLEAR
    others = n_classes - 1
    if median_rank <= max(3.0, 0.05 * others):
        return HOLDS
    return FAILS if median_rank >= 0.25 * others else UNCLEAR


# ---------------------------------------------------------------------------------------------
# A run

@dataclass
class RunData:
    """What the claims read from a run: per-example tables and per-step points."""

    examples: pd.DataFrame      # sorted by example_id
    classes: list[str]
    picture_id: str             # the 2-D projection measured ("ae2"; "pca2" without autoencoders)
    picture: np.ndarray         # (rows, 2) per-step points of the picture
    full: np.ndarray            # (rows, units) the projected layer's states
    seed_codes: list[np.ndarray]  # last-step codes of each autoencoder seed (the first: the picture's)
    class_stability: pd.DataFrame | None
    pair_stability: pd.DataFrame | None
    notes: dict
    layer: int
    state: str

    @property
    def row_start(self) -> np.ndarray:
        return self.examples["row_start"].to_numpy(np.int64)

    @property
    def lengths(self) -> np.ndarray:
        return self.examples["length"].to_numpy(np.int64)

    @property
    def last_rows(self) -> np.ndarray:
        return self.row_start + self.lengths - 1

    @property
    def labels(self) -> np.ndarray:
        return self.examples["label"].to_numpy(np.int64)


def read_run(run: Run) -> RunData:
    """The tables ``study_of`` measures; RunError when the run is not a finished classification
    run with a 2-D path projection."""
    if not run.manifest.is_classification:
        raise RunError(f"run {run.run_id!r} is a {run.kind} run; the study's claims are about classifiers")
    if not run.manifest.complete:
        raise RunError(f"run {run.run_id!r} is incomplete; finish building it first")
    described = {str(p.get("id")): p for p in run.manifest.projections}
    picture_id = next((p for p in ("ae2", "pca2") if p in described), None)
    if picture_id is None:
        raise RunError(f"run {run.run_id!r} has no 2-D path projection (ae2 or pca2); run "
                       f"`python -m pipeline project {run.run_id}` first")
    examples = run.examples().sort_values("example_id").reset_index(drop=True)
    if "label" not in examples:
        raise RunError(f"run {run.run_id!r} has no labels in examples.parquet")
    layer, state = int(described[picture_id].get("layer", -1)), str(described[picture_id].get("state", "h"))
    if layer < 0:
        layer = run.manifest.layer(layer).index
    full = run.step_matrix(layer, state)
    projections = run.projections()
    picture = _points(projections, picture_id, examples, per_step=True)
    if len(picture) != len(full):
        raise RunError(f"projection {picture_id} has {len(picture)} rows but the states have {len(full)}")
    last = examples["row_start"].to_numpy(np.int64) + examples["length"].to_numpy(np.int64) - 1
    seed_codes = [picture[last]]
    if picture_id.startswith("ae"):
        seeds = sorted((pid for pid in described if pid.startswith(f"{picture_id}-seed")),
                       key=lambda pid: int(pid.rsplit("seed", 1)[1]))
        seed_codes += [_points(projections, pid, examples, per_step=False) for pid in seeds]

    def stability(name: str) -> pd.DataFrame | None:
        if not run.has(name):
            return None
        frame = run.read_table(name)
        return frame[frame["dims"] == 2].reset_index(drop=True) if "dims" in frame else frame

    return RunData(examples, run.classes, picture_id, picture, full, seed_codes, stability(CLASS_STABILITY_FILE),
                   stability(PAIR_STABILITY_FILE), dict((run.manifest.dataset or {}).get("notes") or {}), layer, state)


def _points(projections: pd.DataFrame, pid: str, examples: pd.DataFrame, per_step: bool) -> np.ndarray:
    rows = projections[projections["projection"] == pid].sort_values(["example_id", "t"])
    points = rows[["x", "y"]].to_numpy(np.float64)
    expected = int(examples["length"].sum()) if per_step else len(examples)
    if len(points) != expected:
        raise RunError(f"projection {pid} has {len(points)} rows, expected {expected}")
    return points


def study_of(data: RunData) -> dict:
    """Every claim measured on ``data``: ``{"claims": [...], "picture": ..., ...}``."""
    classes = list(data.classes)
    index = {name: i for i, name in enumerate(classes)}
    n_classes = len(classes)
    labels = data.labels
    last = data.last_rows
    points = {"picture": data.picture, "full": data.full}
    paths = {space: resample_paths(p, data.row_start, data.lengths) for space, p in points.items()}
    means = {space: class_mean_paths(p, labels, n_classes) for space, p in paths.items()}
    distances = {space: path_distances(m) for space, m in means.items()}
    claims = []

    def missing(names) -> list[str]:
        return sorted({n for n in names if n not in index})

    def claim(key: str, verdict: str, numbers: dict, statement: str | None = None, rule: str | None = None,
              missing_names: list[str] | None = None) -> None:
        entry = {"claim": key, "title": CLAIM_TITLES.get(key, key), "statement": statement or STATEMENTS[key],
                 "verdict": verdict,
                 "rule": rule or RULES[key.removesuffix("_known")], "numbers": numbers}
        if missing_names:
            entry["missing_classes"] = missing_names
        claims.append(entry)

    # Hand usage: the measured column, and the designed one where the data set has it.
    numbers = {}
    for column in ("hand_usage", "designed_hands"):
        if column in data.examples:
            numbers[column] = hand_separation(data.picture[last], data.full[last], data.examples[column])
    measured = numbers.get("hand_usage") or numbers.get("designed_hands")
    claim("hand_usage", hand_verdict(measured), numbers if measured else {"why": "no hand_usage column"})

    # Close paths.
    def close_claim(key: str, pairs) -> None:
        lacking = missing([n for pair in pairs for n in pair])
        if lacking:
            claim(key, NOT_APPLICABLE, {}, missing_names=lacking)
            return
        found = {f"{a}/{b}": {space: close_pair(distances[space], index[a], index[b]) for space in distances}
                 for a, b in pairs}
        claim(key, close_verdict([v["picture"]["percentile"] for v in found.values()]), found)

    close_claim("close_paths", CLOSE_PAIRS)
    known = [tuple(pair) for pair in data.notes.get("prefix_pairs") or [] if len(pair) == 2]

    # Prefixes.
    def prefix_claim(key: str, pairs) -> None:
        lacking = missing([n for pair in pairs for n in pair])
        if lacking:
            claim(key, NOT_APPLICABLE, {}, missing_names=lacking)
            return
        found, verdicts = {}, []
        for short, long in pairs:
            found[f"{short}/{long}"] = {space: _prefix(data, points[space], paths[space], means[space],
                                                       index[short], index[long]) for space in paths}
            verdicts.append(prefix_verdict(found[f"{short}/{long}"]["picture"]))
        claim(key, _combined(verdicts), found)

    prefix_claim("prefix", PREFIX_PAIRS)
    if known:
        close_claim("close_paths_known", known)
        prefix_claim("prefix_known", known)

    # Perpendicular directions.
    one, others = PERPENDICULAR
    lacking = missing([one, *others])
    if lacking:
        claim("perpendicular", NOT_APPLICABLE, {}, missing_names=lacking)
    else:
        angles = {space: {other: angle_degrees(direction(means[space][index[one]]), direction(means[space][index[other]]))
                          for other in others} for space in means}
        claim("perpendicular", perpendicular_verdict(list(angles["picture"].values())), angles)

    # Stability across autoencoder seeds.
    claim_numbers = _stability_numbers(data)
    lacking = missing([n for pair in UNSTABLE_PAIRS for n in pair])
    if lacking:
        claim("unstable", NOT_APPLICABLE, claim_numbers, missing_names=lacking)
    else:
        verdicts = []
        for a, b in UNSTABLE_PAIRS:
            ranks = seed_ranks(data.seed_codes, labels, n_classes, index[a], index[b])
            pair = {"ranks_by_seed": ranks}
            if data.pair_stability is not None:
                i, j = sorted((index[a], index[b]))
                row = data.pair_stability[(data.pair_stability["class_a"] == i) & (data.pair_stability["class_b"] == j)]
                if len(row):
                    pair.update({c: float(row[c].iloc[0]) for c in ("mutual_nearest", "either_nearest")})
            claim_numbers[f"{a}/{b}"] = pair
            verdicts.append(unstable_verdict(ranks))
        claim("unstable", _combined(verdicts), claim_numbers)

    # Mistakes.
    if "prediction" not in data.examples:
        claim("mistakes", NOT_APPLICABLE, {"why": "examples.parquet has no predictions"})
    else:
        ranks = error_ranks(data.picture[last], data.full[last], labels,
                            data.examples["prediction"].to_numpy(np.int64), n_classes)
        splits = data.examples["split"].to_numpy()[ranks["index"].to_numpy()]
        by_split = {split: rank_summary(ranks[splits == split]) for split in ("train", "validation", "test")}
        basis = "test" if by_split["test"]["errors"] >= 5 else "all"
        summary = rank_summary(ranks if basis == "all" else ranks[splits == "test"])
        numbers = {"by_split": by_split, "verdict_on": basis, "chance_median_rank": n_classes / 2,
                   "test_errors": [{"example_id": int(data.examples["example_id"].iloc[i]), "label": classes[t],
                                    "prediction": classes[p], "rank_picture": int(rp), "rank_full": int(rf)}
                                   for i, t, p, rp, rf in ranks[splits == "test"].itertuples(index=False)]}
        claim("mistakes", mistakes_verdict(summary.get("median_rank_picture"), n_classes), numbers)

    return {"picture": data.picture_id, "layer": data.layer, "state": data.state, "classes": n_classes,
            "examples": int(len(data.examples)), "path_points": PATH_POINTS, "k": K,
            "seeds": len(data.seed_codes), "claims": claims}


def _combined(verdicts: list[str]) -> str:
    """One verdict for a claim measured on several pairs."""
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == FAILS for v in verdicts):
        return FAILS
    return UNCLEAR


def _prefix(data: RunData, points: np.ndarray, paths: np.ndarray, means: np.ndarray, short: int,
            long: int) -> dict:
    """``prefix_overlap`` of classes ``short`` and ``long`` on per-step ``points`` (their whole
    resampled ``paths`` and class ``means`` give the radius and the short sign's path)."""
    labels = data.labels
    lengths = data.lengths
    # The short sign's steps as a share of the long sign's (steps between frames: length - 1).
    fraction = float(np.clip((np.median(lengths[labels == short]) - 1) / max(np.median(lengths[labels == long]) - 1, 1),
                             0.05, 0.95))
    radius = within_class_spread(paths, labels, means)
    first = resample_paths(points, data.row_start, lengths, start=0.0, stop=fraction)
    rest = resample_paths(points, data.row_start, lengths, start=fraction, stop=1.0)
    first_means = class_mean_paths(first, labels, len(means))
    rest_means = class_mean_paths(rest, labels, len(means))
    others = [c for c in np.unique(labels) if c not in (short, long)]
    baseline = float(np.median([aligned_overlap(means[short], first_means[c], radius) for c in others])) if others else 0.0
    result = prefix_overlap(means[short], first_means[long], rest_means[long], radius, baseline)
    result["first_fraction"] = fraction
    return result


def _stability_numbers(data: RunData) -> dict:
    numbers: dict = {"seeds": len(data.seed_codes)}
    if data.class_stability is not None and len(data.seed_codes) > 1:
        stability = data.class_stability
        present = stability["nearest"] >= 0
        numbers["classes_nearest_same_in_all_seeds"] = float((stability.loc[present, "nearest_stability"] == 1).mean())
        numbers["nearest_stability_mean"] = float(stability.loc[present, "nearest_stability"].mean())
    if data.pair_stability is not None:
        pairs = data.pair_stability
        numbers["pairs_mutual_nearest_in_some_but_not_all_seeds"] = int(
            ((pairs["mutual_nearest"] > 0) & (pairs["mutual_nearest"] < 1)).sum())
        numbers["pairs_mutual_nearest_in_all_seeds"] = int((pairs["mutual_nearest"] == 1).sum())
    return numbers


# ---------------------------------------------------------------------------------------------
# The report: report/study.md, report/study.json and small figures, recorded in the manifest

REPORT_DIR = "report"
MARKDOWN_ERRORS = 25
REPORT_MD = "report/study.md"
REPORT_JSON = "report/study.json"
FIGURES = {"hand_usage": "report/hand_usage.png", "paths": "report/paths.png", "mistakes": "report/mistakes.png"}
CLAIM_TITLES = {"hand_usage": "Hand usage", "close_paths": "Close paths (drink/danger, who/soon)",
                "close_paths_known": "Close paths (the data set's prefix pairs)",
                "prefix": "think is the start of crazy", "prefix_known": "Prefixes (the data set's prefix pairs)",
                "perpendicular": "you is perpendicular to think, crazy, sorry",
                "unstable": "Closeness that changes with the autoencoder's seed (God/science)",
                "mistakes": "Mistakes between signs near in the picture"}


def report_hash(run: Run) -> str:
    """What the report depends on: the input hashes of the run's stages (not its own)."""
    from pipeline.runformat import stable_hash
    return stable_hash("report", {name: record.get("input_hash", "") for name, record in run.manifest.stages.items()
                                  if name != "report"})


def report_is_current(run: Run) -> bool:
    """Whether the run's recorded report was made from its present stages (a run rebuilt since
    keeps the old report until ``python -m pipeline report`` runs again)."""
    record = run.manifest.stages.get("report") or {}
    return bool(record) and record.get("input_hash") == report_hash(run)


def markdown(run_id: str, result: dict, metrics: dict, figures: dict[str, str], why_no_figures: str = "") -> str:
    """The report as Markdown: one section per claim, the statement, our numbers, the verdict and its rule."""
    lines = [f"# The Auslan study's claims, measured on run `{run_id}`", ""]
    test = (metrics.get("test") or {}).get("accuracy")
    lines += [f"Picture: `{result['picture']}` (2-D) of layer {result['layer']}'s `{result['state']}`; full space: "
              f"that layer's states ({result['classes']} classes, {result['examples']} examples"
              + (f", test accuracy {test:.4f}" if test is not None else "") + f"). Paths are resampled to "
              f"{result['path_points']} points along each sign; neighbours: k = {result['k']}; autoencoder seeds: "
              f"{result['seeds']}.", ""]
    lines += ["| claim | verdict |", "| --- | --- |"]
    lines += [f"| {CLAIM_TITLES.get(c['claim'], c['claim'])} | **{c['verdict']}** |" for c in result["claims"]]
    lines.append("")
    for c in result["claims"]:
        lines += [f"## {CLAIM_TITLES.get(c['claim'], c['claim'])}", "", f"*The study:* {c['statement']}", "",
                  f"*Verdict:* **{c['verdict']}**" + (f" (missing classes: {', '.join(c['missing_classes'])})"
                                                      if c.get("missing_classes") else ""), "",
                  f"*Rule:* {c['rule']}", ""]
        lines += _number_lines(c["numbers"])
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{name}]({Path(path).name})" for name, path in figures.items()] + [""]
    elif why_no_figures:
        lines += [f"No figures: {why_no_figures}.", ""]
    return "\n".join(lines)


def _number_lines(numbers: dict, depth: int = 0) -> list[str]:
    lines = []
    for key, value in numbers.items():
        if key == "test_errors":
            shown = ", ".join(f"{e['label']}→{e['prediction']} (rank {e['rank_picture']} / {e['rank_full']} full)"
                              for e in value[:MARKDOWN_ERRORS])
            more = f", and {len(value) - MARKDOWN_ERRORS} more (study.json lists all)" if len(value) > MARKDOWN_ERRORS else ""
            lines.append(f"{'  ' * depth}- test errors (true→predicted, rank in the picture / in full): "
                         + (shown + more or "none"))
        elif isinstance(value, dict):
            lines.append(f"{'  ' * depth}- {key}:")
            lines += _number_lines(value, depth + 1)
        elif value is None:
            lines.append(f"{'  ' * depth}- {key}: n/a")
        else:
            lines.append(f"{'  ' * depth}- {key}: {_format(value)}")
    return lines


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if np.isfinite(value) else "nan"
    if isinstance(value, list):
        return ", ".join(_format(v) for v in value)
    return str(value)


def draw_figures(data: RunData, result: dict, folder: Path) -> dict[str, Path]:
    """Small PNGs with matplotlib (ImportError when it is not installed): the last-step picture by
    hand usage, the mean paths of the claims' classes, the error ranks."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    last = data.picture[data.last_rows]
    drawn: dict[str, Path] = {}
    column = next((c for c in ("hand_usage", "designed_hands") if c in data.examples), None)
    if column:
        fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
        usage = data.examples[column].astype("string").fillna("unknown")
        for value, colour in zip(sorted(usage.unique()), ("tab:blue", "tab:orange", "tab:grey")):
            mine = (usage == value).to_numpy()
            ax.scatter(last[mine, 0], last[mine, 1], s=6, alpha=0.6, color=colour, label=value)
        ax.set_title(f"{data.picture_id} last step by {column}", fontsize=9)
        ax.legend(fontsize=7, markerscale=2)
        drawn["hand_usage"] = _save(fig, folder / Path(FIGURES["hand_usage"]).name, plt)
    names = _path_classes(result, data.classes)
    if names:
        means = class_mean_paths(resample_paths(data.picture, data.row_start, data.lengths), data.labels,
                                 len(data.classes))
        fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
        ax.scatter(last[:, 0], last[:, 1], s=3, color="0.85")
        for name in names:
            path = means[data.classes.index(name)]
            (line,) = ax.plot(path[:, 0], path[:, 1], lw=1.5, label=name)
            ax.plot(path[-1, 0], path[-1, 1], "o", ms=4, color=line.get_color())
        ax.set_title(f"class mean paths ({data.picture_id}); dot = last step", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        drawn["paths"] = _save(fig, folder / Path(FIGURES["paths"]).name, plt)
    mistakes = next((c for c in result["claims"] if c["claim"] == "mistakes" and c["verdict"] != NOT_APPLICABLE), None)
    if mistakes is not None and "prediction" in data.examples:
        ranks = error_ranks(last, data.full[data.last_rows], data.labels,
                            data.examples["prediction"].to_numpy(np.int64), len(data.classes))
        if len(ranks):
            fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
            top = int(max(ranks["rank_picture"].max(), ranks["rank_full"].max()))
            bins = np.arange(1, min(top, 30) + 2) - 0.5
            ax.hist([np.minimum(ranks["rank_picture"], 30), np.minimum(ranks["rank_full"], 30)], bins=bins,
                    label=[data.picture_id, "full space"])
            ax.set_xlabel("rank of the predicted class among the true class's nearest (30: 30+)", fontsize=8)
            ax.set_ylabel("errors (all splits)", fontsize=8)
            ax.legend(fontsize=7)
            drawn["mistakes"] = _save(fig, folder / Path(FIGURES["mistakes"]).name, plt)
    return drawn


def _path_classes(result: dict, classes: list[str]) -> list[str]:
    """The classes the path claims name and the data set has, in the claims' order."""
    wanted = [n for pair in CLOSE_PAIRS for n in pair] + [n for pair in PREFIX_PAIRS for n in pair]
    wanted += [PERPENDICULAR[0], *PERPENDICULAR[1]]
    for c in result["claims"]:
        if c["claim"].endswith("_known") and c["verdict"] != NOT_APPLICABLE:
            wanted += [n for key in c["numbers"] for n in key.split("/")]
    seen: list[str] = []
    for name in wanted:
        if name in classes and name not in seen:
            seen.append(name)
    return seen[:10]


def _save(fig, path: Path, plt) -> Path:
    from pipeline.runformat import atomic_path
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_report(runs_dir, run_id: str, figures: bool = True) -> dict:
    """Measure the run's claims, write report/ into it and record the ``report`` stage (with a
    ``report`` summary: verdict per claim) in its manifest. Returns the result."""
    import time

    from pipeline.runformat import RunWriter, atomic_path, write_json
    started = time.perf_counter()
    run = Run.open(runs_dir, run_id)
    data = read_run(run)
    result = study_of(data)
    input_hash = report_hash(run)
    with RunWriter(runs_dir, run_id) as writer:
        folder = writer.path / REPORT_DIR
        folder.mkdir(exist_ok=True)
        drawn, why = {}, ""
        if figures:
            try:
                drawn = draw_figures(data, result, folder)
            except ImportError:
                why = "matplotlib is not installed (pip install matplotlib)"
        relative = {name: f"{REPORT_DIR}/{path.name}" for name, path in drawn.items()}
        result["figures"] = relative
        result["made_from"] = {name: record.get("input_hash", "") for name, record in run.manifest.stages.items()
                               if name != "report"}
        write_json(_plain(result), writer.path / REPORT_JSON)
        with atomic_path(writer.path / REPORT_MD) as tmp:
            tmp.write_text(markdown(run.run_id, result, run.manifest.metrics, relative, why), encoding="utf-8")
        summary = {"file": REPORT_MD, "numbers": REPORT_JSON,
                   "verdicts": {c["claim"]: c["verdict"] for c in result["claims"]}, "input_hash": input_hash}
        writer.finish_stage("report", input_hash, time.perf_counter() - started,
                            [REPORT_MD, REPORT_JSON, *relative.values()], report=summary)
    return result


def _plain(value):
    """JSON-ready: numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

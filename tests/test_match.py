"""Tests of the select & match engine (pipeline/match.py) against a plain brute force."""
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.analysis import match as engine
from pipeline.analysis.match import Match, count_rows, match, merge_matches, on_rows, rank_key, select_cells

# ---------------------------------------------------------------------------------------------
# Brute force, written plainly from the definitions in the module docstring.

def plain_sequence_of(T, boundaries):
    seq = [0] * T
    starts = set(boundaries or []) | {0}
    current = -1
    for t in range(T):
        if t in starts:
            current += 1
        seq[t] = current
    return seq


def plain_on(states, t, i, threshold):
    return bool(states[t][i] >= threshold)  # NaN >= x is False: off


def plain_select(states, a, b, threshold, off_before, off_after, seq):
    T, D = len(states), len(states[0])
    chosen = []
    for i in range(D):
        if not all(plain_on(states, t, i, threshold) for t in range(a, b + 1)):
            continue
        if off_before and a - 1 >= 0 and seq[a - 1] == seq[a] and plain_on(states, a - 1, i, threshold):
            continue
        if off_after and b + 1 < T and seq[b + 1] == seq[b] and plain_on(states, b + 1, i, threshold):
            continue
        chosen.append(i)
    return chosen


def plain_match(states, cells, threshold, off_before=False, off_after=False, top_k=50,
                boundaries=None, min_length=2, max_length=None):
    states = np.asarray(states).tolist()
    T = len(states)
    seq = plain_sequence_of(T, boundaries)
    cells = sorted(set(cells))

    counts = [sum(plain_on(states, t, i, threshold) for i in cells) for t in range(T)]

    def count(t):  # selected cells on at t
        return counts[t]

    ranges = set()
    for k in range(1, len(cells) + 1):
        for a in range(T):
            for b in range(a, T):
                if seq[a] != seq[b]:
                    break
                if not all(count(t) >= k for t in range(a, b + 1)):
                    continue
                left_ok = a == 0 or seq[a - 1] != seq[a] or count(a - 1) < k
                right_ok = b == T - 1 or seq[b + 1] != seq[b] or count(b + 1) < k
                if left_ok and right_ok:
                    ranges.add((a, b))
    found = []
    for a, b in ranges:
        length = b - a + 1
        if length < min_length or (max_length is not None and length > max_length):
            continue
        on = plain_select(states, a, b, threshold, off_before, off_after, seq)
        overlap = len([i for i in on if i in cells])
        extra = len(on) - overlap
        if overlap > 0:
            found.append(Match(a, b, overlap, extra, length))
    found.sort(key=lambda m: (-m.overlap, m.extra, -m.length, m.start))
    return found[:top_k]


def random_states(rng, T, D, quantised):
    if quantised:  # few distinct values: many ties, values equal to the threshold, NaNs
        values = np.array([-1.0, 0.0, 0.3, 0.5, 1.0, np.nan], dtype=np.float32)
        p = np.array([0.25, 0.15, 0.15, 0.15, 0.28, 0.02])
        return values[rng.choice(len(values), size=(T, D), p=p)]
    walk = np.cumsum(rng.normal(0, 0.6, size=(T, D)), axis=0) * 0.5
    return np.tanh(walk).astype(np.float32)


def random_boundaries(rng, T):
    n = int(rng.integers(0, 4))
    return sorted(set(rng.integers(1, T, size=n).tolist())) or None


# ---------------------------------------------------------------------------------------------
# Match = brute force

@pytest.mark.parametrize("seed", range(60))
def test_mat001_match_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    T, D = int(rng.integers(2, 40)), int(rng.integers(1, 12))
    states = random_states(rng, T, D, quantised=seed % 2 == 0)
    cells = rng.choice(D, size=int(rng.integers(1, D + 1)), replace=False).tolist()
    kwargs = dict(
        threshold=float(rng.choice([0.0, 0.3, 0.5])),
        off_before=bool(rng.integers(2)), off_after=bool(rng.integers(2)),
        top_k=int(rng.choice([1, 3, 10, 50])),
        boundaries=random_boundaries(rng, T),
        min_length=int(rng.choice([1, 2, 3])),
    )
    kwargs["max_length"] = None if seed % 3 else kwargs["min_length"] + int(rng.integers(0, 4))
    expected = plain_match(states, cells, **kwargs)
    assert match(states, cells, **kwargs) == expected
    # Column-major arrays take another code path, and so do all cells' packed rows: same answer.
    assert match(np.asfortranarray(states), cells, **kwargs) == expected
    bits = on_rows(np.asfortranarray(states), kwargs["threshold"])
    assert match(np.asfortranarray(states), cells, on_rows=bits, **kwargs) == expected


@pytest.mark.parametrize("seed", range(20))
def test_mat021_threaded_first_and_second_pass_equal_brute_force(seed, monkeypatch):
    """Tiny blocks and parts, 3 threads: the column-major passes split rows and cells across the
    match threads (at real sizes only past 2^18 rows) and still give the brute force's answer."""
    monkeypatch.setattr(engine, "_WORKERS", 3)
    monkeypatch.setattr(engine, "_PARALLEL_BLOCK_ROWS", 16)
    monkeypatch.setattr(engine, "_PART_ROWS", 4)
    monkeypatch.setattr(engine, "_PART_VALUES", 8)
    rng = np.random.default_rng(700 + seed)
    T, D = int(rng.integers(20, 120)), int(rng.integers(9, 40))
    states = np.asfortranarray(random_states(rng, T, D, quantised=seed % 2 == 0))
    cells = rng.choice(D, size=int(rng.integers(1, 12)), replace=False).tolist()
    kwargs = dict(threshold=0.3, off_before=bool(seed % 2), off_after=bool(seed % 3 == 0),
                  top_k=int(rng.choice([1, 5, 50])), boundaries=random_boundaries(rng, T),
                  min_length=int(rng.choice([1, 2])))
    expected = plain_match(states, cells, **kwargs)
    assert match(states, cells, **kwargs) == expected
    cuts = sorted(set([0, T] + rng.integers(0, T, size=3).tolist()))
    parts = [match(states, cells, row_range=p, **kwargs) for p in zip(cuts[:-1], cuts[1:])]
    assert merge_matches(parts, kwargs["top_k"]) == expected
    bits = on_rows(states, 0.3)
    assert match(states, cells, on_rows=bits, **kwargs) == expected
    parts = [match(states, cells, row_range=p, on_rows=bits, **kwargs) for p in zip(cuts[:-1], cuts[1:])]
    assert merge_matches(parts, kwargs["top_k"]) == expected
    row_major = on_rows(np.ascontiguousarray(states), 0.3)
    assert np.array_equal(bits.words, row_major.words) and np.array_equal(bits.planes, row_major.planes)
    src = engine._ArraySource(states)
    rows = np.flatnonzero(rng.random(T) < 0.5)
    assert np.array_equal(src.rows_on(rows, 0.3), engine._pack(states[rows] >= 0.3))


def lstmvis_reference(states, cells, threshold, constrain_left, constrain_right):
    """LSTMVis' query_similar_activations, re-done step by step without its caps.

    (No 500,000-step prefix, no candidate limit.) Its candidates: for each k, clip the count of
    on selected cells to k, run-length encode it, keep runs of value k with length >= 2. Its
    score: cells on throughout (mask 1..1, -1 at the constrained neighbours), intersection and
    union with the selection. Its sort key: (-intersection, union, -length).
    """
    on = states >= threshold
    counts = on[:, cells].sum(axis=1)
    candidates = set()
    for k in range(len(cells), 0, -1):
        clipped = np.minimum(counts, k)
        t = 0
        while t < len(clipped):
            u = t
            while u + 1 < len(clipped) and clipped[u + 1] == clipped[t]:
                u += 1
            if clipped[t] == k and u - t + 1 >= 2:
                candidates.add((t, u - t + 1))
            t = u + 1
    ranked = []
    for pos, length in candidates:
        window = np.where(on[pos - 1:pos + length + 1], 1, -1)
        mask = np.ones(length + 2)
        mask[0] = -1 if constrain_left else 0
        mask[-1] = -1 if constrain_right else 0
        needed = length + constrain_left + constrain_right
        active = set(np.flatnonzero(mask @ window == needed).tolist())
        inter, union = len(active & set(cells)), len(active | set(cells))
        if inter:  # we drop ranges sharing no selected cell
            ranked.append((-inter, union, -length, pos))
    return sorted(ranked)


@pytest.mark.parametrize("seed", range(20))
def test_mat002_match_agrees_with_lstmvis_algorithm(seed):
    rng = np.random.default_rng(400 + seed)
    T, D = int(rng.integers(5, 60)), int(rng.integers(1, 10))
    states = random_states(rng, T, D, quantised=seed % 2 == 0)
    states[0] = states[-1] = -1  # LSTMVis reads index -1 at the stream edges: keep clear of them
    cells = sorted(rng.choice(D, size=int(rng.integers(1, D + 1)), replace=False).tolist())
    left, right = bool(seed % 2), bool(seed % 4 >= 2)
    expected = lstmvis_reference(states, cells, 0.3, left, right)
    got = match(states, cells, 0.3, off_before=left, off_after=right, top_k=10_000)
    assert [(-m.overlap, len(cells) + m.extra, -m.length, m.start) for m in got] == expected


@pytest.mark.parametrize("seed", range(10))
def test_mat003_match_equals_brute_force_with_many_cells(seed):
    # More than 64 cells selected and in all: rows of on-bits take several machine words.
    rng = np.random.default_rng(500 + seed)
    # The last seeds select 256 or more (on counts wider than a byte).
    T, D = int(rng.integers(8, 25)), int(rng.integers(65, 200) if seed < 8 else rng.integers(260, 400))
    states = random_states(rng, T, D, quantised=True)
    cells = rng.choice(D, size=int(rng.integers(65 if seed < 8 else 256, D + 1)), replace=False).tolist()
    kwargs = dict(threshold=0.3, off_before=bool(seed % 2), off_after=seed % 3 == 0, top_k=20,
                  boundaries=random_boundaries(rng, T), min_length=1)
    expected = plain_match(states, cells, **kwargs)
    assert match(states, cells, **kwargs) == expected
    assert match(np.asfortranarray(states), cells, **kwargs) == expected
    assert match(states, cells, on_rows=on_rows(states, 0.3), **kwargs) == expected
    s = int(rng.integers(0, T - 1))
    assert (select_cells(states, s, s + 1, 0.3).tolist()
            == plain_select(states.tolist(), s, s + 1, 0.3, False, False, [0] * T))


def test_mat004_ranking_order_on_a_hand_made_example():
    # cells 0,1 selected; rows 1-2 have both on (+ cell 2 extra), rows 5-8 both on alone,
    # rows 11-12 only cell 0.
    on = np.zeros((14, 3), dtype=np.float32)
    on[1:3, :] = 1
    on[5:9, 0:2] = 1
    on[11:13, 0] = 1
    result = match(on, [0, 1], threshold=0.5)
    assert result == [Match(5, 8, 2, 0, 4), Match(1, 2, 2, 1, 2), Match(11, 12, 1, 0, 2)]
    assert [m.score for m in result] == [(2, 0, 4), (2, -1, 2), (1, 0, 2)]
    assert sorted(result, key=rank_key) == result


def test_mat005_ties_broken_by_length_then_start():
    on = np.zeros((20, 2), dtype=np.float32)
    on[2:4, 0] = 1  # length 2
    on[6:9, 0] = 1  # length 3
    on[12:14, 0] = 1  # length 2, later
    assert match(on, [0], 0.5) == [Match(6, 8, 1, 0, 3), Match(2, 3, 1, 0, 2),
                                   Match(12, 13, 1, 0, 2)]


def test_mat006_off_constraints_apply_to_candidates():
    on = np.zeros((10, 2), dtype=np.float32)
    on[2:6, 0] = 1  # cell 0 on 2..5
    on[3:6, 1] = 1  # cell 1 on 3..5
    # Candidates: [2,5] (level 1) and [3,5] (level 2).
    assert match(on, [0, 1], 0.5) == [Match(3, 5, 2, 0, 3), Match(2, 5, 1, 0, 4)]
    # With off-before, cell 0 is on at 2, so it does not count for [3,5].
    assert match(on, [0, 1], 0.5, off_before=True) == [Match(2, 5, 1, 0, 4), Match(3, 5, 1, 0, 3)]


# ---------------------------------------------------------------------------------------------
# Select

@pytest.mark.parametrize("seed", range(30))
def test_mat007_select_equals_plain_definition(seed):
    rng = np.random.default_rng(100 + seed)
    T, D = int(rng.integers(1, 30)), int(rng.integers(1, 20))
    states = random_states(rng, T, D, quantised=seed % 2 == 0)
    boundaries = random_boundaries(rng, T) if T > 1 else None
    seq = plain_sequence_of(T, boundaries)
    s = int(rng.integers(0, T))
    e = s + int(rng.integers(0, 4))
    while e >= T or seq[e] != seq[s]:
        e -= 1
    for ob in (False, True):
        for oa in (False, True):
            got = select_cells(states, s, e, 0.3, off_before=ob, off_after=oa, boundaries=boundaries)
            assert got.tolist() == plain_select(states.tolist(), s, e, 0.3, ob, oa, seq)


def test_mat008_select_off_constraints_and_sequence_edges():
    states = np.array([[1, 1, 0],
                       [1, 1, 1],
                       [1, 0, 1],
                       [0, 1, 1]], dtype=np.float32)
    assert select_cells(states, 1, 1, 0.5).tolist() == [0, 1, 2]
    assert select_cells(states, 1, 1, 0.5, off_before=True).tolist() == [2]
    assert select_cells(states, 1, 1, 0.5, off_after=True).tolist() == [1]
    # Row 0 starts the stream: the (zero) state before it counts as off.
    assert select_cells(states, 0, 1, 0.5, off_before=True).tolist() == [0, 1]
    # With a sequence starting at 1, row 0 is not "before" row 1.
    assert select_cells(states, 1, 1, 0.5, off_before=True, boundaries=[1]).tolist() == [0, 1, 2]
    # The value exactly at the threshold is on.
    assert select_cells(np.full((2, 1), 0.3, np.float32), 0, 1, 0.3).tolist() == [0]


# ---------------------------------------------------------------------------------------------
# The whole stream is searched

def test_mat009_planted_match_at_the_end_of_a_long_stream_is_found_first():
    T, D = 1_200_000, 8  # more than LSTMVis' 500,000-step "fast" prefix
    rng = np.random.default_rng(7)
    states = rng.uniform(-1, 1, size=(T, D)).astype(np.float32)
    # One of the selected cells 0..3 is always off, so no range has all four on ...
    states[np.arange(T), np.arange(T) % 4] = -1
    # ... except the planted range near the very end: exactly the selected cells on.
    s, e = T - 50, T - 41
    states[s - 1:e + 2, :] = -1
    states[s:e + 1, :4] = 1
    cells = select_cells(states, s, e, 0.3, off_before=True, off_after=True)
    assert cells.tolist() == [0, 1, 2, 3]
    best = match(states, cells, 0.3, off_before=True, off_after=True, top_k=5)
    assert best[0] == Match(s, e, 4, 0, 10)
    assert all(m.overlap < 4 for m in best[1:])


# ---------------------------------------------------------------------------------------------
# Parquet source, partitions

def write_parquet(states, path, row_group_size, files=1, example_ids=None):
    T, D = states.shape
    path.mkdir(parents=True, exist_ok=True)
    cuts = np.linspace(0, T, files + 1).astype(int)
    for f in range(files):
        r0, r1 = cuts[f], cuts[f + 1]
        columns = {"example_id": pa.array(example_ids[r0:r1] if example_ids is not None
                                          else np.zeros(r1 - r0, np.int64)),
                   "t": pa.array(np.arange(r0, r1))}
        columns.update({f"u{i}": pa.array(states[r0:r1, i]) for i in range(D)})
        pq.write_table(pa.table(columns), path / f"part-{f:03d}.parquet",
                       row_group_size=row_group_size)
    return path


@pytest.mark.parametrize("seed", range(12))
def test_mat010_parquet_source_equals_in_memory(seed, tmp_path):
    rng = np.random.default_rng(200 + seed)
    T, D = int(rng.integers(5, 120)), int(rng.integers(1, 20))
    states = random_states(rng, T, D, quantised=seed % 2 == 0)
    starts = sorted(set(rng.integers(1, T, size=3).tolist()))
    example_ids = np.searchsorted(starts, np.arange(T), side="right")
    path = write_parquet(states, tmp_path / "h", row_group_size=int(rng.integers(1, 30)),
                         files=int(rng.integers(1, 4)), example_ids=example_ids)
    cells = rng.choice(D, size=int(rng.integers(1, D + 1)), replace=False)
    kwargs = dict(threshold=0.3, off_before=bool(seed % 2), off_after=bool(seed % 3 == 0),
                  top_k=7, min_length=1)
    expected = match(states, cells, boundaries=starts, **kwargs)
    assert match(path, cells, boundaries=starts, **kwargs) == expected
    assert match(path, cells, boundaries="example_id", **kwargs) == expected
    assert match(ds.dataset(path), cells, boundaries="example_id", **kwargs) == expected
    assert count_rows(path) == T
    s = int(rng.integers(0, T))
    assert (select_cells(path, s, s, 0.3, True, True, boundaries="example_id").tolist()
            == select_cells(states, s, s, 0.3, True, True, boundaries=starts).tolist())


def test_mat011_parquet_reads_only_selected_columns_then_candidate_row_groups(tmp_path):
    T, D = 4000, 40
    states = np.full((T, D), -1.0, dtype=np.float32)
    states[1100:1105, :3] = 1  # the only place where the selected cells are on
    path = write_parquet(states, tmp_path / "h", row_group_size=500)
    stats = {}
    result = match(path, [0, 1, 2], 0.3, stats=stats)
    assert result == [Match(1100, 1104, 3, 0, 5)]
    sizes = pq.ParquetFile(next(path.iterdir())).metadata
    selected = sum(sizes.row_group(g).column(j).total_compressed_size
                   for g in range(sizes.num_row_groups) for j in range(sizes.num_columns)
                   if sizes.row_group(g).column(j).path_in_schema in ("u0", "u1", "u2"))
    one_group_all_cells = sum(sizes.row_group(2).column(j).total_compressed_size
                              for j in range(sizes.num_columns)
                              if sizes.row_group(2).column(j).path_in_schema.startswith("u"))
    assert stats["bytes_read"] == selected + one_group_all_cells
    assert stats["rows_read_all_cells"] == 7  # rows 1099..1105, all in row group 2


@pytest.mark.parametrize("seed", range(15))
def test_mat012_partitioned_and_merged_equals_single_run(seed, tmp_path):
    rng = np.random.default_rng(300 + seed)
    T, D = int(rng.integers(10, 200)), int(rng.integers(1, 10))
    states = random_states(rng, T, D, quantised=seed % 2 == 0)
    if seed % 4 == 0:  # long on-runs that cross many partitions
        states[5:T - 3, 0] = 1.0
    cells = rng.choice(D, size=int(rng.integers(1, D + 1)), replace=False)
    boundaries = random_boundaries(rng, T)
    kwargs = dict(threshold=0.3, off_before=bool(seed % 2), off_after=bool(seed % 3 == 0),
                  top_k=int(rng.choice([1, 5, 50])), boundaries=boundaries,
                  min_length=int(rng.choice([1, 2])))
    single = match(states, cells, **kwargs)
    cuts = sorted(set([0, T] + rng.integers(0, T, size=int(rng.integers(1, 8))).tolist()))
    parts = list(zip(cuts[:-1], cuts[1:])) + [(T // 2, T // 2)]  # includes an empty partition
    merged = merge_matches([match(states, cells, row_range=p, **kwargs) for p in parts],
                           kwargs["top_k"])
    assert merged == single
    path = write_parquet(states, tmp_path / "h", row_group_size=int(rng.integers(1, 25)))
    merged = merge_matches([match(path, cells, row_range=p, **kwargs) for p in parts],
                           kwargs["top_k"])
    assert merged == single


def test_mat013_partition_carries_a_run_that_crosses_its_end():
    on = np.zeros((30, 2), dtype=np.float32)
    on[8:25, 0] = 1
    full = match(on, [0], 0.5)
    assert full == [Match(8, 24, 1, 0, 17)]
    assert match(on, [0], 0.5, row_range=(0, 10)) == full  # starts inside, ends far outside
    assert match(on, [0], 0.5, row_range=(10, 30)) == []  # owned by the partition it starts in


# ---------------------------------------------------------------------------------------------
# The fast paths (bytes of on-bits, all cells' packed rows) = the definitions, on edge cases

VALUES = np.array([-1.0, 0.0, 0.25, 0.3, 0.5, 1.0, np.nan], dtype=np.float32)  # 0.3: the threshold


@st.composite
def edge_states(draw):
    """Small (T, D) states from few values (ties, values equal to the threshold, NaN), with
    whole rows, columns or the start/end of the stream forced all on or all off."""
    T, D = draw(st.integers(1, 24)), draw(st.integers(1, 20))
    codes = draw(st.lists(st.integers(0, len(VALUES) - 1), min_size=T * D, max_size=T * D))
    states = VALUES[np.array(codes)].reshape(T, D)
    for force in draw(st.lists(st.sampled_from(["all on", "all off", "edges on", "column on"]), max_size=2)):
        if force == "all on":
            states[:] = 1
        elif force == "all off":
            states[:] = -1
        elif force == "edges on":  # a match at the very start and one at the very end
            states[:2], states[-2:] = 1, 1
        else:
            states[:, draw(st.integers(0, D - 1))] = 0.3
    return states


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=edge_states(), data=st.data())
@example(states=np.ones((6, 3), np.float32), data=None)  # all on: one range, the whole stream
@example(states=np.full((6, 3), np.nan, np.float32), data=None)  # NaN is off: nothing matches
def test_mat018_fast_paths_equal_brute_force_on_edge_cases(states, data):
    T, D = states.shape
    if data is None:
        cells, boundaries, off_before, off_after = list(range(D)), None, False, False
    else:
        cells = data.draw(st.lists(st.integers(0, D - 1), min_size=1, max_size=D, unique=True))
        boundaries = data.draw(st.lists(st.integers(1, T - 1), max_size=3, unique=True).map(sorted)) if T > 1 else []
        off_before, off_after = data.draw(st.booleans()), data.draw(st.booleans())
    kwargs = dict(threshold=0.3, off_before=off_before, off_after=off_after, top_k=10,
                  boundaries=boundaries or None, min_length=1)
    expected = plain_match(states, cells, **kwargs)
    column_major = np.asfortranarray(states)
    assert match(states, cells, **kwargs) == expected
    assert match(column_major, cells, **kwargs) == expected
    assert match(column_major, cells, on_rows=on_rows(column_major, 0.3), **kwargs) == expected
    assert match(states, cells, on_rows=on_rows(states, 0.3), **kwargs) == expected
    # Packed at another threshold: not used, the answer stays the query's.
    assert match(column_major, cells, on_rows=on_rows(column_major, 0.5), **kwargs) == expected


@pytest.mark.parametrize("n_cells", [1, 7, 8, 9, 16, 17, 70])
def test_mat019_packed_bytes_and_rows_equal_plain_bits(n_cells):
    rng = np.random.default_rng(n_cells)
    states = random_states(rng, 37, n_cells, quantised=True)
    on = states >= 0.3  # NaN: off
    planes = engine._pack_columns(list(np.asfortranarray(states).T), 0.3, len(states))
    bits = np.unpackbits(np.ascontiguousarray(planes), axis=1, bitorder="little")[:, :n_cells]
    assert np.array_equal(bits.astype(bool), on)
    assert np.array_equal(engine._popcount(planes), on.sum(axis=1))
    packed = on_rows(np.asfortranarray(states), 0.3).words
    assert np.array_equal(packed, on_rows(states, 0.3).words)
    unpacked = np.unpackbits(packed.view(np.uint8), axis=1, bitorder="little")[:, :n_cells]
    assert np.array_equal(unpacked.astype(bool), on)
    planes = on_rows(states, 0.3).planes  # byte p of every row: cells 8p .. 8p + 7
    assert np.array_equal(np.unpackbits(planes.T, axis=1, bitorder="little")[:, :n_cells].astype(bool), on)


@pytest.mark.parametrize("seed", range(10))
def test_mat022_plane_groups_hold_each_selected_cell_once_in_bytes_of_disjoint_bits(seed):
    """The first pass over OnRows planes ORs masked planes into one byte where their bits differ:
    every selected cell lands in exactly one group, and no two cells of a group share a bit."""
    rng = np.random.default_rng(seed)
    cells = np.unique(rng.choice(650, size=int(rng.integers(1, 80)), replace=False))
    groups = engine._plane_groups(cells)
    placed = [8 * plane + bit for members in groups for plane, mask in members
              for bit in range(8) if mask >> bit & 1]
    assert sorted(placed) == cells.tolist()
    for members in groups:
        bits = [mask for _, mask in members]
        assert sum(m.bit_count() for m in bits) == np.bitwise_or.reduce(bits).bit_count()
    assert len(groups) >= math.ceil(len(cells) / 8)


def test_mat020_on_rows_of_other_states_are_refused():
    states = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="on_rows must be the OnRows of these states"):
        match(states, [0], 0.3, on_rows=on_rows(states[:9], 0.3))
    with pytest.raises(ValueError, match="on_rows must be the OnRows"):
        match(states, [0], 0.3, on_rows=np.zeros((10, 1), np.uint8))


# ---------------------------------------------------------------------------------------------
# Bad input

def test_mat014_errors_are_clear():
    states = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="cell index 4 is out of range.*4 cells"):
        match(states, [0, 4], 0.3)
    with pytest.raises(ValueError, match="cell index -1 is out of range"):
        match(states, [-1], 0.3)
    with pytest.raises(ValueError, match="integer cell indices"):
        match(states, [0.5], 0.3)
    with pytest.raises(ValueError, match="threshold is NaN"):
        match(states, [0], float("nan"))
    with pytest.raises(ValueError, match="threshold is NaN"):
        select_cells(states, 0, 1, np.nan)
    with pytest.raises(ValueError, match="threshold must be a real number"):
        match(states, [0], "0.3")
    with pytest.raises(ValueError, match="start=5 is after end=3"):
        select_cells(states, 5, 3, 0.3)
    with pytest.raises(ValueError, match="end=10 is out of range"):
        select_cells(states, 0, 10, 0.3)
    with pytest.raises(ValueError, match="crosses a sequence boundary at row 4"):
        select_cells(states, 2, 6, 0.3, boundaries=[4])
    with pytest.raises(ValueError, match="2-D"):
        match(np.zeros(10), [0], 0.3)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        match(states, [0], 0.3, top_k=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        match(states, [0], 0.3, boundaries=[5, 2])
    with pytest.raises(ValueError, match="row_range"):
        match(states, [0], 0.3, row_range=(5, 11))
    with pytest.raises(ValueError, match="need a parquet source"):
        match(states, [0], 0.3, boundaries="example_id")
    with pytest.raises(ValueError, match="max_length"):
        match(states, [0], 0.3, min_length=3, max_length=2)


def test_mat015_parquet_without_cell_columns_is_refused(tmp_path):
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="no cell columns named u0"):
        match(tmp_path / "a.parquet", [0], 0.3)
    with pytest.raises(FileNotFoundError):
        match(tmp_path / "missing.parquet", [0], 0.3)


def test_mat016_empty_selection_matches_nothing():
    assert match(np.ones((5, 3), np.float32), [], 0.3) == []


def test_mat017_import_does_not_pull_in_tensorflow():
    code = "import sys, pipeline.analysis.match; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

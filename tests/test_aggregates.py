"""Precomputed gate aggregates (pipeline/core/aggregates.py): the small tables equal what the full
gate tables give, and the gate saturation view draws the same figure data from either."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from dashboard import data
from dashboard.figures import cells as cell_figures
from dashboard.figures import gates as gate_figures
from dashboard.views import cells, gates
from pipeline import runformat
from pipeline.analysis.lstm import LSTMWeights, NetworkWeights
from pipeline.core import aggregates
from pipeline.core.examples import examples_table, with_predictions
from pipeline.core.predictions import Predictions
from pipeline.core.steps import network_source, write_steps

N, CLASSES, CHANNELS, UNITS = 90, 4, 3, 7
AGGREGATE_FILES = (runformat.GATE_GROUPS_FILE, runformat.GATE_SATURATION_FILE, runformat.GATE_VALUES_FILE,
                   runformat.GATE_CELLS_FILE)


def build_run(runs, run_id: str, with_aggregates: bool = True, seed: int = 0, storage: dict | None = None) -> None:
    """A small classifier run through the pipeline's writers: random weights (no TensorFlow), two
    layers, varied lengths, hand usage, so that every filter of the filter bar has groups to pick."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 14, N).astype(np.int64)
    labels = np.arange(N) % CLASSES
    inputs = rng.normal(0, 1.5, (int(lengths.sum()), CHANNELS)).astype(np.float32)

    def layer(n_in):
        return LSTMWeights(kernel=rng.normal(0, 0.8, (n_in, 4 * UNITS)).astype(np.float32),
                           recurrent=rng.normal(0, 0.5, (UNITS, 4 * UNITS)).astype(np.float32),
                           bias=rng.normal(0, 1.5, 4 * UNITS).astype(np.float32))
    weights = NetworkWeights(layers=[layer(CHANNELS), layer(UNITS)],
                             head_kernel=rng.normal(0, 1, (UNITS, CLASSES)).astype(np.float32),
                             head_bias=np.zeros(CLASSES, np.float32))
    classes = [f"class{k}" for k in range(CLASSES)]
    writer = runformat.RunWriter(runs, run_id)
    predictions = Predictions(runformat.CLASSIFICATION, lengths, classes, 3, labels=labels)
    source = network_source(weights, lambda r0, r1: inputs[r0:r1], lengths)
    outputs = write_steps(writer, source, predictions, storage=storage)
    split = np.array(runformat.SPLITS)[rng.choice(3, N)]
    meta = pd.DataFrame({"hand_usage": np.where(rng.random(N) < 0.5, "one-handed", "two-handed")})
    examples = with_predictions(examples_table(lengths, split, labels=labels, classes=classes, meta=meta),
                                predictions.per_example())
    outputs.append(writer.write_table(runformat.EXAMPLES_FILE, examples))
    if with_aggregates:
        outputs += aggregates.write_gate_aggregates(writer, examples, source.layers)
        outputs += aggregates.write_example_states(writer, examples, source.layers)
    writer.finish_stage("extract", "test", 0.0, outputs, kind=runformat.CLASSIFICATION, origin="trained",
                        dataset={"name": "agg-test"}, config={}, classes=classes, n_examples=N,
                        layers=source.layers, metrics=predictions.metrics(split), status="complete")
    writer.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agg-runs")
    build_run(folder, "agg")
    build_run(folder, "agg-old", with_aggregates=False)      # the same run, as written before them
    data.configure(folder)
    data.clear_memos()
    return folder


def group_counts(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """#(v < e) and #(v > e) for every edge, straight from the values (float32 comparisons)."""
    return (np.array([(values < e).sum() for e in edges]), np.array([(values > e).sum() for e in edges]))


def test_agg001_the_tables_equal_the_aggregates_of_the_full_tables(runs):
    run = runformat.Run.open(runs, "agg")
    groups = run.read_table(runformat.GATE_GROUPS_FILE).sort_values("example_id")
    saturation = run.read_table(runformat.GATE_SATURATION_FILE)
    value_table = run.read_table(runformat.GATE_VALUES_FILE)
    examples = run.examples().sort_values("example_id")
    edges = runformat.saturation_edges()
    codes = [f"c{i}" for i in range(2 * len(edges) + 1)]
    # Examples of one group agree in every column the filter bar reads; different groups differ.
    keys = examples[["label", "split", "hand_usage", "correct"]].astype(str).agg("|".join, axis=1).to_numpy()
    group = groups["group"].to_numpy()
    assert len(set(zip(group, keys))) == len(set(group)) == len(set(keys))
    checked = 0
    for layer in (0, 1):
        for gate in runformat.SIGMOID_GATES:
            matrix = run.step_matrix(layer, gate)
            for g in np.unique(group):
                members = examples[group == g]
                rows = np.concatenate([np.arange(s, s + n) for s, n in zip(members["row_start"], members["length"])])
                t = np.concatenate([np.arange(n) for n in members["length"]])
                to_end = np.concatenate([np.arange(n)[::-1] for n in members["length"]])
                for align, offsets in (("start", t), ("end", to_end)):
                    table = saturation[(saturation["layer"] == layer) & (saturation["gate"] == gate)
                                       & (saturation["align"] == align) & (saturation["group"] == g)]
                    assert sorted(table["offset"]) == sorted(set(offsets))
                    for _, row in table.iterrows():
                        values = matrix[rows[offsets == row["offset"]]]
                        assert row["rows"] == len(values)
                        counts = row[codes].to_numpy(np.int64)
                        below = np.array([counts[:2 * k + 1].sum() for k in range(len(edges))])
                        above = np.array([counts[2 * k + 2:].sum() for k in range(len(edges))])
                        expected_below, expected_above = group_counts(values, edges)
                        np.testing.assert_array_equal(below, expected_below)
                        np.testing.assert_array_equal(above, expected_above)
                        checked += 1
                histogram = value_table[(value_table["layer"] == layer) & (value_table["gate"] == gate)
                                        & (value_table["group"] == g)]
                expected, _ = np.histogram(matrix[rows].ravel(), bins=np.linspace(0, 1, 51))
                np.testing.assert_array_equal(histogram[[f"b{i}" for i in range(50)]].to_numpy()[0], expected)
    assert checked > 200


def test_agg002_values_on_the_edges_and_nan_are_counted_as_the_view_counts_them(tmp_path):
    edges = runformat.saturation_edges()
    special = np.concatenate([edges, np.nextafter(edges, np.float32(2)), np.nextafter(edges, np.float32(-1)),
                              np.float32([np.nan, -0.5, 1.5, 0.1, 0.9])]).astype(np.float32)
    n_rows = 12
    values = np.resize(special, (n_rows, 9)).astype(np.float32)
    lengths = np.array([5, 7])
    ids = np.repeat([0, 1], lengths).astype(np.int32)
    t = np.concatenate([np.arange(5), np.arange(7)]).astype(np.int32)
    paths = {}
    for gate in runformat.SIGMOID_GATES:
        paths[(0, gate)] = tmp_path / f"{gate}.parquet"
        runformat.write_parquet(runformat.step_table(ids, t, values, runformat.unit_columns(9)), paths[(0, gate)])
    examples = pd.DataFrame({"example_id": [0, 1], "length": lengths, "label": [0, 0], "split": ["test"] * 2})
    groups, saturation, histogram, _ = aggregates.gate_aggregates(paths, examples)
    assert groups["group"].tolist() == [0, 0]
    for align in ("start", "end"):
        table = saturation[(saturation["gate"] == "forget_gate") & (saturation["align"] == align)]
        counts = table[[f"c{i}" for i in range(2 * len(edges) + 1)]].to_numpy(np.int64).sum(axis=0)
        for k, edge in enumerate(edges):
            for low in (edge, float(edge)):          # a float32 edge, and the Python float the page sends
                assert counts[:2 * k + 1].sum() == (values < low).sum()
                assert counts[2 * k + 2:].sum() == (values > low).sum()
    expected, _ = np.histogram(values.ravel(), bins=np.linspace(0, 1, 51))
    np.testing.assert_array_equal(histogram[histogram["gate"] == "input_gate"].iloc[0, 3:].to_numpy(np.int64),
                                  expected)


FILTERS = [([], list(runformat.SPLITS), None, "all"), (["class1", "class3"], list(runformat.SPLITS), None, "all"),
           ([], ["test"], None, "misclassified"), (["class0"], ["train", "validation"], ["one-handed"], "correct"),
           ([], list(runformat.SPLITS), ["two-handed"], "all")]


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("align", ["end", "start"])
def test_agg003_the_view_gives_the_same_figure_data_from_either(runs, layer, align):
    run = data.get_run("agg")
    for chosen in FILTERS:
        frame = gates._examples(run, gates._filters(*chosen))
        if frame.empty:
            continue
        for low, high in ((0.1, 0.9), (0.35, 0.6000000000000001), (0.0, 1.0), (0.05, 0.1)):
            fast = gates.summary_from_aggregates(run, layer, frame, align, low, high)
            assert fast is not None, (chosen, low, high)
            slow = gates.summary_from_tables(run, layer, frame, align, low, high)
            for gate in gate_figures.GATES:
                for key in ("low", "high", "examples"):
                    np.testing.assert_array_equal(fast["by_step"][gate][key], slow["by_step"][gate][key])
                np.testing.assert_array_equal(fast["fractions"][gate], slow["fractions"][gate])
            np.testing.assert_array_equal(fast["edges"], slow["edges"])
            assert fast["n_examples"] == slow["n_examples"]


def test_agg004_the_figures_sent_are_the_same_for_a_run_without_aggregates(runs):
    for chosen in FILTERS[:3]:
        for align in ("end", "start"):
            new = gates.summary_figures("agg", *chosen, "0", align, [0.15, 0.85])
            old = gates.summary_figures("agg-old", *chosen, "0", align, [0.15, 0.85])
            assert json.dumps(new, sort_keys=True, default=str) == json.dumps(old, sort_keys=True, default=str)
            assert "Saturated gates over time" in json.dumps(new[0], default=str)


def test_agg005_what_the_aggregates_cannot_answer_is_read_the_long_way(runs):
    old, run = data.get_run("agg-old"), data.get_run("agg")
    assert gates.gate_aggregates(old, 0) is None                       # a run written before them
    frame = gates._examples(run, gates._filters(*FILTERS[0]))
    assert gates.summary_from_aggregates(run, 0, frame, "end", 0.12, 0.9) is None    # off the grid
    assert gates.grid_index(0.12) is None and gates.grid_index(0.15000000000000002) == 3
    group = gates.gate_aggregates(run, 0)["group"]
    shared = np.flatnonzero(group == np.flatnonzero(np.bincount(group) >= 2)[0])
    half = frame[frame["example_id"] != shared[0]]                     # splits a group: no filter does
    assert gates.summary_from_aggregates(run, 0, half, "end", 0.1, 0.9) is None
    off_grid = gates.gate_summary(run, 0, gates._filters(*FILTERS[0]), "end", 0.12, 0.9)
    expected = gates.summary_from_tables(run, 0, frame, "end", 0.12, 0.9)
    np.testing.assert_array_equal(off_grid["by_step"]["input_gate"]["low"], expected["by_step"]["input_gate"]["low"])


def test_agg006_the_files_are_listed_in_the_manifest_and_verify(runs, tmp_path):
    manifest = json.loads((runs / "agg" / runformat.MANIFEST_FILE).read_text())
    assert set(AGGREGATE_FILES) <= set(manifest["stages"]["extract"]["outputs"])
    assert set(AGGREGATE_FILES) <= set(manifest["files"])            # with their sizes and digests
    assert runformat.verify_run(runs / "agg").ok
    assert not [p for p in (runs / "agg").rglob("*") if runformat.temporary_owner(p.name) is not None]
    # A run copied without its aggregates folder still opens and draws (the view reads the long way).
    copy = tmp_path / "runs"
    shutil.copytree(runs / "agg-old", copy / "agg-old")
    assert runformat.Run.open(copy, "agg-old").manifest.complete


def long_example_states(run: runformat.Run, layer: int, kind: str, summary: str) -> np.ndarray:
    """What the cells view computes from every step (``per_example_summary``), as it stores it."""
    frame = run.examples().sort_values("example_id")
    return cell_figures.per_example_summary(run.step_matrix(layer, kind), frame["length"], summary
                                            ).astype(np.float32)


@pytest.mark.parametrize("batch_rows", [aggregates.BATCH_ROWS, 7])     # 7: examples span batches
def test_agg008_example_states_equal_the_long_computation(runs, batch_rows, monkeypatch):
    monkeypatch.setattr(aggregates, "BATCH_ROWS", batch_rows)
    run = runformat.Run.open(runs, "agg")
    for layer in (0, 1):
        for kind in ("h", "c"):
            computed = aggregates.example_states(run.path / runformat.steps_file(layer, kind), run.examples())
            for summary in runformat.EXAMPLE_SUMMARIES:
                expected = long_example_states(run, layer, kind, summary)
                np.testing.assert_array_equal(computed[summary], expected)
                stored = run.read_table(runformat.example_states_file(layer, kind, summary))
                np.testing.assert_array_equal(stored.drop(columns="example_id").to_numpy(), expected)
                assert stored["example_id"].tolist() == sorted(run.examples()["example_id"])


def test_agg009_views_answer_the_same_from_either_path_and_the_new_run_reads_no_steps(runs, monkeypatch):
    data.configure(runs)
    data.clear_memos()
    for layer in (0, 1):
        for kind in ("h", "c"):
            np.testing.assert_array_equal(data.last_step_matrix(data.get_run("agg"), layer, kind),
                                          data.last_step_matrix(data.get_run("agg-old"), layer, kind))
    figures = {}
    for run_id in ("agg-old", "agg"):
        if run_id == "agg":                  # every answer from the small tables: no step table read
            data.clear_memos()
            monkeypatch.setattr(runformat.Run, "step_matrix", lambda *a, **k: pytest.fail("read every step"))
        run = data.get_run(run_id)
        figures[run_id] = [cells.ranking_figure(run_id, *chosen, "0", kind, summary, 2).to_plotly_json()
                           for chosen in FILTERS for kind in ("h", "c") for summary in ("last", "mean")]
        figures[run_id].append(data.nearest_examples(run, 5, k=6, layer=1).to_dict("list"))
    assert json.dumps(figures["agg"], sort_keys=True, default=str) == json.dumps(figures["agg-old"], sort_keys=True,
                                                                                  default=str)
    assert data.example_states(data.get_run("agg-old"), 0, "h", "mean") is None   # written before them


@pytest.mark.parametrize("layer", [0, 1])
def test_agg010_gate_cells_equal_the_long_computation_and_the_view_answers_the_same(runs, layer, monkeypatch):
    data.configure(runs)
    run, old = data.get_run("agg"), data.get_run("agg-old")
    every = gates._filters(*FILTERS[0])
    frame = gates._examples(run, every)
    for gate in gate_figures.GATES:
        for align in ("start", "end"):
            rows, _, position, n_steps = gates.aligned_positions(frame["row_start"], frame["length"], align)
            values = data.step_matrix(run, layer, gate)[rows]
            for statistic in gate_figures.CELL_STATISTICS:
                fast = gates.grid_from_aggregates(run, layer, frame, align, gate, statistic, 0.1, 0.9)
                slow = gate_figures.cell_step_matrix(values, position, n_steps, statistic, 0.1, 0.9)
                np.testing.assert_array_equal(fast, slow)
    # What they cannot answer is read the long way: a filter, other thresholds, an older run.
    two = gates._examples(run, gates._filters(*FILTERS[1]))
    assert gates.grid_from_aggregates(run, layer, two, "end", "forget_gate", "mean", 0.1, 0.9) is None
    assert gates.grid_from_aggregates(run, layer, frame, "end", "forget_gate", "saturated", 0.2, 0.9) is None
    assert gates.grid_from_aggregates(old, layer, frame, "end", "forget_gate", "mean", 0.1, 0.9) is None
    figures = {}
    for run_id in ("agg-old", "agg"):
        if run_id == "agg":                  # the whole run's heatmap without reading the gate table
            data.clear_memos()
            monkeypatch.setattr(runformat.Run, "step_matrix", lambda *a, **k: pytest.fail("read every step"))
        figures[run_id] = [gates.cells_figure(run_id, *FILTERS[0], str(layer), align, [0.1, 0.9], "input_gate",
                                              statistic, "saturation")
                           for statistic in gate_figures.CELL_STATISTICS for align in ("start", "end")]
    assert json.dumps(figures["agg"], sort_keys=True, default=str) == json.dumps(figures["agg-old"], sort_keys=True,
                                                                                  default=str)


def slow_grids(run, layer: int, gate: str, thresholds) -> dict:
    """``{(filters, align, statistic, low, high): (examples, grid)}``: the gate cells heatmap of
    every filter that lets examples through, by the pass over the gate table."""
    grids = {}
    values = data.step_matrix(run, layer, gate)
    for chosen in FILTERS:
        frame = gates._examples(run, gates._filters(*chosen))
        if frame.empty:
            continue
        for align in ("start", "end"):
            rows, _, position, n_steps = gates.aligned_positions(frame["row_start"], frame["length"], align)
            for statistic in gate_figures.CELL_STATISTICS:
                for low, high in thresholds:
                    grids[tuple(map(str, chosen)), align, statistic, low, high] = (frame, gate_figures.cell_step_matrix(
                        values, position, n_steps, statistic, low, high, rows=rows))
    return grids


@pytest.mark.parametrize("layer", [0, 1])
def test_agg011_gate_cells_of_any_filter_are_sums_of_the_group_cells(runs, layer, monkeypatch):
    run, old = data.get_run("agg"), data.get_run("agg-old")
    data.clear_memos()
    answers = {}
    for (chosen, align, statistic, low, high), (frame, slow) in slow_grids(
            run, layer, "output_gate", ((0.1, 0.9), (0.3, 0.65))).items():
        fast = gates.grid_from_groups(run, layer, frame, align, "output_gate", statistic, low, high)
        assert fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=0)   # the same sums, added in another order
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
        answers[chosen, align, statistic, low] = fast
    # Once the group sums are there, no filter reads the gate table.
    monkeypatch.setattr(runformat.Run, "step_matrix", lambda *a, **k: pytest.fail("read every step"))
    data.step_matrix.cache_clear()
    for chosen in FILTERS[1:]:
        if (tuple(map(str, chosen)), "end", "mean", 0.3) not in answers:
            continue                                     # lets no example through
        grid = gates.cell_grid(run, layer, gates._filters(*chosen), "end", "output_gate", "mean", 0.3, 0.65)
        np.testing.assert_array_equal(grid, answers[tuple(map(str, chosen)), "end", "mean", 0.3])
    # A set that splits a group, or a run without the aggregates: no group answer.
    monkeypatch.undo()
    frame = gates._examples(run, gates._filters(*FILTERS[0]))
    group = gates.gate_aggregates(run, layer)["group"]
    shared = np.flatnonzero(group == np.flatnonzero(np.bincount(group) >= 2)[0])
    half = frame[frame["example_id"] != shared[0]]
    assert gates.grid_from_groups(run, layer, half, "end", "input_gate", "mean", 0.1, 0.9) is None
    assert gates.grid_from_groups(old, layer, frame, "end", "input_gate", "mean", 0.1, 0.9) is None


def test_agg007_a_trained_classifier_writes_them(synthetic_run):
    outputs = synthetic_run.manifest.stages["extract"]["outputs"]
    assert set(AGGREGATE_FILES) <= set(outputs)
    data.configure(synthetic_run.path.parent)
    run = data.get_run("synthetic")
    frame = gates._examples(run, gates._filters([], list(runformat.SPLITS), None, "all"))
    fast = gates.summary_from_aggregates(run, 0, frame, "end", 0.1, 0.9)
    slow = gates.summary_from_tables(run, 0, frame, "end", 0.1, 0.9)
    np.testing.assert_array_equal(fast["by_step"]["forget_gate"]["high"], slow["by_step"]["forget_gate"]["high"])
    for summary in runformat.EXAMPLE_SUMMARIES:                   # and the per-example states
        np.testing.assert_array_equal(data.example_states(run, 0, "h", summary),
                                      long_example_states(synthetic_run, 0, "h", summary))


@pytest.mark.parametrize("layer", [0, 1])
def test_agg012_a_big_runs_group_cells_table_answers_every_filter_without_the_gate_table(
        runs, tmp_path, layer, monkeypatch):
    """Where the per-group rows are few against the steps (big runs) the extract stage writes the
    gate cells per group and offset; the view then sums them for any filter at the default
    thresholds, equal to the pass over the gate table, and never reads that table."""
    assert runformat.GATE_GROUP_CELLS_FILE not in runformat.Run.open(runs, "agg").manifest["files"]  # small run
    monkeypatch.setattr(aggregates, "GROUP_CELLS_MAX_SHARE", 1e9)     # as if it were a big run
    build_run(tmp_path, "agg-big")
    data.configure(tmp_path)
    data.clear_memos()
    run = data.get_run("agg-big")
    assert runformat.GATE_GROUP_CELLS_FILE in run.manifest["files"]
    slow = slow_grids(run, layer, "forget_gate", ((0.1, 0.9),))
    data.clear_memos()
    monkeypatch.setattr(runformat.Run, "step_matrix", lambda *a, **k: pytest.fail("read every step"))
    data.step_matrix.cache_clear()
    for (_, align, statistic, _, _), (frame, expected) in slow.items():
        fast = gates.grid_from_groups(run, layer, frame, align, "forget_gate", statistic, 0.1, 0.9)
        if statistic == "saturated":
            np.testing.assert_array_equal(fast, expected)                   # counts: exact
        else:
            np.testing.assert_allclose(fast, expected, rtol=1e-6, atol=0)   # the same sums in another order
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(expected))
    # Other thresholds are not in the table: the stored answer steps aside (the pass answers them).
    assert gates.stored_group_cells(run, layer, "forget_gate", "end", "saturated", 0.2, 0.9) is None
    assert gates.stored_group_cells(run, layer, "forget_gate", "end", "mean", 0.2, 0.9) is not None

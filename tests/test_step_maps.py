"""Big per-step tables as memory maps shared by every worker (dashboard/step_maps.py), on the small
real synthetic run with the in-memory limit set to nothing, and the figures' block-wise sums."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import data, step_maps
from dashboard.figures import gates as gate_figures
from dashboard.views import gates
from pipeline import runformat

ALL_SPLITS = ["train", "validation", "test"]


@pytest.fixture
def mapped(synthetic_runs_dir, monkeypatch, tmp_path):
    """The synthetic run with every whole table mapped, in a cache folder of its own."""
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    data.configure(synthetic_runs_dir)
    data.clear_memos()
    yield data.get_run("synthetic")
    data.clear_memos()                                   # no later test reads through a map


def _cells(run, classes, statistic="saturated"):
    return gates.cells_figure(run.run_id, classes, ALL_SPLITS, None, "all", None, "end", [0.1, 0.9],
                              "forget_gate", statistic, "saturation")


def _layer(run) -> int:
    return gates.gate_layers(run.manifest)[-1]


def test_smap001_a_big_table_is_a_read_only_map_of_the_same_values(mapped, monkeypatch, tmp_path):
    layer = _layer(mapped)
    in_memory = data.step_matrix(mapped, layer, "forget_gate")
    assert not isinstance(in_memory, np.memmap)
    expected = {statistic: _cells(mapped, mapped.classes[:2], statistic) for statistic in gate_figures.CELL_STATISTICS}
    data.clear_memos()
    monkeypatch.setattr(step_maps, "IN_MEMORY_BYTES", 0)
    table = data.step_matrix(mapped, layer, "forget_gate")
    assert isinstance(table, np.memmap) and not table.flags.writeable
    stored = next(mapped.step_batches(layer, "forget_gate")).dtype        # float16 gates: half the bytes
    assert table.dtype == stored and table.shape == in_memory.shape
    np.testing.assert_array_equal(table.astype(np.float32), in_memory)
    assert [p.suffix for p in (tmp_path / "cache" / step_maps.FOLDER).glob("*.npy")] == [".npy"]
    for statistic, figure in expected.items():      # the gate cells of a filter, from the map
        assert _cells(mapped, mapped.classes[:2], statistic)["data"][0]["z"] == figure["data"][0]["z"]


def test_smap002_another_worker_opens_the_map_without_reading_the_table(mapped, monkeypatch):
    monkeypatch.setattr(step_maps, "IN_MEMORY_BYTES", 0)
    first = _cells(mapped, mapped.classes[:1])
    data.clear_memos()                                   # a second worker: the same cache folder

    def no_reads(*args, **kwargs):
        raise AssertionError("the table was read again")
    monkeypatch.setattr(runformat.Run, "step_batches", no_reads)
    monkeypatch.setattr(runformat.Run, "step_matrix", no_reads)
    assert _cells(mapped, mapped.classes[:1])["data"][0]["z"] == first["data"][0]["z"]


def test_smap003_a_map_cut_short_is_written_again(mapped, monkeypatch, tmp_path):
    monkeypatch.setattr(step_maps, "IN_MEMORY_BYTES", 0)
    layer = _layer(mapped)
    whole = np.array(data.step_matrix(mapped, layer, "input_gate"))
    (path,) = (tmp_path / "cache" / step_maps.FOLDER).glob("*.npy")
    with open(path, "r+b") as handle:                    # a writer killed half-way (no rename would
        handle.truncate(path.stat().st_size // 2)        # leave this; a damaged disk might)
    data.clear_memos()
    np.testing.assert_array_equal(data.step_matrix(mapped, layer, "input_gate"), whole)
    assert path.stat().st_size > whole.nbytes
    assert not list(path.parent.glob(".*tmp-*"))         # no temporary left behind


def test_smap004_the_folder_keeps_within_its_bound_dropping_the_least_recently_used(mapped, monkeypatch, tmp_path):
    monkeypatch.setattr(step_maps, "IN_MEMORY_BYTES", 0)
    layer = _layer(mapped)
    folder = tmp_path / "cache" / step_maps.FOLDER
    data.step_matrix(mapped, layer, "input_gate")
    one = next(folder.glob("*.npy")).stat().st_size
    monkeypatch.setenv("LSTM_LENS_STEP_MAPS_BYTES", str(2 * one))
    data.step_matrix(mapped, layer, "forget_gate")
    first_two = set(folder.glob("*.npy"))
    assert len(first_two) == 2
    data.step_matrix(mapped, layer, "output_gate")       # a third: the oldest (input gate) goes
    kept = set(folder.glob("*.npy"))
    assert len(kept) == 2 and len(kept & first_two) == 1
    data.clear_memos()
    data.step_matrix(mapped, layer, "input_gate")        # written again when asked for
    assert len(set(folder.glob("*.npy"))) == 2


@pytest.mark.parametrize("block_values", [1, 7, 50, 10 ** 6])
def test_smap005_block_wise_sums_equal_the_whole_at_any_block_size(block_values, monkeypatch):
    rng = np.random.default_rng(block_values)
    table = rng.random((300, 7)).astype(np.float16)
    rows = np.sort(rng.choice(300, 180, replace=False))
    position = rng.integers(0, 12, len(rows))
    chosen = table[rows].astype(np.float32)
    whole = {statistic: gate_figures.cell_step_matrix(chosen, position, 14, statistic, 0.2, 0.8)
             for statistic in gate_figures.CELL_STATISTICS}
    saturation = gate_figures.saturation_by_step(chosen, position, 14, 0.2, 0.8)
    histogram = gate_figures.gate_histograms({"g": chosen})[1]["g"]
    monkeypatch.setattr(gate_figures, "BLOCK_VALUES", block_values)
    monkeypatch.setattr(gate_figures, "SUM_BLOCK_VALUES", block_values)
    for statistic, grid in whole.items():
        blocked = gate_figures.cell_step_matrix(table, position, 14, statistic, 0.2, 0.8, rows=rows)
        np.testing.assert_allclose(blocked, grid, rtol=1e-6)
        assert np.isnan(blocked[:, 12:]).all()           # steps no row reaches
    blocked = gate_figures.saturation_by_step(table, position, 14, 0.2, 0.8, rows=rows)
    for key, values in saturation.items():
        np.testing.assert_array_equal(blocked[key], values)
    np.testing.assert_array_equal(gate_figures.gate_histograms({"g": table}, rows=rows)[1]["g"], histogram)


def test_smap006_a_cache_folder_that_cannot_be_written_costs_memory_not_the_answer(mapped, monkeypatch):
    monkeypatch.setattr(step_maps, "IN_MEMORY_BYTES", 0)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(step_maps, "step_map", full)
    table = data.step_matrix(mapped, _layer(mapped), "forget_gate")
    assert not isinstance(table, np.memmap) and table.dtype == np.float32
    assert _cells(mapped, mapped.classes[:1])["data"][0]["type"] == "heatmap"

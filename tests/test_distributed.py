"""Work sent to a dask.distributed cluster gives the single-machine answers.

A real LocalCluster: two worker processes on loopback, closed after the module's tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import distributed, runformat
from pipeline.analysis import match
from pipeline.cli import main
from pipeline.core import steps
from pipeline.analysis.lstm import LSTMWeights, NetworkWeights
from pipeline.core.steps import network_source
from pipeline.importers.arrays import read_arrays
from pipeline.kinds.imported import write_run


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, memory_limit="1GiB")
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def stream_states(n_rows=24000, cells=16, seed=0):
    """Cells that switch on and off in runs (a few steps to a few hundred), with noise."""
    rng = np.random.default_rng(seed)
    states = np.empty((n_rows, cells), np.float32)
    for j in range(cells):
        runs = rng.geometric(1 / rng.uniform(3, 60), n_rows)
        levels = np.repeat(rng.uniform(-1, 1, len(runs)), runs)[:n_rows]
        states[:, j] = levels + rng.normal(0, 0.05, n_rows)
    return states


@pytest.fixture(scope="module")
def partitioned_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    states = stream_states()
    lengths = np.random.default_rng(1).integers(50, 500, 60)
    lengths[-1] = len(states) - lengths[:-1].sum()
    assert lengths[-1] > 0
    np.savez(folder / "stream.npz", h=states, lengths=lengths)
    run = runformat.Run(write_run(read_arrays(folder / "stream.npz"), folder / "runs", partition_rows=5000)[0])
    return run, states


@pytest.mark.parametrize("off", [(False, False), (True, True)])
def test_dsk001_distributed_match_ranks_like_the_single_machine_engine(client, partitioned_run, off):
    run, states = partitioned_run
    source = run.path / runformat.steps_file(0, "h")
    assert len(list(source.iterdir())) == 5                     # 24,000 rows in parts of 5,000
    boundaries = run.examples()["row_start"].to_numpy(np.int64)
    start = int(boundaries[3]) + 10
    cells = match.select_cells(states, start, start + 2, 0.3, boundaries=boundaries)
    assert len(cells) >= 2
    local = match.match(states, cells, 0.3, *off, top_k=40, boundaries=boundaries)
    assert len(local) == 40

    stats = {}
    by_file = distributed.match(source, cells, 0.3, *off, top_k=40, boundaries=boundaries,
                                scheduler=client, stats=stats)
    assert by_file == local and stats["partitions"] == 5
    uneven = [(0, 1), (1, 7777), (7777, 7778), (7778, 20011), (20011, len(states))]
    assert distributed.match(source, cells, 0.3, *off, top_k=40, boundaries=boundaries,
                             scheduler=client, partitions=uneven) == local
    assert distributed.match(source, cells, 0.3, *off, top_k=40, boundaries=boundaries) == local


def test_dsk002_match_command_on_the_cluster(client, partitioned_run, capsys):
    run, states = partitioned_run
    args = ["match", run.run_id, "--runs", str(run.path.parent), "--start", "100", "--end", "102",
            "--top-k", "5"]
    assert main(args) == 0
    local = capsys.readouterr().out
    assert main(args + ["--scheduler", client.scheduler.address, "--partition-rows", "3000"]) == 0
    assert capsys.readouterr().out == local
    assert len(local.splitlines()) == 7                          # cells, header, five matches


def test_dsk003_extraction_on_the_cluster_writes_the_same_run(client, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    layers = [LSTMWeights(rng.normal(0, 0.4, (3, 20)).astype(np.float32),
                          rng.normal(0, 0.4, (5, 20)).astype(np.float32),
                          rng.normal(0, 0.1, 20).astype(np.float32)),
              LSTMWeights(rng.normal(0, 0.4, (5, 16)).astype(np.float32),
                          rng.normal(0, 0.4, (4, 16)).astype(np.float32),
                          rng.normal(0, 0.1, 16).astype(np.float32))]
    weights = NetworkWeights(layers, rng.normal(0, 1, (4, 3)).astype(np.float32), np.zeros(3, np.float32))
    lengths = rng.integers(1, 40, 50)
    x = rng.normal(0, 1, (int(lengths.sum()), 3)).astype(np.float32)
    read = lambda r0, r1: x[r0:r1]  # noqa: E731

    here = list(network_source(weights, read, lengths, block_rows=64).blocks())
    there = list(network_source(weights, read, lengths, block_rows=64, scheduler=client).blocks())
    assert len(here) > 4 and [first for first, _ in here] == [first for first, _ in there]
    for (_, ours), (_, theirs) in zip(here, there):
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])


def test_dsk004_import_command_with_a_scheduler_writes_the_in_process_run(client, tmp_path, monkeypatch):
    from pipeline.models.classifier import build_classifier
    from pipeline.models.keras_weights import save_model
    monkeypatch.setattr(steps, "BLOCK_ROWS", 100)
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 12, 40)
    save_model(build_classifier(12, 3, 2, [6, 4]), tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", inputs=rng.normal(0, 1, (int(lengths.sum()), 3)).astype(np.float32),
             lengths=lengths, labels=np.arange(40) % 2)
    common = ["import", "keras", str(tmp_path / "model.keras"), "--inputs", str(tmp_path / "inputs.npz"),
              "--runs", str(tmp_path / "runs"), "--quiet"]
    assert main(common + ["--run-id", "here"]) == 0
    assert main(common + ["--run-id", "there", "--scheduler", client.scheduler.address]) == 0
    here, there = runformat.Run.open(tmp_path / "runs", "here"), runformat.Run.open(tmp_path / "runs", "there")
    for layer in (0, 1):
        for kind in runformat.TENSOR_KINDS:
            np.testing.assert_array_equal(here.step_matrix(layer, kind), there.step_matrix(layer, kind))
    assert here.examples().equals(there.examples())


def tasks_run(client) -> dict[str, int]:
    """The scheduler's task counts by function name (task key prefix)."""
    return client.run_on_scheduler(lambda dask_scheduler: {
        name: sum(prefix.state_counts.values()) for name, prefix in dask_scheduler.task_prefixes.items()})


def test_dsk005_paths_drawn_on_the_cluster_equal_the_ones_drawn_here(client, monkeypatch):
    from pipeline import project
    monkeypatch.setattr(project, "PATH_BLOCK_ROWS", 1000)
    rng = np.random.default_rng(5)
    states = rng.normal(0, 1, (4321, 12)).astype(np.float32)
    layers = [(rng.normal(0, 0.3, (12, 20)).astype(np.float32), rng.normal(0, 0.1, 20).astype(np.float32), True),
              (rng.normal(0, 0.3, (20, 2)).astype(np.float32), np.zeros(2, np.float32), False)]
    here = project.draw_paths(states, layers)
    np.testing.assert_array_equal(here, project.draw_paths(states, layers, client))
    assert here.shape == (4321, 2) and here.dtype == np.float32
    expected = np.maximum(states.astype(np.float64) @ layers[0][0] + layers[0][1], 0) @ layers[1][0]
    np.testing.assert_allclose(here, expected, atol=1e-4)


def test_dsk006_run_extracted_and_projected_on_the_cluster_equals_the_run_made_here(
        client, synthetic_runs_dir, tmp_path, monkeypatch):
    """``pipeline run --scheduler``: the steps (recomputed block by block on the workers) and the
    PCA paths (drawn there) equal the run rebuilt in process; train and data are reused."""
    import shutil

    from factories import fast_config
    from pipeline import project
    from pipeline.kinds import classification
    monkeypatch.setattr(steps, "BLOCK_ROWS", 2000)            # many blocks, the same ones both ways
    monkeypatch.setattr(project, "PATH_BLOCK_ROWS", 3000)
    built = {}
    for where, scheduler in (("here", None), ("there", client.scheduler.address)):
        shutil.copytree(synthetic_runs_dir / "synthetic", tmp_path / where / "synthetic")
        writer = runformat.RunWriter(tmp_path / where, "synthetic")
        writer.invalidate_from(["data", "train", "extract", "attribute", "project"], "extract")
        writer.write_manifest()
        writer.close()
        before = tasks_run(client)
        summary = classification.run_classification(fast_config("synthetic"), tmp_path / where, scheduler=scheduler)
        after = tasks_run(client)
        done = {s.name: s.seconds is not None for s in summary.stages}
        assert done == {"data": False, "train": False, "extract": True, "attribute": True, "project": True}
        sent = {name: after.get(name, 0) - before.get(name, 0) for name in ("recompute_block", "forward")}
        if scheduler is None:
            assert sent == {"recompute_block": 0, "forward": 0}
        else:                               # the work went there, a block at a time
            assert sent["recompute_block"] >= 10 and sent["forward"] >= 4 * 10
        built[where] = runformat.Run.open(tmp_path / where, "synthetic")
    here, there = built["here"], built["there"]
    for kind in runformat.TENSOR_KINDS:
        np.testing.assert_array_equal(here.step_matrix(0, kind), there.step_matrix(0, kind))
    assert here.examples().equals(there.examples())
    ours, theirs = (r.projections() for r in (here, there))
    for pid in ("pca2", "pca3"):
        a, b = (p[p["projection"] == pid].reset_index(drop=True) for p in (ours, theirs))
        assert len(a) == int(here.examples()["length"].sum())
        assert a.equals(b)

"""``python -m pipeline match RUN``: select & match from the command line, on a cluster if asked."""

from __future__ import annotations

import argparse

import numpy as np

from pipeline import distributed, runformat
from pipeline.analysis import match as engine
from pipeline.cli.common import DEFAULT_RUNS_DIR


def add_match_command(commands) -> None:
    parser = commands.add_parser(
        "match", help="find where the cells of a selected range switch on again (select & match)",
        description="Select & match on a run from the command line: the cells on (>= threshold) "
                    "throughout rows START..END of a layer's states are the selection; the top "
                    "ranges of the whole run where the same cells are on are printed, best first. "
                    "With --scheduler the match runs on a dask.distributed cluster, one task per "
                    "part file (or --partition-rows rows).",
        epilog="example:\n  python -m pipeline match text-python --start 120 --end 128 --threshold 0.3\n"
               "  python -m pipeline match big --start 10 --end 14 --scheduler tcp://10.0.0.5:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", metavar="RUN", help="the run's id (its folder name under --runs)")
    parser.add_argument("--runs", default=str(DEFAULT_RUNS_DIR), metavar="DIR",
                        help="folder that holds the runs (default: %(default)s)")
    parser.add_argument("--layer", type=int, default=-1, help="layer index (default: the last)")
    parser.add_argument("--kind", default="h", choices=runformat.TENSOR_KINDS, help="tensor (default: h)")
    parser.add_argument("--start", type=int, required=True, help="first selected row of the stream")
    parser.add_argument("--end", type=int, required=True, help="last selected row (inclusive)")
    parser.add_argument("--threshold", type=float, default=0.3, help="a cell is on at >= this (default 0.3)")
    parser.add_argument("--off-before", action="store_true", help="also require the cells off one step before")
    parser.add_argument("--off-after", action="store_true", help="also require the cells off one step after")
    parser.add_argument("--top-k", type=int, default=20, help="how many matches to print (default 20)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="dask.distributed scheduler, e.g. tcp://127.0.0.1:8786 (default: in-process)")
    parser.add_argument("--partition-rows", type=int, metavar="N",
                        help="rows per task with --scheduler (default: one task per part file)")
    parser.set_defaults(handler=match_command)


def match_command(args) -> int:
    try:
        return _match_command(args)
    except ValueError as error:          # the engine's checks: rows out of range, bad threshold ...
        raise runformat.RunError(str(error)) from None


def _match_command(args) -> int:
    run = runformat.Run.open(args.runs, args.run_id)
    layers = run.layers
    if not layers:
        raise runformat.RunError(f"run {args.run_id!r} has no layers")
    layer = layers[args.layer].index if args.layer < 0 else args.layer
    path = run.path / runformat.steps_file(layer, args.kind)
    if not path.exists():
        raise runformat.RunError(f"run {args.run_id!r} has no {runformat.steps_file(layer, args.kind)}")
    boundaries = run.examples()["row_start"].to_numpy(np.int64)
    cells = engine.select_cells(str(path), args.start, args.end, args.threshold, args.off_before,
                                args.off_after, boundaries=boundaries)
    print(f"selected cells ({len(cells)}): {' '.join(map(str, cells.tolist())) or 'none'}")
    if not len(cells):
        return 0
    partitions = None
    if args.scheduler and args.partition_rows:
        partitions = distributed.row_partitions(engine.count_rows(str(path)), args.partition_rows)
    found = distributed.match(str(path), cells, args.threshold, args.off_before, args.off_after, args.top_k,
                  boundaries=boundaries, scheduler=args.scheduler, partitions=partitions)
    text = _tokens(run)
    print(f"{'start':>10} {'end':>10} {'overlap':>8} {'extra':>6}  text")
    for m in found:
        snippet = "".join(text[m.start:m.end + 1]) if text is not None else ""
        print(f"{m.start:>10} {m.end:>10} {m.overlap:>8} {m.extra:>6}  {snippet[:60]!r}")
    return 0


def _tokens(run: runformat.Run):
    if not run.has(runformat.TEXT_FILE):
        return None
    return run.steps("text", columns=["char"])["char"].to_numpy(dtype=object)

"""``python -m pipeline project RUN``: (re)compute a run's projections and trust figures, any kind."""

from __future__ import annotations

import argparse
import json

from pipeline import project
from pipeline.cli.common import format_summary, runs_option
from pipeline.core.config import merge
from pipeline.core.progress import Progress
from pipeline.core.stages import Stage, run_stages
from pipeline.runformat import Run, RunError, stable_hash


def add_project_command(commands) -> None:
    parser = commands.add_parser(
        "project", help="compute the 2-D/3-D projections and trust figures of any run",
        description="Compute (or recompute) the projections of a run's states: autoencoder, PCA and "
                    "t-SNE pictures with their trust measures, for runs trained here, imported or "
                    "recorded. The run's own projection settings are the defaults.",
        epilog="examples:\n  python -m pipeline project my-import\n"
               "  python -m pipeline project text-python --methods pca,tsne\n"
               "  python -m pipeline project auslan --layer 0 --state c",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", metavar="RUN", help="the run's id (its folder name under --runs)")
    runs_option(parser)
    parser.add_argument("--methods", help=f"comma-separated, any of {', '.join(project.METHODS)}")
    parser.add_argument("--layer", type=int, help="LSTM layer to project (-1: the last)")
    parser.add_argument("--state", help="tensor to project: h (default), c or a gate")
    parser.add_argument("--seeds", type=int, help="autoencoders per dimension")
    parser.add_argument("--stability-dims", metavar="DIMS",
                        help="comma-separated dims whose autoencoders get every seed (others get one), "
                             "or 'all'")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="draw the paths on this dask.distributed scheduler (default: in this process)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    parser.set_defaults(handler=project_command)


def project_command(args) -> int:
    run = Run.open(args.runs, args.run_id)
    if not run.manifest.complete:
        raise RunError(f"run {args.run_id!r} is incomplete; finish building it first")
    overrides = {key: value for key, value in (("layer", args.layer), ("state", args.state),
                                               ("seeds", args.seeds)) if value is not None}
    if args.methods is not None:
        overrides["methods"] = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.stability_dims is not None:
        overrides["stability_dims"] = _stability_dims(args.stability_dims)
    config = dict(run.manifest.config)
    config["project"] = merge(config.get("project") or project.DEFAULTS, overrides)
    project.settings_of(config)                    # refuse unknown methods before any work
    stages = {name: record.get("input_hash", "") for name, record in run.manifest.stages.items()
              if name != "project"}
    hashes = {"project": stable_hash("project", json.dumps(stages, sort_keys=True), config["project"])}
    summary = run_stages([Stage("project", project.project_stage)], config, hashes, args.runs,
                         args.run_id, progress=Progress(quiet=args.quiet), scheduler=args.scheduler)
    if not args.quiet:
        print(format_summary(summary))
    return 0


def _stability_dims(text: str) -> list[int] | None:
    """``--stability-dims``: "all" (None) or comma-separated dimensions."""
    if text.strip() == "all":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RunError(f"--stability-dims: comma-separated dimensions (e.g. 2,3) or 'all', not {text[:40]!r}") from None

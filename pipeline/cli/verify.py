"""``python -m pipeline verify RUN``: check a run's files against what its manifest recorded.

Every recorded file must exist with its recorded size and sha256, stay inside the run's folder,
and (parquet) read with its page checksums. One line per problem, then a summary; exit status 0
when the run is intact, 2 otherwise.
"""

from __future__ import annotations

from pipeline.cli.common import runs_option
from pipeline.runformat import RunError, resolve_run_path, verify_run


def add_verify_command(commands) -> None:
    parser = commands.add_parser(
        "verify", help="check a run's files against the sizes and digests its manifest records",
        description="Check runs for damage: every file a stage recorded must exist with the recorded "
                    "size and sha256, stay inside the run's folder, and parquet files must read with "
                    "their page checksums. Prints one line per problem and a summary; exit status 0 "
                    "when every run is intact, 2 otherwise.")
    parser.add_argument("run_ids", nargs="+", metavar="RUN", help="run id(s): folder names in --runs")
    runs_option(parser)
    parser.set_defaults(handler=verify_command)


def verify_command(args) -> int:
    clean = True
    for run_id in args.run_ids:
        path = resolve_run_path(args.runs, run_id)
        if not path.is_dir():
            raise RunError(f"no run {run_id!r} in the runs folder (give a run's folder name and --runs)")
        result = verify_run(path)
        for problem in result.problems:
            print(f"problem: {problem}")
        print(result.summary())
        clean = clean and result.ok
    return 0 if clean else 2

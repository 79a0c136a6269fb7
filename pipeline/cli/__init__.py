"""``python -m pipeline``: build the runs the dashboard shows.

One subcommand per job: ``run`` (train here), ``import`` (states or models made elsewhere),
``project`` (projections of any run), ``match`` (select & match from the command line), ``verify``
(check a run's files against its manifest). Errors in the input print ``error: <message>`` and exit
with status 2, without a traceback; warnings about the input (``DataWarning``) print as plain
``warning: <message>`` lines. This package only parses arguments; the work is in ``pipeline.kinds``
and below.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from pipeline.cli.imports import add_import_command
from pipeline.cli.match import add_match_command
from pipeline.cli.project import add_project_command
from pipeline.cli.report import add_report_command
from pipeline.cli.run import add_run_command
from pipeline.cli.verify import add_verify_command
from pipeline.core.errors import DataError, DataWarning
from pipeline.runformat import RunError

EXAMPLES = """\
examples:
  python -m pipeline run synthetic                       generated signs, a quick first run
  python -m pipeline run auslan --source ../shared/data/auslan
                                                         the Auslan study (94 signs)
  python -m pipeline run auslan --source DIR --merge-his-hers --run-id auslan-95
  python -m pipeline run synthetic --epochs 5 --units 32,32 --runs /tmp/runs
  python -m pipeline run text                            a character LM on Python's own source
  python -m pipeline run text --corpus parens            LSTMVis' parenthesis language
  python -m pipeline run text --source book.txt          any UTF-8 text file
  python -m pipeline import arrays states.npz            states computed elsewhere
  python -m pipeline project my-import                   projections of any run
  python -m pipeline verify auslan                       check a run's files for damage

A run is a folder <runs>/<run-id>/ that the dashboard reads (python app.py --runs DIR).
Running the same command again resumes an interrupted run and recomputes only the stages
whose settings changed (data -> train -> extract -> project); --force redoes them all.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="LSTM Lens pipeline: train, import or project LSTM models and write everything "
                    "they compute, step by step, into a run folder for the dashboard.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_command(commands, EXAMPLES)
    add_import_command(commands)
    add_project_command(commands)
    add_match_command(commands)
    add_verify_command(commands)
    add_report_command(commands)
    return parser


def plain_data_warnings() -> None:
    """Print ``DataWarning`` as ``warning: <message>`` on stderr (no source line, no category),
    every time; other warnings keep Python's format."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", DataWarning)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # keep TensorFlow's start-up chatter out
    args = build_parser().parse_args(argv)
    plain_data_warnings()
    try:
        return args.handler(args)
    except (DataError, RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume where it stopped", file=sys.stderr)
        return 130

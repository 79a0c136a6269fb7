"""``python -m pipeline report RUN``: the Auslan study's claims measured on a run (report/study.md)."""

from __future__ import annotations

import argparse

from pipeline import study
from pipeline.cli.common import runs_option


def add_report_command(commands) -> None:
    parser = commands.add_parser(
        "report", help="measure the Auslan study's claims on a run (report/study.md, study.json)",
        description="Measure Tempczyk & Bartołd's claims about the Auslan LSTM on a finished classification "
                    "run: hand usage in the 2-D picture, close and overlapping paths, perpendicular "
                    "directions, closeness across autoencoder seeds, where the mistakes fall. Each claim "
                    "gets the study's statement, our numbers and a verdict (holds / does not hold / "
                    "unclear / not applicable) with its rule. Written into the run as report/study.md "
                    "(with PNG figures when matplotlib is installed) and report/study.json, and recorded "
                    "in the manifest under 'report'.",
        epilog="examples:\n  python -m pipeline report auslan\n  python -m pipeline report synthetic --runs /tmp/runs",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", metavar="RUN", help="the run's id (its folder name under --runs)")
    runs_option(parser)
    parser.add_argument("--no-figures", action="store_true", help="numbers and Markdown only")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    parser.set_defaults(handler=report_command)


def report_command(args) -> int:
    result = study.write_report(args.runs, args.run_id, figures=not args.no_figures)
    if not args.quiet:
        width = max(len(c["claim"]) for c in result["claims"])
        for claim in result["claims"]:
            print(f"  {claim['claim']:<{width}}  {claim['verdict']}")
        print(f"report: {args.runs}/{args.run_id}/{study.REPORT_MD}")
    return 0

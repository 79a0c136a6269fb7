"""``python -m pipeline run DATASET``: train a model here and build its run (classifier or text LM)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.analysis import words
from pipeline.cli.common import format_summary, positive_int, runs_option, units_list
from pipeline.core.config import merge
from pipeline.core.errors import DataError
from pipeline.core.progress import Progress
from pipeline.datasets import text as corpora
from pipeline.kinds import classification, language_model


def common_run_options() -> argparse.ArgumentParser:
    """The options every ``run <dataset>`` takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("run options")
    runs_option(group)
    group.add_argument("--run-id", metavar="ID",
                       help="name of the run folder (default: the data set's name, e.g. auslan)")
    group.add_argument("--epochs", type=positive_int, help="most training epochs (early stopping may end sooner)")
    group.add_argument("--units", type=units_list, metavar="N[,N...]",
                       help="LSTM units per layer, e.g. 100 or 100,100 for two stacked layers")
    group.add_argument("--batch-size", type=positive_int, metavar="N", help="training batch size")
    group.add_argument("--seed", type=int, help="training seed (weights, shuffling); the split keeps its own")
    group.add_argument("--force", action="store_true", help="recompute every stage, even unchanged ones")
    scheduler_option(group)
    group.add_argument("--quiet", action="store_true", help="no progress bars and no summary")
    return common


def scheduler_option(group) -> None:
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the per-step work (extraction, the projections' paths) on this "
                            "dask.distributed scheduler, e.g. tcp://host:8786; the run is the same "
                            "as in this process (default)")


def add_run_command(commands, examples: str) -> None:
    run = commands.add_parser(
        "run", help="build or resume a run on a data set",
        description="Build (or resume) a run: load the data, train, extract every step's "
                    "h, c, gates and predictions, project.",
        epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    datasets = run.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    common = common_run_options()

    auslan = datasets.add_parser(
        "auslan", parents=[common], help="Auslan glove signs (UCI, Kadous 2002)",
        description="The Auslan sign recordings: a folder with tctodd1 .. tctodd9 of .tsd files. "
                    "By default the study's protocol: his/hers dropped, sequences shorter than 90 "
                    "frames, 94 classes, 70/15/15 stratified split.")
    auslan.add_argument("--source", required=True, metavar="DIR",
                        help="the folder holding tctodd1 .. tctodd9")
    auslan.add_argument("--merge-his-hers", action="store_true",
                        help="keep the sign his/hers (named 'her' in session 1) as one class: 95 "
                             "classes; the default run id becomes auslan-merged")
    auslan.add_argument("--skip-bad-files", action="store_true",
                        help="warn about and skip malformed files instead of stopping")
    auslan.set_defaults(handler=classification_command, dataset_overrides=lambda args: {
        "source": args.source, "his_hers": "merge" if args.merge_his_hers else "drop",
        "skip_bad_files": args.skip_bad_files})

    synthetic = datasets.add_parser(
        "synthetic", parents=[common], help="generated Auslan-like signs (no download needed)",
        description="Generated signs shaped like Auslan (22 channels, 27 classes): a quick run "
                    "to try the dashboard with.")
    synthetic.add_argument("--examples", type=positive_int, metavar="N",
                           help="generate N signs instead of the default 648 (27 classes x 6 signers x "
                                "4 repetitions), e.g. 100000 for a big run (~5.4M steps)")
    synthetic.set_defaults(handler=classification_command, dataset_overrides=lambda args: (
        {} if args.examples is None else {"examples": args.examples}))
    for classifier in (auslan, synthetic):
        classifier.add_argument("--attention", action="store_true",
                                help="attention pooling over the real steps instead of the last step "
                                     "(its weights are stored per step: the Attention view)")

    text = datasets.add_parser(
        "text", parents=[common], help="a character language model on text (LSTMVis' select & match)",
        description="A character-level LSTM language model on a text corpus: the running Python's "
                    "standard library (default), LSTMVis' parenthesis language, or a UTF-8 file.")
    add_text_arguments(text)
    text.set_defaults(handler=text_command)


def _training_overrides(args) -> dict:
    overrides: dict = {"model": {}, "train": {}}
    if args.units is not None:
        overrides["model"]["units"] = args.units
    for option in ("epochs", "batch_size", "seed"):
        if getattr(args, option, None) is not None:
            overrides["train"][option] = getattr(args, option)
    return overrides


def classification_config(args: argparse.Namespace) -> dict:
    """The run's config: the data set's defaults with the command line's choices on top."""
    overrides = {"dataset": args.dataset_overrides(args), **_training_overrides(args)}
    if args.attention:
        overrides["model"]["attention"] = True
    return merge(classification.default_config(args.dataset), overrides)


def classification_command(args: argparse.Namespace) -> int:
    summary = classification.run_classification(classification_config(args), args.runs, args.run_id,
                                                force=args.force, progress=Progress(quiet=args.quiet),
                                                scheduler=args.scheduler)
    if not args.quiet:
        print(format_summary(summary))
    return 0


def add_text_arguments(parser) -> None:
    parser.add_argument("--corpus", choices=corpora.CORPORA, default="python",
                        help="python: the running Python's standard library (default); parens: "
                             "LSTMVis' parenthesis language; file: the UTF-8 text file --source")
    parser.add_argument("--source", metavar="FILE", help="the text file of --corpus file")
    parser.add_argument("--tokens", choices=language_model.TOKENS, default="chars",
                        help="chars: a character model (default); words: a word model (words, numbers, "
                             "punctuation and paragraph breaks as tokens; default run id text-NAME-words)")
    parser.add_argument("--vocabulary", type=positive_int, metavar="N", default=words.DEFAULT_VOCABULARY,
                        help="--tokens words: the N most frequent training words (with <unk> for the "
                             "rest; default %(default)s)")
    parser.add_argument("--window", type=int, metavar="N", help="characters per training window")
    parser.add_argument("--embedding", type=int, metavar="N", help="character embedding size")
    parser.add_argument("--dropout", type=float, metavar="P", help="dropout after each LSTM layer")
    parser.add_argument("--documents", type=int, metavar="N", help="parens corpus: lines to generate")
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help="stop training after the epoch that passes S seconds")
    parser.add_argument("--learning-rate", type=float, metavar="LR", help="Adam's first learning rate")
    parser.add_argument("--lr-decay", type=float, metavar="F",
                        help="learning rate x F after every epoch (1: constant)")


def text_config(args) -> dict:
    if args.source and args.corpus != "file":
        args.corpus = "file"                       # --source alone means "this file"
    if args.corpus == "file" and not args.source:
        raise DataError("--corpus file needs --source FILE (a UTF-8 text file)")
    config = language_model.default_config(args.corpus, str(Path(args.source).resolve()) if args.source else None,
                                           args.tokens, args.vocabulary)
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise DataError(f"--learning-rate must be positive, not {args.learning_rate}")
    if args.lr_decay is not None and not 0 < args.lr_decay <= 1:
        raise DataError(f"--lr-decay must be in (0, 1], not {args.lr_decay}")
    overrides = _training_overrides(args)
    overrides["dataset"] = {}
    if args.documents is not None:
        overrides["dataset"]["n_documents"] = args.documents
    for option, section in (("embedding", "model"), ("dropout", "model"), ("window", "train"),
                            ("max_seconds", "train"), ("learning_rate", "train"), ("lr_decay", "train")):
        if getattr(args, option, None) is not None:
            overrides[section][option] = getattr(args, option)
    return merge(config, overrides)


def text_command(args) -> int:
    summary = language_model.run_language_model(text_config(args), args.runs, args.run_id, force=args.force,
                                                progress=Progress(quiet=args.quiet), scheduler=args.scheduler)
    if not args.quiet:
        print(format_summary(summary))
    return 0

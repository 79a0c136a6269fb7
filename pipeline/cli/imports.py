"""``python -m pipeline import SOURCE ...``: make a run from states or a model trained elsewhere."""

from __future__ import annotations

import argparse

from pipeline.cli.common import DEFAULT_RUNS_DIR, positive_int
from pipeline.core.progress import Progress
from pipeline.importers.arrays import read_arrays
from pipeline.importers.keras_model import read_keras
from pipeline.importers.lstmvis import read_lstmvis
from pipeline.importers.torch_model import read_torch
from pipeline.kinds.imported import write_run

DESCRIPTION = """\
Make a run from work done elsewhere, without training: the dashboard then shows it like any run.

Four sources:
  arrays   per-step states you computed (h, and optionally c, gates, predictions, tokens, labels,
           splits, annotations) in one .npz, HDF5 (.h5) or parquet file
  lstmvis  an LSTMVis project folder (its lstm.yml, states .h5, word ids .h5 and .dict files)
  keras    a saved Keras model (.keras) plus its input sequences: every step recomputed
  torch    a PyTorch nn.LSTM state_dict (.pt) plus its input sequences (needs `pip install torch`)

With labels the run is a classifier's (kind "classification"); without, a sequence or language
model's (kind "language_model": the text views and select & match). The field names and shapes
are documented in docs/import-format.md; every error names the field or file at fault.
"""

EXAMPLES = """\
examples:
  python -m pipeline import arrays states.npz
  python -m pipeline import arrays states.h5 --run-id my-model --partition-rows 1000000
  python -m pipeline import lstmvis ~/lstmvis-data/parens
  python -m pipeline import keras model.keras --inputs sequences.npz
  python -m pipeline import torch lstm.pt --inputs sequences.npz --input-size 22 --hidden 100 --layers 2
  python -m pipeline import torch lstm.pt --inputs big.h5 --input-size 8 --hidden 64 \\
      --scheduler tcp://10.0.0.5:8786        recompute on a dask.distributed cluster

Run the same command again and an unchanged import is skipped (--force redoes it). The run is a
folder <runs>/<run-id>/ that `python app.py --runs DIR` shows.
"""


ARRAYS_FIELDS = """\
fields (the names in the file; shapes and rules in docs/import-format.md):
  h  c  input_gate  forget_gate  candidate  output_gate
                        layer 0's per-step tensors (layer1_h, layer1_c, ... for more layers)
  lengths | offsets     how the rows make sequences (padded tensors: lengths; padding=left|right)
  labels  classes       a class index per sequence, and the class names (a classification run)
  split  names  meta_<column>
                        per sequence: train/validation/test, a name, any metadata
  predictions  vocabulary  tokens  annotation_<name>
                        per step: probabilities, what their columns predict, the text read,
                        tracks to colour and rank cells by
  inputs  channels      per step: the model's input channels (float), and their names

example (numpy):
  np.savez("states.npz", h=h, lengths=lengths, labels=labels, classes=np.array(["yes", "no"]))
"""


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("run options")
    group.add_argument("--runs", default=str(DEFAULT_RUNS_DIR), metavar="DIR",
                       help="folder that holds the runs (default: %(default)s)")
    group.add_argument("--run-id", metavar="ID", help="name of the run folder (default: from the file's name)")
    group.add_argument("--partition-rows", type=positive_int, metavar="N",
                       help="write each per-step table as a folder of parquet part files of N rows "
                            "(for Dask, Spark or Ray, and for --scheduler on `match`); default: one file")
    group.add_argument("--top-k", type=positive_int, default=5, metavar="K",
                       help="classes (or tokens) kept per step from predictions (default: 5)")
    group.add_argument("--no-project", action="store_true",
                       help="skip the projections (paths, last-step pictures, trust figures); "
                            "`python -m pipeline project RUN` adds them later")
    group.add_argument("--force", action="store_true", help="import again even if nothing changed")
    group.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return common


def model_options() -> argparse.ArgumentParser:
    model = argparse.ArgumentParser(add_help=False)
    group = model.add_argument_group("model options")
    group.add_argument("--inputs", required=True, metavar="FILE",
                       help="the input sequences: .npz/.h5/.parquet with a field 'inputs' (flat "
                            "(steps, channels) + lengths, or padded (sequences, steps, channels)), "
                            "plus optional labels, classes, split, tokens, names, annotation_*, meta_*")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="recompute on this dask.distributed scheduler (e.g. tcp://host:8786); "
                            "default: in this process")
    group.add_argument("--tolerance", type=float, default=1e-5,
                       help="largest accepted difference between the recompute and the framework's "
                            "own output on the first sequences (default: 1e-5)")
    return model


def add_import_command(commands) -> None:
    parser = commands.add_parser(
        "import", help="make a run from your own states, an LSTMVis project, or a Keras/PyTorch model",
        description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    common, model = common_options(), model_options()

    arrays = sources.add_parser(
        "arrays", parents=[common], help="per-step states from .npz, HDF5 or parquet",
        description="Per-step states from one .npz, .h5/.hdf5 or .parquet file.\n"
                    "Ragged: flat (steps, units) tensors plus lengths or offsets. Padded: (sequences,\n"
                    "steps, units) plus lengths. Neither: the whole file is one long stream.",
        epilog=ARRAYS_FIELDS, formatter_class=argparse.RawDescriptionHelpFormatter)
    arrays.add_argument("path", metavar="FILE", help="the arrays file (or a folder of parquet files)")
    arrays.set_defaults(handler=import_command, read=lambda a: _arrays(a))

    lstmvis = sources.add_parser(
        "lstmvis", parents=[common], help="an LSTMVis project folder, unchanged",
        description="An LSTMVis project: the folder with lstm.yml (or the file itself). Its states "
                    "become layers (type output = h, state = c), its word sequence the tokens, "
                    "its meta tracks annotations; the stream is one sequence, as in LSTMVis.")
    lstmvis.add_argument("path", metavar="PROJECT", help="the project folder or its lstm.yml")
    lstmvis.add_argument("--raw", action="store_true",
                         help="keep the stored values; by default the states are stored as LSTMVis "
                              "shows them (tanh applied unless a type says transform: none)")
    lstmvis.set_defaults(handler=import_command, read=lambda a: _lstmvis(a))

    keras = sources.add_parser(
        "keras", parents=[common, model], help="a saved Keras model (.keras) and its inputs",
        description="A Keras model in the native .keras format, loaded in safe mode: "
                    "[Standardise | Embedding] -> LSTM x N (Dropout allowed) -> [LastStep] -> "
                    "[Dense softmax]. Every LSTM layer's h, c and gates are recomputed in NumPy and "
                    "checked against Keras on the first sequences.")
    keras.add_argument("model", metavar="MODEL", help="the .keras file")
    keras.add_argument("--padding", choices=("left", "none"),
                       help="left: each sequence after zero frames up to the model's input length (as "
                            "this project's classifiers are trained); none: each from a zero state. "
                            "Default: left for float inputs of a fixed length, else none")
    keras.set_defaults(handler=import_command, read=lambda a: _keras(a))

    torch = sources.add_parser(
        "torch", parents=[common, model], help="a PyTorch nn.LSTM state_dict and its inputs",
        description="A PyTorch state_dict (torch.save(model.state_dict(), 'lstm.pt')), read with "
                    "weights_only=True into nn.LSTM(--input-size, --hidden, --layers, "
                    "batch_first=True). Each sequence runs from a zero state; the recompute is "
                    "checked against nn.LSTM to --tolerance. TorchScript files are not taken.")
    torch.add_argument("model", metavar="WEIGHTS", help="the state_dict file (.pt / .pth)")
    torch.add_argument("--input-size", type=positive_int, required=True, metavar="N", help="input channels")
    torch.add_argument("--hidden", type=positive_int, required=True, metavar="N", help="hidden units per layer")
    torch.add_argument("--layers", type=positive_int, default=1, metavar="N", help="stacked layers (default 1)")
    torch.add_argument("--prefix", metavar="NAME",
                       help="the LSTM's key prefix in the state_dict, e.g. 'encoder.' (when there are several)")
    torch.add_argument("--head", metavar="NAME",
                       help="a Linear layer on the LSTM's h whose softmax gives per-step probabilities, "
                            "e.g. 'fc' (default: the only one that fits, if exactly one does)")
    torch.set_defaults(handler=import_command, read=lambda a: _torch(a))


def _arrays(args):
    return read_arrays(args.path)


def _lstmvis(args):
    return read_lstmvis(args.path, raw=args.raw)


def _keras(args):
    return read_keras(args.model, args.inputs, padding=args.padding, scheduler=args.scheduler,
                      tolerance=args.tolerance)


def _torch(args):
    return read_torch(args.model, args.inputs, args.input_size, args.hidden, args.layers,
                      prefix=args.prefix, head=args.head, scheduler=args.scheduler,
                      tolerance=args.tolerance)


def import_command(args) -> int:
    imported = args.read(args)
    path, written = write_run(imported, args.runs, args.run_id, partition_rows=args.partition_rows,
                              top_k=args.top_k, force=args.force, progress=Progress(quiet=args.quiet),
                              project_settings={"methods": []} if args.no_project else None,
                              scheduler=getattr(args, "scheduler", None))
    if not args.quiet:
        state = "imported" if written else "unchanged (use --force to import again)"
        layers = ", ".join(f"layer {layer['index']}: {layer['units']} units ({' '.join(layer['tensors'])})"
                           for layer in imported.layers)
        print(f"run {path.name} ({imported.kind}, {state}): {path}\n"
              f"  {len(imported.lengths):,} sequences, {imported.n_rows:,} steps\n  {layers}")
    return 0

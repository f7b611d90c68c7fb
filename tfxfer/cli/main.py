"""The `tfxfer` command: train, demo, evaluate, export, predict, launch, info.

Example:

    tfxfer train --backbone ../shared/models/tfhub/efficientnet_lite0_feature_vector \\
        --data ../shared/data/images/hymenoptera --epochs 2
    tfxfer predict saved_models/hymenoptera ant.jpg bee.jpg
"""

import argparse
import os
import signal
import sys
import warnings

EXPECTED_ERRORS = (ValueError, TypeError, OSError, RuntimeError, KeyError)

# `tfxfer train`'s options for reading a text file that `predict --file` takes too.
PREDICT_FILE_DEFAULTS = {
    "data_format": "auto: .csv/.tsv by extension; other files one input a line, unless every line has a tab "
    "(TSV) or starts with a class name (<label> <text>); lines: always one input a line",
    "text_column": "found as tfxfer train finds it",
    "label_column": "found as tfxfer train finds it; not needed",
    "encoding_errors": "strict",
}
PREDICT_FILE_OPTIONS = tuple(PREDICT_FILE_DEFAULTS)


def build_parser():
    from tfxfer.runs.train_config import EVALUATION_DATA_OPTIONS, option_fields
    from tfxfer.version import __version__

    parser = argparse.ArgumentParser(
        prog="tfxfer",
        description="Transfer learning on TensorFlow: fine-tune, evaluate, export, serve.",
    )
    parser.add_argument("--version", action="version", version=f"tfxfer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fields = {field.name: field for field in option_fields()}
    train = commands.add_parser(
        "train",
        help="fine-tune a backbone on your data and export it",
        description="Flags override the config file; the run folder records what was used.",
    )
    train.add_argument("--config", help="YAML or JSON file with the same options as the flags")
    train.add_argument(
        "--resume",
        metavar="RUN_FOLDER",
        help="continue a killed or interrupted run from its last completed epoch, with its recorded options",
    )
    _train_option_flags(train)
    _output_flags(train)

    lr_find = commands.add_parser(
        "lr-find",
        help="try learning rates on your data and model; writes lr_find.png and a suggestion",
        description="Takes the options of `tfxfer train` (flags or --config). Trains a throw-away copy of "
        "the weights one step per rate, rates rising from 1e-7 to 1, and suggests the rate where the loss "
        "falls fastest. `tfxfer train --learning-rate auto` does the same inside a run.",
    )
    lr_find.add_argument("--config", help="YAML or JSON file with the options of tfxfer train")
    lr_find.add_argument("--steps", type=int, default=100, help="rates to try, one step each (default 100)")
    lr_find.add_argument(
        "--output",
        help="folder for lr_find.png and lr_find.json (default: a new <name>-lr-find-<time> folder under --runs-dir)",
    )
    _train_option_flags(lr_find)
    _output_flags(lr_find)

    tune = commands.add_parser(
        "tune",
        help="search the recipe, learning rate, alpha and beta; then train and export the best",
        description="Takes the options of `tfxfer train` (flags or --config) and searches the recipe, the "
        "fine-tuning learning rate, alpha, beta, head epochs and (Co-Tuning) trade-off (Optuna: TPE, with poor "
        "trials stopped at epoch ends) on a validation split carved from the training data. Run again with the same command, a "
        "killed search continues. Writes tuning_report.md, tuning_trials.png and best_config.yaml (for "
        "tfxfer train --config) to the study folder, then trains the best on the whole training data.",
    )
    tune.add_argument("--config", help="YAML or JSON file with the options of tfxfer train")
    tune.add_argument("--trials", type=int, default=12, help="trials to finish, complete or pruned (default 12)")
    tune.add_argument("--time-budget", type=float, metavar="SECONDS", help="start no trial after this many seconds")
    tune.add_argument(
        "--train",
        dest="train_best",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the best options on the whole training data and export them (default: yes)",
    )
    tune.add_argument("--study-folder", help="where the search lives (default: <runs-dir>/<name>-tune)")
    tune.add_argument(
        "--tune-validation-split",
        type=float,
        default=0.2,
        help="share of each class of the training data held out to tune on (default 0.2)",
    )
    _train_option_flags(tune)
    _output_flags(tune)

    demo = commands.add_parser(
        "demo",
        help="the embedded default: EfficientNet-Lite0 fine-tuned on ants/bees, exported",
        description="Uses ../shared (or $TFXFER_SHARED) when present, otherwise downloads the "
        "module from tfhub.dev and the images from download.pytorch.org.",
    )
    demo.add_argument("--shared", help="folder holding models/ and data/ (see ../shared/DATA.md)")
    demo.add_argument("--epochs", type=int, help="fine-tuning epochs (default 2)")
    demo.add_argument("--runs-dir", default="runs")
    demo.add_argument("--export-dir", default="saved_models")
    _output_flags(demo)

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy, per-class metrics and a confusion matrix",
        description="TARGET is a run folder, a .keras file, or an export (run through serving_default).",
    )
    evaluate.add_argument("target")
    evaluate.add_argument("--data", help="labelled data (default: the run's own validation split)")
    for option in EVALUATION_DATA_OPTIONS:
        field = fields[option]
        evaluate.add_argument(
            "--" + option.replace("_", "-"),
            dest=option,
            type=field.metadata["type"],
            choices=field.metadata["choices"],
            default=None,
            help=f"{field.metadata['help']} (default: the run's, else {_shown_default(field)})",
        )
    _hub_handle_flag(evaluate)
    _output_flags(evaluate)

    export = commands.add_parser("export", help="export a run or .keras model for TF Serving")
    export.add_argument("target", help="a run folder or a .keras file")
    export.add_argument("--export-dir", help="default: the run's export_dir (saved_models)")
    export.add_argument("--name", help="model name under the export folder (default: the run's name)")
    export.add_argument("--version", type=int, help="version number (default: the next one)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument(
        "--class-names", nargs="+", help="class names for a model saved without them (default: the model's own)"
    )
    export.add_argument(
        "--threshold", type=float, help="probability above which sigmoid outputs decide 1 (default: the model's, 0.5)"
    )
    _hub_handle_flag(export)
    _output_flags(export)

    predict = commands.add_parser(
        "predict",
        help="classify images or texts with an export, no server needed",
        description="EXPORT is saved_models/<name> (newest version), a version folder, or a .keras file.",
    )
    predict.add_argument("export")
    _hub_handle_flag(predict)
    predict.add_argument("inputs", nargs="*", help="image files, or texts for a text model")
    predict.add_argument(
        "--file",
        help="a file of inputs: one a line, or for a text model a CSV/TSV whose text column is read as "
        "`tfxfer train` reads it (its header row and label column are no inputs)",
    )
    predict.add_argument("--top", type=int, default=1, help="classes shown per input")
    predict.add_argument("--json", action="store_true", help="one JSON object per input")
    predict.add_argument(
        "--on-bad-data",
        choices=("error", "skip"),
        default="error",
        help="an unreadable image file or a bad --file line: stop (error) or report it and go on (skip)",
    )
    for option in PREDICT_FILE_OPTIONS:  # read --file as train reads --data
        field = fields[option]
        predict.add_argument(
            "--" + option.replace("_", "-"),
            dest=option,
            type=field.metadata["type"],
            # `lines`: every line one text, whatever it looks like.
            choices=tuple(field.metadata["choices"]) + ("lines",)
            if option == "data_format"
            else field.metadata["choices"],
            default=None,
            help=f"--file: {field.metadata['help']} (default: {PREDICT_FILE_DEFAULTS[option]})",
        )

    launch = commands.add_parser(
        "launch",
        help="run a command as N local workers of one multi-worker job",
        description="Starts N workers of `tfxfer COMMAND ...` on free loopback ports, each with the "
        "TF_CONFIG a cluster manager would set; worker 0 (the chief) writes the results and its output "
        "is shown here. If one worker fails, the others are stopped. On a real cluster, run the same "
        "`tfxfer train ...` on every machine with TF_CONFIG set.",
        epilog="example: tfxfer launch --workers 2 -- train --data photos/ --backbone MODULE",
    )
    launch.add_argument("--workers", type=int, default=2, help="how many worker processes (default 2)")
    launch.add_argument(
        "--log-dir", help="where the other workers' output goes (default: a temporary folder, kept on failure)"
    )
    launch.add_argument(
        "worker_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND ...",
        help="the tfxfer command every worker runs, e.g. -- train --data photos/",
    )

    info = commands.add_parser("info", help="what a TF Hub handle, preset or export contains")
    info.add_argument("target", help="TF Hub handle or path, KerasHub preset, or export folder")
    return parser


def _train_option_flags(parser):
    """One flag per `TrainConfig` option (`--learning-rate`, `--no-export`, ...)."""
    from tfxfer.runs.train_config import option_fields

    for field in option_fields():
        flag = "--" + field.name.replace("_", "-")
        meta = field.metadata
        if field.type in (bool, "bool"):
            parser.add_argument(
                flag,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=meta["help"],
            )
            continue
        parser.add_argument(
            flag,
            dest=field.name,
            # Options that take words too (`--learning-rate auto`) are checked by TrainConfig, in its words.
            type=meta["type"] if meta["type"] in (int, float, str) else str,
            choices=meta["choices"],
            nargs=meta["nargs"],
            default=argparse.SUPPRESS,
            help=meta["help"] if "(default" in meta["help"] else f"{meta['help']} (default: {_shown_default(field)})",
        )


def _hub_handle_flag(parser):
    parser.add_argument(
        "--hub-handle",
        action="append",
        metavar="OLD=NEW",
        help="a TF Hub module the model names has moved: where it is now (repeatable)",
    )


def _output_flags(parser):
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages")
    parser.add_argument(
        "--verbose", type=int, choices=(1, 2), default=1, help="1: progress bars, 2: one line per epoch (logs)"
    )


def _shown_default(field):
    default = field.default
    return " ".join(map(str, default)) if isinstance(default, tuple) else default


def main(argv=None):
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        if args.command == "predict" and not any(extra.startswith("-") for extra in extras):
            # Inputs after a flag (`predict EXPORT --top 2 a.jpg b.jpg`) are inputs too.
            args.inputs = list(args.inputs) + extras
        else:
            parser.parse_args(argv)  # exits with argparse's own message
    empty = _empty_argument(args, sys.argv[1:] if argv is None else argv)
    if empty:
        print(f"tfxfer {args.command}: error: {empty}", file=sys.stderr)
        return 2
    debug = bool(os.environ.get("TFXFER_DEBUG")) or getattr(args, "verbose", 1) == 2
    if not debug and sys.stderr is sys.__stderr__:  # not when a caller (pytest) captures stderr
        quiet_native_logs()
    # A preempted machine sends SIGTERM first: stop like Ctrl-C, recording the run as interrupted.
    signal.signal(signal.SIGTERM, _interrupt)
    from tfxfer.cli import commands

    _show_data_notes_in_cli_words(args.command)

    try:
        return getattr(commands, f"run_{args.command.replace('-', '_')}")(args) or 0
    except BrokenPipeError:  # `tfxfer info ... | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as interruption:
        print(
            f"tfxfer {args.command}: {cli_message(interruption) if str(interruption) else 'interrupted'}",
            file=sys.stderr,
        )
        return 130
    except Exception as error:
        if os.environ.get("TFXFER_DEBUG") or not _expected(error):
            raise
        print(f"tfxfer {args.command}: error: {cli_message(error)}", file=sys.stderr)
        print("(set TFXFER_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 2


def _show_data_notes_in_cli_words(command):
    """The loaders' notes (`DataNote` warnings) name Python arguments; here they are shown with the flags.

    `tfxfer.data` imports TensorFlow, so it is not imported here: a note can
    only come from a loader, which has imported it by then. A refusal made
    before any loading (a finished run, a missing folder) starts no TensorFlow.
    """
    show = warnings.showwarning

    def show_note(message, category, *args, **kwargs):
        data_report = sys.modules.get("tfxfer.data.data_report")
        if data_report is not None and isinstance(message, data_report.DataNote):
            print(f"tfxfer {command}: note: {message.cli_message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = show_note


def _empty_argument(args, argv):
    """The message for an empty path or value (`tfxfer info ""`, an unset shell variable), else None.

    Without it an empty path reads as the current folder, and the error that
    follows names `.`.
    """
    for name, value in vars(args).items():
        if not isinstance(value, str) or value.strip() or name == "command":
            continue
        flag = "--" + name.replace("_", "-")
        given_as_flag = any(token == flag or token.startswith(flag + "=") for token in argv)
        shown = flag if given_as_flag else name.upper()
        return (
            f"{shown} is empty ({value!r}); give a value (an unset shell variable gives an empty argument). "
            f"See tfxfer {args.command} --help."
        )
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _expected(error):
    if isinstance(error, EXPECTED_ERRORS):
        return True
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(error, tensorflow.errors.OpError)


def cli_message(error):
    """One line or a few, in the CLI's words: flags, not Python arguments."""
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None and isinstance(error, tensorflow.errors.OpError):
        return op_error_message(error)
    return getattr(error, "cli_message", None) or str(error).strip() or type(error).__name__


def op_error_message(error):
    """A TensorFlow runtime error as one line: its first line, without the graph dump."""
    from tfxfer.data.image_folder import tensorflow_reason

    kind = type(error).__name__
    if kind == "ResourceExhaustedError":
        return f"out of memory ({tensorflow_reason(error)}). Use a smaller --batch-size or --image-size."
    return f"TensorFlow {kind}: {tensorflow_reason(error)}"


def quiet_native_logs():
    """Hides TensorFlow's C++ start-up lines (oneDNN, cuInit, CPU features) from CLI output.

    `--verbose 2` or `TFXFER_DEBUG=1` keeps them. TF_CPP_MIN_LOG_LEVEL covers
    TensorFlow's own logging; the absl lines written before absl is
    initialised need a filter (`tfxfer.cli.native_logs`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfxfer.cli.native_logs import filter_native_logs

    filter_native_logs()


if __name__ == "__main__":
    sys.exit(main())

"""The `ankang` command: the one shell over both sides' commands.

Training's commands (train, evaluate, score, promote, models, drift) live in `training`, the
service's (keys, export reviews) in `serving`; neither side imports the other, only this shell
imports both, and each side only when its extra is installed: `ankang keys create` works in the
serving-only install `make run` makes, `ankang train ...` needs the training extra.

Each command module registers its own sub-commands under a verb (``ankang train photo``,
``ankang score risk`` ...) and imports heavy libraries (torch, lightgbm, mlflow) only
when its command runs, so ``ankang --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

VERB_HELP = {
    "train": "train a model; writes model.onnx + card.json and logs the run to MLflow",
    "evaluate": "score a model on held-out data; writes a report with plots",
    "score": "score a data file with an exported model (no training stack needed)",
    "export": "export data from the service (for example reviewed photos) for retraining",
    "promote": "compare challenger with champion and release the winner to models/<name>/",
    "models": "list registered model versions and what is released",
    "keys": "create and list API keys for the service",
    "drift": "compare what the service saw recently with the training data (PSI, PNG plots)",
    "batch": "score photos or enterprises, or grade unions, on Ray (the batch extra)",
    "import": "import data into the service's database (for example unions and their enterprises)",
}

# Modules that register sub-commands (each defines `register(verb: Callable[[str], SubParsers])`), by the
# extra their side needs.
SERVING_MODULES: tuple[str, ...] = (
    "serving.keys_commands",
    "serving.review.export",
    "serving.batch.commands",
    "serving.unions.commands",
)
TRAINING_MODULES: tuple[str, ...] = (
    "training.photo.commands",
    "training.risk.commands",
    "training.lifecycle.commands",
    "training.reviews.commands",
    "training.quantize_commands",
)
COMMAND_MODULES: tuple[str, ...] = SERVING_MODULES + TRAINING_MODULES
# Verbs the serving side answers in part when the training side is not installed: `models list` then
# lists the released models without MLflow.
FALLBACK_MODULES: dict[str, str] = {"models": "serving.models_commands"}
# What a user's mistake raises (a missing file or folder, a bad value in it): one line, not a traceback.
USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError)
OUR_PACKAGES = {"ankang_cli", "runtime", "serving", "training"}


class _Verbs:
    """Creates each verb's sub-parser on first use so that verbs with no commands stay hidden."""

    def __init__(self, root: argparse._SubParsersAction):
        self._root = root
        self._verbs: dict[str, argparse._SubParsersAction] = {}

    def __call__(self, name: str) -> argparse._SubParsersAction:
        if name not in self._verbs:
            parser = self._root.add_parser(name, help=VERB_HELP[name], description=VERB_HELP[name])
            self._verbs[name] = parser.add_subparsers(dest="noun", metavar="WHAT", required=True)
        return self._verbs[name]

    def has(self, name: str) -> bool:
        return name in self._verbs


def importable_modules(modules: tuple[str, ...]) -> tuple[list, dict[str, str]]:
    """The command modules that import here, and for each side that does not, why (its extra is missing)."""
    loaded, missing = [], {}
    for name in modules:
        side = name.split(".")[0]
        if side in missing:
            continue
        try:
            loaded.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if (error.name or "").split(".")[0] in OUR_PACKAGES:
                raise
            missing[side] = f"No module named {error.name!r}; install it with `pip install 'ankang[{side}]'`"
    return loaded, missing


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    loaded, missing = importable_modules(modules)
    parser = argparse.ArgumentParser(
        prog="ankang",
        description="Ankang (安康): hazard-photo triage and labor-relation risk tiering.",
        epilog="Run `ankang VERB WHAT --help` for a command's options and defaults."
        + "".join(f"\n{side} commands unavailable: {why}" for side, why in missing.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = _Verbs(parser.add_subparsers(dest="verb", metavar="VERB", required=True))
    for module in loaded:
        module.register(verbs)
    for verb, fallback in FALLBACK_MODULES.items():
        if not verbs.has(verb) and any(name.startswith("serving.") for name in modules):
            importlib.import_module(fallback).register(verbs)
    if any(module.__name__ == "training.lifecycle.commands" for module in loaded):  # MLflow around every `train`
        importlib.import_module("training.lifecycle.commands").track_train_commands(verbs)
    parser.verbs, parser.missing_sides = verbs, missing
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in VERB_HELP and not parser.verbs.has(argv[0]) and parser.missing_sides:
        reasons = "; ".join(parser.missing_sides.values())
        parser.exit(2, f"ankang {argv[0]}: not available in this install: {reasons}\n")
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int | None] = args.func
    try:
        return int(run(args) or 0)
    except USER_ERRORS as error:
        parser.exit(2, f"ankang {args.verb} {getattr(args, 'noun', '')}: {error}\n")
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in OUR_PACKAGES:
            raise
        if (args.verb, getattr(args, "noun", None)) == ("models", "list"):  # the registry needs MLflow; models/ not
            print(f"ankang models list: the registry needs {error.name!r} (the training extra)", file=sys.stderr)
            return int(importlib.import_module(FALLBACK_MODULES["models"]).run_list(args) or 0)
        side = getattr(run, "func", run).__module__.split(".")[0]  # functools.partial: the wrapped command
        parser.exit(
            2,
            f"ankang {args.verb} {args.noun}: No module named {error.name!r}; "
            f"install it with `pip install 'ankang[{side}]'`\n",
        )


if __name__ == "__main__":
    sys.exit(main())

"""The `ankang` command: train, evaluate, score, export and promote Ankang's models.

Each command module registers its own sub-commands under a verb (``ankang train photo``,
``ankang score risk`` ...) and imports heavy libraries (torch, lightgbm, mlflow) only
when its command runs, so ``ankang --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

VERB_HELP = {
    "train": "train a model; writes model.onnx + card.json and logs the run to MLflow",
    "evaluate": "score a model on held-out data; writes a report with plots",
    "score": "score a data file with an exported model (no training stack needed)",
    "export": "export data from the service (for example reviewed photos) for retraining",
    "promote": "compare challenger with champion and release the winner to models/<name>/",
    "models": "list registered model versions and what is released",
    "keys": "create and list API keys for the service",
    "drift": "compare what the service saw recently with the training data (PSI, PNG plots)",
}

# Modules that register sub-commands; each defines `register(verb: Callable[[str], SubParsers])`.
COMMAND_MODULES: tuple[str, ...] = ("training.photo.commands", "training.risk.commands", "training.keys.commands",
                                     "training.lifecycle.commands", "training.reviews.commands",
                                     "training.quantize_commands")


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


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ankang",
        description="Ankang (安康): hazard-photo triage and labor-relation risk tiering.",
        epilog="Run `ankang VERB WHAT --help` for a command's options and defaults.",
    )
    verbs = _Verbs(parser.add_subparsers(dest="verb", metavar="VERB", required=True))
    for module in modules:
        importlib.import_module(module).register(verbs)
    if "training.lifecycle.commands" in modules:  # MLflow tracking around every `train` noun
        importlib.import_module("training.lifecycle.commands").track_train_commands(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int | None] = args.func
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""`ankang models list` in the serving-only install (`make run`'s): the released models in models/, read
and checked through `runtime` alone. With the training extra, training's `models list` (the MLflow
registry as well) takes its place."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from runtime.paths import MODELS_DIR
from serving.text_table import aligned


def register(verb) -> None:
    listing = verb("models").add_parser(
        "list",
        help="the released models in models/ (the registry needs the training extra)",
        description="The released models: each directory of models/ with its card's name, version and "
        "creation time, and whether model.onnx matches the card's sha256 (the service refuses it otherwise). "
        "Registered versions and aliases live in MLflow: install the training extra for those.",
    )
    listing.add_argument("--models-dir", type=Path, default=MODELS_DIR, help=f"released models (default: {MODELS_DIR})")
    listing.set_defaults(func=run_list)


def released_rows(models_dir: Path) -> list[list[str]]:
    rows = []
    for directory in sorted(path for path in Path(models_dir).iterdir() if (path / "card.json").is_file()):
        try:
            model = ModelDir.load(directory)
        except ModelIntegrityError as error:
            rows.append([directory.name, "–", "–", f"refused: {error}"])
            continue
        rows.append([directory.name, model.version, str(model.card.get("created", ""))[:19], "ok"])
    return rows


def run_list(args: argparse.Namespace) -> int:
    if not Path(args.models_dir).is_dir():
        raise FileNotFoundError(f"{args.models_dir} is not a folder of released models")
    rows = released_rows(args.models_dir)
    print(
        f"released models in {args.models_dir} "
        "(registered versions need the training extra: pip install 'ankang[training]')"
    )
    print(aligned(["directory", "version", "created", "sha256"], rows) if rows else "none")
    return 0

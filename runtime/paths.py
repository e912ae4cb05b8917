"""The project's folders, as checked out. No environment reads here: serving's overrides live in
`serving.settings.ServingSettings`, training's in its configs."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = PROJECT_ROOT / "datasets"
MODELS_DIR = PROJECT_ROOT / "models"  # released models: written by `ankang promote` only
CANDIDATES_DIR = PROJECT_ROOT / "var" / "candidates"  # `ankang train` writes <name>/<version>/ here

"""The project's folders, as checked out. No environment reads here: serving's overrides live in
`serving.settings.ServingSettings`, training's in its configs."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = PROJECT_ROOT / "datasets"
MODELS_DIR = PROJECT_ROOT / "models"  # released models: written by `ankang promote` only
CANDIDATES_DIR = PROJECT_ROOT / "var" / "candidates"  # `ankang train` writes <name>/<version>/ here


def recorded_path(path: str | Path) -> str:
    """A path as cards and reports record it: relative to the project when inside it, else its name only
    (an absolute path is one machine's layout, meaningless elsewhere and telling about the machine)."""
    for candidate in (Path(path).absolute(), Path(path).resolve()):  # a link inside the project keeps its name
        if candidate.is_relative_to(PROJECT_ROOT):
            return str(candidate.relative_to(PROJECT_ROOT))
    return Path(path).resolve().name

"""Contracts between the layers: serving stays free of the training stack, the bento builds."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

FORBIDDEN_IN_SERVING = {"training", "torch", "torchvision", "mlflow", "lightgbm", "sklearn"}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "serving").rglob("*.py")), ids=lambda p: p.name)
def test_serving_never_imports_the_training_stack(path):
    assert imported_top_level_modules(path) & FORBIDDEN_IN_SERVING == set()


def test_serving_install_has_no_torch_or_mlflow():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    serving = project["dependencies"] + project["optional-dependencies"]["serving"]
    assert not [req for req in serving if req.split("[")[0].split("=")[0].split(">")[0] in {"torch", "mlflow", "torchvision"}]


def test_datasets_folder_holds_no_python():
    assert list((PROJECT_ROOT / "datasets").rglob("*.py")) == []


@pytest.mark.slow
def test_bentoml_build_accepts_the_bentofile(tmp_path):
    bentoml = Path(sys.executable).with_name("bentoml")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path)}
    result = subprocess.run([str(bentoml), "build", "--output", "tag"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    tag = result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    src = tmp_path / "bentos" / name / version / "src"
    assert (src / "serving" / "service.py").is_file()
    assert (src / "models" / "hazard_photo" / "card.json").is_file()
    assert (src / "datasets" / "hazard_types.yaml").is_file()
    assert not list(src.rglob("*.jpg"))

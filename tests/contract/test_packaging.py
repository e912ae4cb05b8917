"""Packaging: the serving install stays free of the training stack, the bento builds (imports: test_layers.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


def test_serving_install_has_no_torch_or_mlflow():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    serving = project["dependencies"] + project["optional-dependencies"]["serving"]
    assert not [
        req for req in serving if req.split("[")[0].split("=")[0].split(">")[0] in {"torch", "mlflow", "torchvision"}
    ]


def test_datasets_folder_holds_no_python():
    assert list((PROJECT_ROOT / "datasets").rglob("*.py")) == []


@pytest.mark.slow
def test_bentoml_build_accepts_the_bentofile(tmp_path):
    bentoml = Path(sys.executable).with_name("bentoml")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(bentoml), "build", "--output", "tag"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    tag = result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    src = tmp_path / "bentos" / name / version / "src"
    assert (src / "serving" / "service.py").is_file()
    assert (src / "runtime" / "cards.py").is_file() and (src / "runtime" / "schemas" / "photo_card.json").is_file()
    assert (src / "models" / "hazard_photo" / "card.json").is_file()
    assert (src / "datasets" / "hazard_types.yaml").is_file()
    assert not list(src.rglob("*.jpg"))


def test_the_bento_installs_every_serving_dependency():
    import yaml

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    bento = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())["python"]["packages"]

    def names(requirements):
        return {re.split(r"[\[<>=]", requirement)[0] for requirement in requirements}

    assert names(project["dependencies"] + project["optional-dependencies"]["serving"]) <= names(bento)

"""What each layer may import (read from the source with `ast`, nested imports included).

runtime/    neither side, nor torch, mlflow or a web framework: what running an exported model needs
serving/    runtime, never training, torch or mlflow (the serving install has none of them)
training/   runtime, never serving: the contract with serving is models/<name>/ and runtime/ only
ankang_cli/ the command shell: both sides, each only when its extra is installed
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

TRAINING_STACK = {"training", "torch", "torchvision", "mlflow", "lightgbm", "sklearn", "skl2onnx", "tqdm", "matplotlib"}
FORBIDDEN = {
    "runtime": TRAINING_STACK | {"serving", "bentoml", "starlette", "fastapi", "pydantic", "sqlalchemy"},
    "serving": TRAINING_STACK,
    "training": {"serving"},
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden_imports(path: Path, layer: str) -> set[str]:
    return {name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN[layer]}


def layer_files(layer: str) -> list[Path]:
    return sorted((PROJECT_ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_it_may(layer):
    found = {str(path.relative_to(PROJECT_ROOT)): forbidden_imports(path, layer) for path in layer_files(layer)}
    assert {path: names for path, names in found.items() if names} == {}


def test_the_import_check_sees_nested_imports(tmp_path):
    source = tmp_path / "late.py"
    source.write_text("def f():\n    from serving.risk import RiskScorer\n    import torch.nn\n", encoding="utf-8")
    assert forbidden_imports(source, "runtime") == {"serving.risk", "torch.nn"}


# The serving-only install (`make run`'s) has none of the training extra's packages: block them.
SERVING_ONLY = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = {"torch", "torchvision", "sklearn", "lightgbm", "onnx", "skl2onnx", "mlflow", "matplotlib", "tqdm"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
    from ankang_cli import main
    sys.exit(main(sys.argv[1:]))
""")


def ankang_without_training_extra(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "ANKANG_DATABASE_URL"}  # var/'s SQLite
    env |= {"PYTHONPATH": str(PROJECT_ROOT), "ANKANG_DATA_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "-c", SERVING_ONLY, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_service_commands_run_in_the_serving_only_install(tmp_path):
    created = ankang_without_training_extra("keys", "create", "--role", "intake", tmp_path=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "created intake key" in created.stdout and (tmp_path / "var" / "review" / "review.db").is_file()
    listed = ankang_without_training_extra("keys", "list", tmp_path=tmp_path)
    assert listed.returncode == 0 and "intake" in listed.stdout
    exported = ankang_without_training_extra("export", "reviews", "--help", tmp_path=tmp_path)
    assert exported.returncode == 0, exported.stderr


def test_training_commands_say_which_extra_they_need(tmp_path):
    result = ankang_without_training_extra(
        "train", "risk", "--out", str(tmp_path / "risk"), "--no-track", tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("install it with `pip install 'ankang[training]'`")
    assert "Traceback" not in result.stderr


def test_models_list_shows_the_released_models_without_mlflow(tmp_path):
    """Issue 23 item 12: `ankang models list` needed MLflow after `make run`."""
    listed = ankang_without_training_extra("models", "list", tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "released models in" in listed.stdout and "pip install 'ankang[training]'" in listed.stdout
    for name in ("hazard_photo", "labor_risk"):
        line = next(line for line in listed.stdout.splitlines() if line.startswith(name + " "))
        assert line.rstrip().endswith("ok")


def test_keys_list_shows_the_bound_enterprise_and_aligns_chinese_names(tmp_path):
    """Issue 23 item 12: no enterprise column, and a Chinese holder pushed the next columns out of line."""
    for args in (
        ("--role", "reviewer", "--holder", "王安全"),
        ("--role", "reviewer", "--holder", "li"),
        ("--role", "enterprise", "--enterprise-id", "E-TEST-0001"),
    ):
        assert ankang_without_training_extra("keys", "create", *args, tmp_path=tmp_path).returncode == 0
    listed = ankang_without_training_extra("keys", "list", tmp_path=tmp_path).stdout.splitlines()
    header = listed[0]
    assert header.split() == ["id", "role", "holder", "enterprise", "created", "label"]
    from serving.text_table import display_width

    created_at = {display_width(line[: line.index("20")]) for line in listed[1:]}  # where `created` starts
    assert created_at == {display_width(header[: header.index("created")])}
    assert "E-TEST-0001" in next(line for line in listed[1:] if " enterprise " in line)


@pytest.mark.parametrize("data", ["/nonexistent", "holdout"])
def test_a_users_mistake_is_one_line_not_a_traceback(tmp_path, data):
    """Issue 23 item 12: `ankang evaluate photo --data /nonexistent` (or a folder whose manifest has a
    'holdout' split) printed a traceback."""
    if data == "holdout":
        (tmp_path / "set").mkdir()
        (tmp_path / "set" / "manifest.csv").write_text(
            "image,source,group,split,width,height,missing_helmet,missing_hi_vis,fire_smoke,wet_floor,"
            "heavy_machinery,poor_housekeeping\nimages/a.jpg,s,g,holdout,10,10,1,,,,,\n"
        )
        data = str(tmp_path / "set")
    done = subprocess.run(
        [sys.executable, "-m", "ankang_cli", "evaluate", "photo", "--data", data, "--report", str(tmp_path / "r")],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("ankang evaluate photo: ")
    assert ("manifest.csv not found" in done.stderr) or ("unknown split values ['holdout']" in done.stderr)

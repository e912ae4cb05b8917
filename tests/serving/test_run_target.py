"""`make run` binds to this machine only unless HOST says otherwise (issue 14.6)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def run_command(*variables: str) -> str:
    """The command `make run` would serve with (make -n prints it without running anything)."""
    printed = subprocess.run(
        ["make", "-n", "--always-make", "run", *variables], cwd=PROJECT_ROOT, text=True, capture_output=True, check=True
    ).stdout
    return next(line for line in printed.splitlines() if "bentoml serve" in line)


def test_make_run_serves_on_localhost_by_default():
    assert "--host 127.0.0.1 --port 3000" in run_command()


def test_host_and_port_override_the_bind_address():
    assert "--host 0.0.0.0 --port 8080" in run_command("HOST=0.0.0.0", "PORT=8080")

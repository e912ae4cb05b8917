"""`make run` binds to this machine only unless HOST says otherwise (issue 14.6), and each instance keeps
its own Prometheus multiprocess directory (issue 23.11)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import PROJECT_ROOT
from tests.server import clean_env

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def run_command(*variables: str) -> str:
    """The command `make run` would serve with (make -n prints it without running anything)."""
    printed = subprocess.run(
        ["make", "-n", "--always-make", "run", *variables],
        cwd=PROJECT_ROOT,
        env=clean_env(),  # a fresh shell's: no ANKANG_DATA_DIR another test set
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    return next(line for line in printed.splitlines() if "bentoml serve" in line)


def test_make_run_serves_on_localhost_by_default():
    assert "--host 127.0.0.1 --port 3000" in run_command()


def test_host_and_port_override_the_bind_address():
    assert "--host 0.0.0.0 --port 8080" in run_command("HOST=0.0.0.0", "PORT=8080")


def test_each_instance_gets_its_own_bentoml_home_and_so_its_own_metrics_directory():
    """Issue 23 item 11: every instance shared ~/bentoml/prometheus_multiproc_dir, so /metrics showed
    another instance's counters and each start wiped the others' files."""
    default = run_command()
    assert f"BENTOML_HOME={PROJECT_ROOT}/var/bentoml/3000 " in default
    assert f"BENTOML_HOME={PROJECT_ROOT}/var/bentoml/8080 " in run_command("PORT=8080")
    assert "BENTOML_HOME=/srv/ankang/bentoml/3000 " in run_command("ANKANG_DATA_DIR=/srv/ankang")

"""Start and stop the real server the way `make run` does (`bentoml serve serving.service:Ankang`).

`python -m bentoml` with this checkout first on PYTHONPATH, so the server runs the code under test
(the venv's console script would import whatever checkout the editable install points at).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import psutil

from tests.conftest import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(env: dict[str, str], *, port: int, log: IO | int = subprocess.DEVNULL) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:Ankang",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))}
    # as `make run`: each instance its own BentoML home, so no other server's start wipes its metrics
    instance_root = env.get("ANKANG_DATA_DIR") or tempfile.gettempdir()
    env.setdefault("BENTOML_HOME", str(Path(instance_root) / "bentoml" / str(port)))
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else log,
    )


def stop_server(process: subprocess.Popen, *, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal the server's process group, then kill any worker that escaped it (BentoML's workers
    can outlive a SIGKILLed arbiter), so no test leaves processes behind."""
    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:
        worker.kill()


def ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_ready(base_url: str, process: subprocess.Popen, *, timeout_seconds: float = 120) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        if ready(base_url):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{base_url} was not ready within {timeout_seconds} s")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ANKANG_* variable (as a fresh shell has), plus `settings`."""
    return {**{name: value for name, value in os.environ.items() if not name.startswith("ANKANG_")}, **settings}


@contextmanager
def served(env: dict[str, str], *, log: IO | int = subprocess.DEVNULL) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    process = start_server(env, port=port, log=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process)
        yield base_url, process
    finally:
        stop_server(process)


def app_middleware(client, kind: type):
    """The instance of middleware `kind` in a TestClient's app (built by its first request), so a
    test can reconfigure the one BentoML app a process may have."""
    if client.app.middleware_stack is None:
        client.get("/livez")
    node = client.app.middleware_stack
    while node is not None and not isinstance(node, kind):
        node = getattr(node, "app", None)
    if node is None:
        raise LookupError(f"no {kind.__name__} in the app's middleware")
    return node


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_in_page(page, function: str, *, timeout_s: float = 15.0) -> None:
    """Poll `function` (JavaScript, e.g. "() => document.images[0].complete") until it is truthy.
    Playwright's wait_for_function evaluates its predicate with eval() inside the page, which the
    pages' Content-Security-Policy (script-src 'self') rightly refuses; page.evaluate goes through
    the DevTools protocol, which the policy does not govern."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(function):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_s} s in the page: {function}")
        page.wait_for_timeout(50)


@contextmanager
def served_review_site(data_dir: Path, *, api_keys: str, seed) -> Iterator[tuple[str, object]]:
    """The whole service as `make run` serves it (real `bentoml serve`, every middleware, toy photo
    model) over a review store that `seed(store)` filled first; yields the URL and an open store."""
    from serving.review.store import ReviewStore
    from tests.toy_models import write_toy_photo_model

    store = ReviewStore(
        database_url=f"sqlite:///{data_dir / 'review' / 'review.db'}", photo_dir=data_dir / "review" / "photos"
    )
    try:
        seed(store)
        env = clean_env(
            ANKANG_DATA_DIR=str(data_dir),
            ANKANG_API_KEYS=api_keys,
            ANKANG_PHOTO_MODEL_DIR=str(write_toy_photo_model(data_dir.parent / "models" / "hazard_photo")),
        )
        with open(data_dir.parent / "server.log", "w") as log, served(env, log=log) as (base_url, _process):
            yield base_url, store
    finally:
        store.close()

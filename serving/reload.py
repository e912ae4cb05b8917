"""Hot reload: notice a new model directory, verify and warm it up, then swap it in atomically.

Requests read `HotSwap.current` once and keep that object for their whole life, so a swap
never fails an in-flight request; a directory caught half-written fails its sha256 check and is
retried at the next poll while the old model keeps serving.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

logger = logging.getLogger("ankang.reload")
T = TypeVar("T")


def card_fingerprint(model_dir: Path) -> str | None:
    try:
        return hashlib.sha256((model_dir / "card.json").read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


class HotSwap(Generic[T]):
    """Holds the object built from `model_dir` by `loader`, rebuilt when its card.json changes."""

    def __init__(
        self, model_dir: Path, loader: Callable[[Path], T], *, on_swap: Callable[[T], None] = lambda model: None
    ):
        """`on_swap(model)` is told of the first model and of each one swapped in (the service's metrics)."""
        self.model_dir = Path(model_dir)
        self.loader = loader
        self.on_swap = on_swap
        self._lock = threading.Lock()
        self._fingerprint = card_fingerprint(self.model_dir)
        self._current = loader(self.model_dir)
        self._stop = threading.Event()
        on_swap(self._current)

    @property
    def current(self) -> T:
        return self._current

    def reload_if_changed(self) -> bool:
        """Swap in the directory's model if its card changed; False (old model kept) otherwise."""
        with self._lock:
            fingerprint = card_fingerprint(self.model_dir)
            if fingerprint is None or fingerprint == self._fingerprint:
                return False
            try:
                replacement = self.loader(self.model_dir)
            except Exception as error:  # a half-written or broken directory must not stop serving
                logger.warning("not reloading %s: %s", self.model_dir, error)
                return False
            self._current, self._fingerprint = replacement, fingerprint
            self.on_swap(replacement)
            logger.info("reloaded model from %s", self.model_dir)
            return True

    def watch(self, *, interval_seconds: float) -> threading.Thread:
        def poll() -> None:
            while not self._stop.wait(interval_seconds):
                self.reload_if_changed()

        thread = threading.Thread(target=poll, name=f"watch-{self.model_dir.name}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

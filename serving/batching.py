"""Adaptive batching inside the API process, on its event loop.

A photo that arrives while the model is idle runs at once, alone (no added wait); photos that
arrive while a batch is running queue up and all go, up to `max_batch_size`, in the next run.
So the batch size follows the load. The model runs in the batcher's own thread (onnxruntime
releases the GIL), which leaves the event loop free to parse, decode and answer other requests,
and never waits behind decoding or review-store jobs in the shared thread pool.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class QueueFull(Exception):
    """More photos are waiting than the batcher accepts; the caller should answer 503."""


@dataclass
class _Waiting:
    image: np.ndarray
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Batches `submit(image)` calls for `run_batch(images) -> one result per image`.

    Used from one event loop (an API process's); `run_batch` runs in the batcher's own thread."""

    def __init__(
        self,
        run_batch: Callable[[np.ndarray], Sequence[Any]],
        *,
        max_batch_size: int,
        max_queue: int,
        on_batch: Callable[[int], None] = lambda size: None,
        on_queue: Callable[[int], None] = lambda depth: None,
    ):
        """`on_batch(size)` is told each batch's size before it runs, `on_queue(depth)` each change of
        the number of photos waiting (the service points both at its metrics)."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_queue < max_batch_size:
            raise ValueError(f"max_queue ({max_queue}) must be at least max_batch_size ({max_batch_size})")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.on_batch, self.on_queue = on_batch, on_queue
        self._waiting: list[_Waiting] = []
        self._draining = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photo-model")
        weakref.finalize(self, self._thread.shutdown, wait=False)  # a swapped-out model frees its thread

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def submit(self, image: np.ndarray) -> Any:
        """The result for one image, computed in whatever batch it joins."""
        if len(self._waiting) >= self.max_queue:
            raise QueueFull(f"{len(self._waiting)} photos are already waiting for the model")
        waiting = _Waiting(image, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self.on_queue(len(self._waiting))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await waiting.future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch_size]
                del self._waiting[: self.max_batch_size]
                self.on_queue(len(self._waiting))
                self.on_batch(len(batch))
                await self._run(batch)
        finally:
            self._draining = False

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            images = np.stack([item.image for item in batch])
            results = await asyncio.get_running_loop().run_in_executor(self._thread, self.run_batch, images)
        except Exception as error:  # every waiting caller learns of the failure; the batcher goes on
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        for item, result in zip(batch, results):
            if not item.future.done():  # a caller that went away (cancelled) is skipped
                item.future.set_result(result)

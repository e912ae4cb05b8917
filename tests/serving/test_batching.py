"""The API process's adaptive batcher: alone when idle, batched under load, failures contained."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from serving.batching import MicroBatcher, QueueFull


class GatedModel:
    """Sums each image; the first run waits for `release` so callers pile up behind it."""

    def __init__(self, *, fail_on_run: int | None = None):
        self.release = threading.Event()
        self.started = threading.Event()
        self.runs: list[int] = []
        self.fail_on_run = fail_on_run

    def __call__(self, images: np.ndarray) -> list[int]:
        self.runs.append(len(images))
        self.started.set()
        if len(self.runs) == 1:
            self.release.wait(timeout=10)
        if self.fail_on_run == len(self.runs):
            raise RuntimeError("onnxruntime failed")
        return [int(image.sum()) for image in images]


def image(value: int) -> np.ndarray:
    return np.full((3, 2, 2), value, dtype=np.uint8)


async def submit_while_first_runs(batcher: MicroBatcher, model: GatedModel, values: list[int]):
    """Submit values[0], wait until the model is running it, queue the rest, then let it go."""
    first = asyncio.ensure_future(batcher.submit(image(values[0])))
    await asyncio.to_thread(model.started.wait, 10)
    rest = [asyncio.ensure_future(batcher.submit(image(value))) for value in values[1:]]
    await asyncio.sleep(0)
    model.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_an_idle_batcher_runs_a_photo_alone_at_once():
    model = GatedModel()
    model.release.set()
    batcher = MicroBatcher(model, max_batch_size=8, max_queue=8)
    assert asyncio.run(batcher.submit(image(1))) == 12
    assert model.runs == [1]


def test_photos_arriving_while_the_model_runs_form_the_next_batch():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=8, max_queue=16)
    results = asyncio.run(submit_while_first_runs(batcher, model, [1, 2, 3, 4, 5, 6]))
    assert results == [12, 24, 36, 48, 60, 72]  # each caller gets its own image's result
    assert model.runs == [1, 5]
    assert batcher.queued == 0


def test_batches_never_exceed_max_batch_size():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=4, max_queue=16)
    results = asyncio.run(submit_while_first_runs(batcher, model, list(range(1, 11))))
    assert results == [12 * value for value in range(1, 11)]
    assert model.runs == [1, 4, 4, 1]


def test_a_full_queue_refuses_new_photos():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=2, max_queue=3)
    results = asyncio.run(submit_while_first_runs(batcher, model, [1, 2, 3, 4, 5]))
    assert results[:4] == [12, 24, 36, 48]
    assert isinstance(results[4], QueueFull)
    assert "3 photos are already waiting" in str(results[4])


def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs():
    async def scenario():
        model = GatedModel(fail_on_run=2)
        batcher = MicroBatcher(model, max_batch_size=2, max_queue=8)
        results = await submit_while_first_runs(batcher, model, [1, 2, 3, 4])
        return results, model.runs, await batcher.submit(image(7))

    results, runs, after = asyncio.run(scenario())
    assert results[0] == 12 and results[3] == 48
    assert [str(result) for result in results[1:3]] == ["onnxruntime failed"] * 2
    assert runs == [1, 2, 1, 1]
    assert after == 84


def test_a_cancelled_caller_does_not_disturb_the_others():
    async def scenario():
        model = GatedModel()
        batcher = MicroBatcher(model, max_batch_size=8, max_queue=8)
        first = asyncio.ensure_future(batcher.submit(image(1)))
        await asyncio.to_thread(model.started.wait, 10)
        gone, kept = (asyncio.ensure_future(batcher.submit(image(v))) for v in (2, 3))
        await asyncio.sleep(0)
        gone.cancel()
        model.release.set()
        return await first, await kept, gone.cancelled()

    assert asyncio.run(scenario()) == (12, 36, True)


@pytest.mark.parametrize(
    ("size", "queue", "message"),
    [
        (0, 8, "max_batch_size must be at least 1, got 0"),
        (8, 4, r"max_queue \(4\) must be at least max_batch_size \(8\)"),
    ],
)
def test_limits_are_validated(size, queue, message):
    with pytest.raises(ValueError, match=message):
        MicroBatcher(lambda images: [], max_batch_size=size, max_queue=queue)


def test_batch_sizes_and_queue_depth_are_reported():
    model = GatedModel()
    sizes, depths = [], []
    batcher = MicroBatcher(model, max_batch_size=4, max_queue=16, on_batch=sizes.append, on_queue=depths.append)
    asyncio.run(submit_while_first_runs(batcher, model, [1, 2, 3, 4, 5, 6]))
    assert sizes == [1, 4, 1]
    assert max(depths) == 5 and depths[-1] == 0

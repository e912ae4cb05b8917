"""Releasing to models/<name>/: the pair is swapped in atomically, readers never see a mix, and
the service's hot-reload watcher (serving.reload.HotSwap) picks up the new version."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from serving.reload import HotSwap
from tests.toy_models import write_toy_photo_model
from training.lifecycle import release as release_module
from training.lifecycle.release import release


@pytest.fixture
def two_models(tmp_path):
    first = ModelDir.load(write_toy_photo_model(tmp_path / "first", size=32, version="toy-1"))
    second = ModelDir.load(write_toy_photo_model(tmp_path / "second", size=48, version="toy-2"))
    assert first.card["sha256"] != second.card["sha256"]
    return first, second


def test_release_into_a_new_folder_writes_the_verified_pair_with_registry_entry(two_models, tmp_path):
    first, _ = two_models
    released = release(first, tmp_path / "models" / "hazard_photo", registry={"model": "hazard-photo", "version": "1"})
    assert released.card["sha256"] == first.card["sha256"] and released.version == "toy-1"
    assert released.card["registry"] == {"model": "hazard-photo", "version": "1"}
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["hazard_photo"]


def _snapshot(target) -> tuple[str, bool]:
    """Read the pair through one directory handle (as of one instant): (card version, sha256 matches)."""
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    opener = lambda name, flags: os.open(name, flags, dir_fd=fd)  # noqa: E731
    try:
        with open("card.json", "rb", opener=opener) as card_file, open("model.onnx", "rb", opener=opener) as onnx_file:
            card, model = json.loads(card_file.read()), onnx_file.read()
    finally:
        os.close(fd)
    return card["version"], hashlib.sha256(model).hexdigest() == card["sha256"]


@pytest.mark.parametrize("exchange_available", [True, False])
def test_concurrent_readers_never_see_a_mixed_pair(two_models, tmp_path, monkeypatch, exchange_available):
    if not exchange_available:
        monkeypatch.setattr(release_module, "_exchange", lambda first, second: False)
    target = tmp_path / "models" / "hazard_photo"
    release(two_models[0], target, registry={"version": "1"})
    seen, mixed, gone, done = set(), [], [], threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                version, consistent = _snapshot(target)
            except FileNotFoundError as error:  # the old folder deleted under a slow reader, or the fallback's gap
                gone.append(error)
                continue
            seen.add(version)
            if not consistent:
                mixed.append(version)

    reader = threading.Thread(target=read)
    reader.start()
    for round_ in range(40):
        release(two_models[round_ % 2], target, registry={"version": str(round_)})
    done.set()
    reader.join()
    assert mixed == []
    assert seen == {"toy-1", "toy-2"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["hazard_photo"]


def test_the_services_hot_reload_watcher_swaps_to_the_released_version(two_models, tmp_path):
    target = tmp_path / "models" / "hazard_photo"
    release(two_models[0], target, registry={"version": "1"})
    served = HotSwap(target, ModelDir.load)
    assert served.current.version == "toy-1" and served.reload_if_changed() is False
    release(two_models[1], target, registry={"version": "2"})
    assert served.reload_if_changed() is True
    assert served.current.version == "toy-2" and served.current.card["registry"] == {"version": "2"}


def test_a_pair_that_fails_verification_is_never_swapped_in(two_models, tmp_path):
    target = tmp_path / "models" / "hazard_photo"
    release(two_models[0], target, registry={"version": "1"})
    broken = ModelDir(path=two_models[1].path, card={**two_models[1].card, "sha256": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="sha256"):
        release(broken, target, registry={"version": "2"})
    assert ModelDir.load(target).version == "toy-1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["hazard_photo"]

"""The one onnxruntime session factory: explicit threads, no thread spinning, no per-shape memory patterns."""

from __future__ import annotations

import pytest

from runtime.session import SessionOptions, create_session, usable_cores
from serving.settings import ServingSettings, SettingsError
from tests.toy_models import write_toy_photo_model


def test_session_options_are_explicit(tmp_path):
    model_dir = write_toy_photo_model(tmp_path / "toy", version="toy-1")
    options = create_session(model_dir / "model.onnx", options=SessionOptions(threads=1)).get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_serialized_model_opens_too(tmp_path):
    model_dir = write_toy_photo_model(tmp_path / "toy", version="toy-1")
    session = create_session((model_dir / "model.onnx").read_bytes())
    assert session.get_session_options().intra_op_num_threads == usable_cores()


def test_serving_takes_its_session_options_from_the_settings():
    options = ServingSettings.from_env({"ANKANG_ORT_THREADS": "1", "ANKANG_ORT_SPINNING": "1"}).session_options
    assert options == SessionOptions(threads=1, spinning=True)
    assert ServingSettings.from_env({}).session_options == SessionOptions(threads=None, spinning=False)


def test_spinning_setting_is_validated():
    with pytest.raises(SettingsError, match="ANKANG_ORT_SPINNING must be one of 0, 1, not 'yes'"):
        ServingSettings.from_env({"ANKANG_ORT_SPINNING": "yes"})

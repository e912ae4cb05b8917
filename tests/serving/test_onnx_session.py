"""onnxruntime session settings: explicit threads, no thread spinning, no per-shape memory patterns."""

from __future__ import annotations

import pytest

from serving.onnx_session import create_session, session_threads, spinning_setting
from tests.toy_models import write_toy_photo_model


def test_session_settings_are_explicit(tmp_path, monkeypatch):
    monkeypatch.setenv("ANKANG_ORT_THREADS", "1")
    model_dir = write_toy_photo_model(tmp_path / "toy", version="toy-1")
    options = create_session(model_dir / "model.onnx").get_session_options()
    assert options.intra_op_num_threads == 1 == session_threads()
    assert options.inter_op_num_threads == 1
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_spinning_setting_is_validated(monkeypatch):
    monkeypatch.setenv("ANKANG_ORT_SPINNING", "yes")
    with pytest.raises(ValueError, match="ANKANG_ORT_SPINNING must be 0 or 1, not 'yes'"):
        spinning_setting()

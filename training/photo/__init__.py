"""The hazard-photo CNN: data, presets, model, training, evaluation and ONNX export."""

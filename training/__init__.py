"""Ankang training: data loading, training, evaluation, ONNX export and MLflow logging."""

"""Retraining lifecycle: MLflow-tracked training, the model registry, promotion and drift reports."""

"""What running an exported Ankang model needs, shared by training and serving.

Model directories and cards, the photo preprocessing, the hazard taxonomy, the onnxruntime
session factory and the errors. Imports neither `training` nor `serving`, nor torch, mlflow or a
web framework (tests/contract/test_layers.py): both sides import it, it imports neither.
"""

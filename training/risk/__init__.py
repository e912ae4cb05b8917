"""Labor-relation risk tiering: schema, synthetic populations, LightGBM pipeline, ONNX export."""

"""Ankang serving: BentoML services on onnxruntime. Reads only models/<name>/ (never training code)."""

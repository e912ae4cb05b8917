"""Reviewed photos back to training: `ankang export reviews`, and the near-duplicate threshold study."""

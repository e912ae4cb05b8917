"""Batch scoring on Ray Data: `ankang batch photos SRC` and `ankang batch enterprises FILE`.

The same code as the API answers with (`serving.photo.PhotoModel`, `serving.risk.RiskScorer`), run
in Ray actors (one onnxruntime session each) over a folder, a manifest or an fsspec prefix of
photos, or a CSV/Parquet file of enterprises. Results go to a folder of Parquet parts written
atomically, so a rerun skips what is already there. Ray is imported only when a job runs
(the `batch` extra: `pip install 'ankang[batch]'`).
"""

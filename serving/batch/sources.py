"""What a batch job reads: the photos of a folder, a manifest or an fsspec prefix; an enterprise file."""

from __future__ import annotations

import posixpath

import fsspec
import pandas as pd

from runtime.errors import InputError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MANIFEST_COLUMN = "image"


def photo_uris(source: str) -> list[str]:
    """Every photo of `source`, sorted: a folder or prefix (searched recursively for JPEG, PNG and
    WebP files) or a manifest CSV whose `image` column holds paths relative to the manifest or URLs."""
    fs, path = fsspec.core.url_to_fs(source)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if path.lower().endswith(".csv"):
        return _manifest_uris(fs, path, protocol)
    if not fs.isdir(path):
        raise InputError(
            "source", f"{source!r} is neither a folder nor a manifest .csv with an {MANIFEST_COLUMN!r} column"
        )
    found = [name for name in fs.find(path) if name.lower().endswith(PHOTO_SUFFIXES)]
    return sorted(_unstrip(fs, name, protocol) for name in found)


def _manifest_uris(fs, path: str, protocol: str) -> list[str]:
    with fs.open(path, "rb") as handle:
        manifest = pd.read_csv(handle, dtype=str, keep_default_na=False)
    if MANIFEST_COLUMN not in manifest.columns:
        raise InputError(
            "source",
            f"the manifest {path} has no {MANIFEST_COLUMN!r} column (its columns: {', '.join(manifest.columns)})",
        )
    base = posixpath.dirname(path)
    uris = []
    for entry in manifest[MANIFEST_COLUMN]:
        if not entry.strip():
            raise InputError("source", f"the manifest {path} has an empty {MANIFEST_COLUMN!r} cell")
        absolute = "://" in entry or entry.startswith("/")
        uris.append(entry if absolute else _unstrip(fs, posixpath.join(base, entry), protocol))
    return uris


def _unstrip(fs, path: str, protocol: str) -> str:
    """A path of `fs` as a URL every worker can open (plain paths stay plain for local files)."""
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)


def read_bytes(uri: str) -> bytes:
    with fsspec.open(uri, "rb") as handle:
        return handle.read()

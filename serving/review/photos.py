"""Content-addressed photo store on disk: `<root>/<sha256[:2]>/<sha256>.<ext>`, written atomically.

The stored bytes are the upload's own bytes (no re-encoding), except that the EXIF GPS block
is removed unless the store keeps GPS (`ANKANG_KEEP_GPS=1`). Derived images (thumbnails,
display-size copies) are cached under `<root>/derived/` and can always be rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

from PIL import Image, ImageOps

from serving.images import sniff_format

GPS_IFD_TAG = 0x8825
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
DERIVED_SIZES = {"thumb": 320, "display": 1280}


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _exif_without_gps(exif_payload: bytes) -> bytes | None:
    """The TIFF-format EXIF payload without its GPS block, or None if it had none."""
    exif = Image.Exif()
    exif.load(exif_payload)
    if GPS_IFD_TAG not in exif:
        return None
    del exif[GPS_IFD_TAG]
    return exif.tobytes()[len(b"Exif\x00\x00") :]


def _strip_gps_jpeg(data: bytes) -> bytes:
    out, position = [data[:2]], 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        segment = data[position : position + 2 + length]
        payload = segment[4:]
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            cleaned = _exif_without_gps(payload[6:])
            if cleaned is not None:
                body = b"Exif\x00\x00" + cleaned
                segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
        out.append(segment)
        position += 2 + length
    out.append(data[position:])
    return b"".join(out)


def _strip_gps_png(data: bytes) -> bytes:
    out, position = [data[:8]], 8
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunk = data[position : position + 12 + length]
        if kind == b"eXIf":
            cleaned = _exif_without_gps(chunk[8 : 8 + length])
            if cleaned is not None:
                chunk = struct.pack(">I4s", len(cleaned), kind) + cleaned
                chunk += struct.pack(">I", zlib.crc32(kind + cleaned))
        out.append(chunk)
        position += 12 + length
    return b"".join(out)


def _strip_gps_webp(data: bytes) -> bytes:
    out, position = [], 12
    while position + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[position : position + 8])
        chunk = data[position : position + 8 + length + (length & 1)]
        if kind == b"EXIF":
            payload = chunk[8 : 8 + length]
            payload = payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
            cleaned = _exif_without_gps(payload)
            if cleaned is not None:
                chunk = struct.pack("<4sI", kind, len(cleaned)) + cleaned + b"\x00" * (len(cleaned) & 1)
        out.append(chunk)
        position += 8 + length + (length & 1)
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def strip_gps(data: bytes) -> bytes:
    """The same image bytes with the EXIF GPS block removed (pixels are not re-encoded)."""
    stripper = {"JPEG": _strip_gps_jpeg, "PNG": _strip_gps_png, "WEBP": _strip_gps_webp}.get(sniff_format(data))
    return stripper(data) if stripper else data


class PhotoStore:
    """Photos by sha256 of their stored bytes; identical uploads are stored once.

    `root` is a folder (the default) or an fsspec URL such as `s3://bucket/photos` (s3fs, credentials and
    endpoint from the usual AWS variables): replicas on several machines then share one store. An object
    store's PUT is atomic; on a local disk the file is written under a temporary name and renamed."""

    def __init__(self, root: str | Path, *, keep_gps: bool = False):
        import fsspec

        self.url = str(root)
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        self.root = Path(self.base) if self.local else None
        self.keep_gps = keep_gps

    def put(self, data: bytes) -> str:
        return self.put_new(data)[0]

    def put_new(self, data: bytes) -> tuple[str, bool]:
        """(sha256, whether this call wrote the file: False when identical bytes were stored before)."""
        stored = data if self.keep_gps else strip_gps(data)
        digest = hashlib.sha256(stored).hexdigest()
        name = self._name(digest, EXTENSIONS.get(sniff_format(stored) or "", "bin"))
        if self.fs.exists(name):
            return digest, False
        self._write(name, stored)
        return digest, True

    def discard(self, digest: str) -> None:
        """Remove a stored photo (the intake that wrote it failed before any row referred to it)."""
        for name in self.fs.glob(f"{self.base}/{digest[:2]}/{digest}.*"):
            self.fs.rm(name)

    def _name(self, digest: str, extension: str) -> str:
        return f"{self.base}/{digest[:2]}/{digest}.{extension}"

    def _write(self, name: str, data: bytes) -> None:
        if self.local:
            atomic_write(Path(name), data)
        else:
            self.fs.pipe_file(name, data)

    def _stored_name(self, digest: str) -> str:
        matches = sorted(self.fs.glob(f"{self.base}/{digest[:2]}/{digest}.*"))
        if not matches:
            raise FileNotFoundError(f"photo {digest} is not in the photo store at {self.url}")
        return matches[0]

    def path(self, digest: str) -> Path:
        """The stored file of a local store (tests and tools that want the file itself)."""
        if not self.local:
            raise ValueError(f"the photo store at {self.url} is not a local folder; use read()")
        return Path(self._stored_name(digest))

    def read(self, digest: str) -> bytes:
        return self.fs.cat_file(self._stored_name(digest))

    def open_image(self, digest: str) -> Image.Image:
        image = Image.open(io.BytesIO(self.read(digest)))
        return ImageOps.exif_transpose(image).convert("RGB")

    def derived(self, digest: str, size: str) -> bytes:
        """A JPEG copy whose longest side is at most DERIVED_SIZES[size] px, made once and cached."""
        name = f"{self.base}/derived/{size}/{digest[:2]}/{digest}.jpg"
        try:
            return self.fs.cat_file(name)
        except FileNotFoundError:
            image = self.open_image(digest)
            image.thumbnail((DERIVED_SIZES[size],) * 2, Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=82, optimize=True)
            self._write(name, buffer.getvalue())
            return buffer.getvalue()

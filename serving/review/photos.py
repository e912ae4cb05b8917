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
    """Photos by sha256 of their stored bytes; identical uploads are stored once."""

    def __init__(self, root: str | Path, *, keep_gps: bool = False):
        self.root = Path(root)
        self.keep_gps = keep_gps

    def put(self, data: bytes) -> str:
        stored = data if self.keep_gps else strip_gps(data)
        digest = hashlib.sha256(stored).hexdigest()
        path = self.path(digest, extension=EXTENSIONS.get(sniff_format(stored) or "", "bin"))
        if not path.exists():
            atomic_write(path, stored)
        return digest

    def path(self, digest: str, *, extension: str | None = None) -> Path:
        folder = self.root / digest[:2]
        if extension is not None:
            return folder / f"{digest}.{extension}"
        matches = sorted(folder.glob(f"{digest}.*"))
        if not matches:
            raise FileNotFoundError(f"photo {digest} is not in the photo store at {self.root}")
        return matches[0]

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def open_image(self, digest: str) -> Image.Image:
        image = Image.open(self.path(digest))
        return ImageOps.exif_transpose(image).convert("RGB")

    def derived(self, digest: str, size: str) -> Path:
        """A JPEG copy whose longest side is at most DERIVED_SIZES[size] px, made once and cached."""
        path = self.root / "derived" / size / digest[:2] / f"{digest}.jpg"
        if not path.exists():
            image = self.open_image(digest)
            image.thumbnail((DERIVED_SIZES[size],) * 2, Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=82, optimize=True)
            atomic_write(path, buffer.getvalue())
        return path

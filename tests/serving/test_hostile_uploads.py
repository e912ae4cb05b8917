"""Hostile uploads: every bad file gets a 4xx naming the problem, checked before full decoding."""

from __future__ import annotations

import io
import socket
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from runtime.errors import InputError
from serving.images import decode_photo
from tests.serving.conftest import encode_image

RED = (255, 0, 0)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 64), colour) for colour in (RED, (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode_image(RED))
    start_of_frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, start_of_frame + 5, height, width)
    return bytes(data)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims a huge canvas over a few bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def png_bomb(side: int) -> bytes:
    """A complete, valid black side x side RGB PNG (300 MB of pixels at 10,000 px) compressed row by row."""
    compressor, row, parts = zlib.compressobj(9), b"\0" * (1 + 3 * side), []
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def corrupt_jpeg() -> bytes:
    data = encode_image(RED, size=(256, 256))
    return data[:300] + bytes(range(256)) * 8 + data[-2:]


HOSTILE = {
    "zero bytes": (b"", 400, "the uploaded file is empty (0 bytes)"),
    "text named .jpg": (b"just some text", 415, "not a JPEG, PNG or WebP image (checked by its content)"),
    "svg": (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415, "checked by its content"),
    "gif": (encode_image(RED, fmt="GIF"), 415, "not a JPEG, PNG or WebP image"),
    "animated webp": (animated("WEBP"), 422, "animated images are not accepted (3 frames)"),
    "animated png": (animated("PNG"), 422, "animated images are not accepted (3 frames)"),
    "png decompression bomb": (png_bomb(10_000), 413, "10000x10000 = 100000000 pixels; the limit is 40000000"),
    "png declaring 60000x60000": (png_declaring(60_000, 60_000), 413, "the image declares 3600000000 pixels"),
    "jpeg declaring 65000x65000": (jpeg_declaring(65_000, 65_000), 413, "the image declares 4225000000 pixels"),
    "jpeg declaring 8000x6000": (jpeg_declaring(8_000, 6_000), 413, "8000x6000 = 48000000 pixels"),
    "truncated jpeg": (encode_image(RED, size=(400, 300))[:1500], 422, "truncated or corrupt"),
    "corrupt jpeg": (corrupt_jpeg(), 422, "JPEG"),
    "jpeg + zip polyglot": (
        encode_image(RED) + b"PK\x03\x04" + b"\x00" * 30 + b"payload.php",
        422,
        "bytes after the end of its JPEG image",
    ),
    "png + html polyglot": (
        encode_image(RED, fmt="PNG") + b"<html><body>hi</body></html>",
        422,
        "HTML or script markup (a polyglot file)",
    ),
    "jpeg with script in a comment": (
        encode_image(
            RED,
            fmt="JPEG",
        ).replace(b"\xff\xd8", b"\xff\xd8\xff\xfe\x00\x1f<script>alert(1)</script>xxxxx", 1),
        422,
        "a polyglot file",
    ),
    "webp + appended file": (
        encode_image(RED, fmt="WEBP") + b"MZ\x90\x00 executable",
        422,
        "bytes after the end of its WEBP image",
    ),
    "tiny 1x1 png": (encode_image(RED, size=(1, 1), fmt="PNG"), 422, "each side must be at least 16 px"),
}


def test_the_bomb_is_a_real_png():
    data = HOSTILE["png decompression bomb"][0]
    assert len(data) < 400_000
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (10_000, 10_000), "RGB")


@pytest.mark.parametrize("name", list(HOSTILE))
def test_decoder_refuses_hostile_file(name):
    data, status, message = HOSTILE[name]
    with pytest.raises(InputError) as caught:
        decode_photo(data)
    assert caught.value.status_code == status
    assert message in caught.value.message
    assert caught.value.field == "photo"


@pytest.mark.parametrize(
    "name",
    [
        "png decompression bomb",
        "png declaring 60000x60000",
        "jpeg declaring 65000x65000",
        "jpeg + zip polyglot",
        "animated webp",
    ],
)
def test_refused_before_pixels_are_decoded(name, monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(InputError):
        decode_photo(HOSTILE[name][0])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_ordinary_photos_still_pass(fmt):
    assert decode_photo(encode_image((10, 200, 30), size=(640, 480), fmt=fmt)).size == (640, 480)


def test_jpeg_with_exif_and_padding_is_not_taken_for_a_polyglot():
    image = Image.new("RGB", (320, 240), RED)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    assert decode_photo(buffer.getvalue() + b"\x00" * 64).size == (240, 320)


@pytest.mark.parametrize(
    "name",
    [
        "zero bytes",
        "gif",
        "animated png",
        "png decompression bomb",
        "jpeg + zip polyglot",
        "jpeg declaring 65000x65000",
    ],
)
def test_api_answers_json_4xx_and_keeps_serving(api, name):
    data, status, message = HOSTILE[name]
    response = api.post("/v1/photos/assess", files={"photo": ("photo.jpg", data, "image/jpeg")})
    assert response.status_code == status
    assert response.json()["error"]["field"] == "photo"
    assert message in response.json()["error"]["message"]
    ok = api.post("/v1/photos/assess", files={"photo": ("ok.jpg", encode_image(RED), "image/jpeg")})
    assert ok.status_code == 200


def test_streamed_body_without_length_is_cut_at_the_limit(api):
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="photo"; filename="x.jpg"\r\n\r\n\xff\xd8\xff'
        for _ in range(18):
            yield b"\0" * (1024 * 1024)

    response = api.post(
        "/v1/photos/assess", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


def test_photo_given_as_url_is_never_fetched(api):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/photo.jpg"
        for form in ({"photo": url}, {"photo": url, "site_id": url}):
            assert api.post("/v1/photos/assess", data=form).status_code == 400
        with pytest.raises(socket.timeout):
            listener.accept()


def test_concurrent_full_decodes_are_bounded(monkeypatch):
    """Small files that decode to huge images cannot all decode at once (memory amplification)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    slots = threading.BoundedSemaphore(2)
    running, peak, lock = [0], [0], threading.Lock()
    original_load = ImageFile.ImageFile.load

    def counting_load(self):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        try:
            return original_load(self)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    photo = encode_image(RED, size=(320, 240))
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda _: decode_photo(photo, slots=slots).size, range(8)))
    assert sizes == [(320, 240)] * 8
    assert peak[0] == 2


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"--b\r\n-1.77e+16--b--\r\n", "multipart/form-data; boundary=b"),  # found by test_fuzz_api.py: was a 500
        (b"garbage", "multipart/form-data"),
        (
            b'--b\r\nContent-Disposition: form-data; name="photo"; filename="x.jpg"\r\n\r\n\xff\xd8\xff',
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_malformed_form_bodies_get_400_naming_the_field(api, body, content_type):
    response = api.post("/v1/photos/assess", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["photo"]

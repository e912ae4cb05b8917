"""Request parsing for BentoML file inputs: uploaded files only, never URLs or server paths.

BentoML's stock multipart parser downloads a file field given as text (a URL), JSON-decodes
text fields (so a site id "123" becomes a number) and fails with a 500 on an unknown binary
field; its JSON parser lets a body such as {"photo": "/etc/passwd"} name a server-side path.
`install()` swaps in parsers that accept a file field only as an uploaded file, keep text as
text, ignore unknown fields, and refuse JSON bodies for endpoints that take files.

A parameter typed `UploadedFile` (the photo intake's `photo`) is taken in memory: its form part is
never spooled to disk, and BentoML writes no temporary file for it (it does for `Path` inputs).
"""

from __future__ import annotations

import typing as t
from contextlib import aclosing
from pathlib import PurePosixPath

from _bentoml_impl import serde as bentoml_serde
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, ValidationError, core_schema
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

UPLOAD_REQUIRED = "must be an uploaded file (URLs are not fetched)"
# The largest file part kept in memory while the form is parsed. The photo route's body limit
# (serving/service.py) is this size, so a photo's part never reaches the disk.
MAX_IN_MEMORY_UPLOAD = 16 * 1024 * 1024


class UploadedFile(PurePosixPath):
    """An uploaded file held in memory: the name the client gave it and its bytes (`read_bytes()`).

    A `PurePath` because that is how BentoML knows a parameter is a multipart file field; a pure
    path has no file-system methods, so it cannot name a file on the server. It validates only from
    an uploaded form part: text (a URL), bytes or a path are refused, as for BentoML's `Path`."""

    _data: bytes
    content_type: str | None

    @classmethod
    def of(cls, upload: UploadFile) -> UploadedFile:
        """Take the part's bytes and close it (its in-memory buffer is released)."""
        data = upload.file.read()
        upload.file.close()
        uploaded = cls(upload.filename or "upload")
        uploaded._data, uploaded.content_type = data, upload.content_type
        return uploaded

    def read_bytes(self) -> bytes:
        return self._data

    @classmethod
    def _validate(cls, value: t.Any) -> UploadedFile:
        if isinstance(value, UploadFile):
            return cls.of(value)
        raise PydanticCustomError("upload_required", UPLOAD_REQUIRED)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: t.Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls._validate,
            core_schema.any_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(cls.read_bytes),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, t.Any]:
        value = handler(schema)  # as BentoML's FileSchema documents a `Path` input
        value.update({"type": "file" if handler.mode == "validation" else "string", "format": "binary"})
        return value


class _InMemoryMultiPartParser(MultiPartParser):
    spool_max_size = MAX_IN_MEMORY_UPLOAD


def _in_memory(cls: type[t.Any]) -> bool:
    return any(field.annotation is UploadedFile for field in cls.model_fields.values())


async def _form(request: t.Any, cls: type[t.Any]) -> t.Any:
    """The request's form, as `request.form()` parses it, except that the file parts of an endpoint
    with `UploadedFile` inputs stay in memory (up to MAX_IN_MEMORY_UPLOAD each) instead of spooling
    to disk past 1 MB."""
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not _in_memory(cls):
        return await request.form()
    try:
        async with aclosing(request.stream()) as stream:
            return await _InMemoryMultiPartParser(request.headers, stream).parse()
    except MultiPartException as error:  # the 400 request.form() raises
        raise HTTPException(status_code=400, detail=error.message) from None


def _field_error(cls: type, field: str, kind: str, message: str, value: t.Any) -> ValidationError:
    error = PydanticCustomError(kind, message)
    return ValidationError.from_exception_data(cls.__name__, [{"type": error, "loc": (field,), "input": value}])


async def _as_text(value: str | UploadFile) -> str:
    if isinstance(value, UploadFile):
        return (await value.read()).decode("utf-8", errors="replace")
    return value


class UploadOnlyMultipartSerde(bentoml_serde.MultipartSerde):
    async def parse_request(self, request: t.Any, cls: type[t.Any]) -> t.Any:
        try:
            form = await _form(request, cls)
        except HTTPException as error:  # malformed multipart: Starlette's 400 would reach BentoML as a 500
            field = cls.multipart_fields[0] if getattr(cls, "multipart_fields", None) else "body"
            raise _field_error(
                cls,
                field,
                "multipart_invalid",
                f"the form body cannot be parsed ({error.detail}); send well-formed multipart/form-data",
                None,
            ) from None
        data: dict[str, t.Any] = {}
        for name in cls.model_fields:
            values = form.getlist(name)
            if not values:
                continue
            if name not in cls.multipart_fields:
                data[name] = await _as_text(values[-1])
                continue
            if not all(isinstance(value, UploadFile) for value in values):
                raise _field_error(cls, name, "upload_required", UPLOAD_REQUIRED, None)
            data[name] = values if t.get_origin(cls.model_fields[name].annotation) is list else values[0]
        return cls.model_validate(data)


class FileSafeJSONSerde(bentoml_serde.JSONSerde):
    async def parse_request(self, request: t.Any, cls: type[t.Any]) -> t.Any:
        if getattr(cls, "multipart_fields", None):
            field = cls.multipart_fields[0]
            raise _field_error(
                cls,
                field,
                "multipart_required",
                f"send multipart/form-data with the file in the field '{field}'",
                None,
            )
        return await super().parse_request(request, cls)


def install() -> None:
    serdes = t.cast(dict, bentoml_serde.ALL_SERDE)
    serdes["multipart/form-data"] = UploadOnlyMultipartSerde
    serdes["application/x-www-form-urlencoded"] = UploadOnlyMultipartSerde
    serdes["application/json"] = FileSafeJSONSerde

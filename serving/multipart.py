"""Request parsing for BentoML file inputs: uploaded files only, never URLs or server paths.

BentoML's stock multipart parser downloads a file field given as text (a URL), JSON-decodes
text fields (so a site id "123" becomes a number) and fails with a 500 on an unknown binary
field; its JSON parser lets a body such as {"photo": "/etc/passwd"} name a server-side path.
`install()` swaps in parsers that accept a file field only as an uploaded file, keep text as
text, ignore unknown fields, and refuse JSON bodies for endpoints that take files.
"""

from __future__ import annotations

import typing as t

from _bentoml_impl import serde as bentoml_serde
from pydantic_core import PydanticCustomError, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException


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
            form = await request.form()
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
                raise _field_error(
                    cls, name, "upload_required", "must be an uploaded file (URLs are not fetched)", None
                )
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

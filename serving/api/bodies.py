"""`RequestBody`: the base of every JSON request body a route declares (`body: NewOrderRequest`).

FastAPI validates the body against the model before the route runs; the model's own validators (the
packages' readers: serving/orders/requests.py, serving/claims/requests.py ...) raise `InputError`
naming the field, and serving/errors.py answers pydantic's first error in the project's shape, with
that `InputError`'s field, message and status. What this base adds to every body, as before:

- a body sent without a JSON content type is still read as JSON (400 when it is not JSON);
- a body that is not a JSON object (or no body) is refused naming `body`, with the model's example;
- a required field that is missing is checked as null, so its reader names it in its own words.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, model_validator

from runtime.errors import InputError


def not_json(error: Exception) -> InputError:
    """The 400 of a body that is not JSON (`error`: the decoder's)."""
    return InputError("body", f"the body is not valid JSON: {error}", status_code=400)


class RequestBody(BaseModel):
    """A JSON object body; `shape` is the example its refusal shows."""

    shape: ClassVar[str] = "{...}"

    @classmethod
    def not_an_object(cls) -> InputError:
        return InputError("body", f"send a JSON object such as {cls.shape}")

    @classmethod
    def refuse_unknown(cls, body: dict[str, Any]) -> None:
        """A body whose unknown fields are an error raises it here (by default they are ignored)."""

    @classmethod
    def json_object(cls, data: Any) -> dict[str, Any]:
        """The body as a JSON object, or the InputError saying why it is not one."""
        if isinstance(data, bytes | bytearray):  # FastAPI leaves a body without a JSON content type unread
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise not_json(error) from None
        if not isinstance(data, dict):
            raise cls.not_an_object()
        return data

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> dict[str, Any]:
        body = cls.json_object(data)
        cls.refuse_unknown(body)
        missing = {name: None for name, field in cls.model_fields.items() if field.is_required() and name not in body}
        return {**body, **missing}

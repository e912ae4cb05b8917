"""HTTP form of `runtime.errors.InputError`: a 4xx JSON response naming the field at fault."""

from __future__ import annotations

from starlette.responses import JSONResponse

from runtime.errors import InputError


def error_response(error: InputError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status_code)

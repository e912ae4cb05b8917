"""Errors shared by both sides: bad input (a 4xx in serving, a message in the CLI) and bad model files."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input from a client: `field` names what is wrong, `message` says what to do."""

    status_code = 422

    def __init__(self, field: str, message: str, *, status_code: int | None = None, **context: Any):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.context = context
        if status_code is not None:
            self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"field": self.field, "message": self.message, **self.context}}


class ModelIntegrityError(RuntimeError):
    """A model directory whose files do not match its card: nothing may load it."""

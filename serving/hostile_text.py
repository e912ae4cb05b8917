"""Text no store can hold, refused before any handler or database sees it (a 4xx naming the field).

PostgreSQL refuses a NUL character in text and psycopg cannot encode a lone UTF-16 surrogate
(`"\\ud800"` in JSON): both reached the database as 500s. JSON nested 100,000 deep made the
parsers recurse until RecursionError. `HostileInput`, an ASGI middleware inside the body limit,
checks the decoded path, every query parameter and every JSON body (whatever its content type:
the handlers read bodies as JSON without asking) once, for every route; multipart forms are the
endpoints' own (`refuse_bad_text` on their text fields, before anything is written).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from runtime.errors import InputError
from serving.auth.asgi import Message, Receive, Scope, Send, header, respond

MAX_JSON_DEPTH = 64  # the deepest real body (a score request) is 3 levels; Python's parsers recurse
# C0 controls and DEL: never part of an id, a filter or a path segment.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a valid pair decodes to one code point above U+FFFF
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
# Raw bytes that may decode to NUL or a surrogate: only bodies holding one are parsed here.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\x00")


def text_problem(value: str, *, controls: bool = False) -> str | None:
    """Why `value` cannot be stored (NUL, a lone surrogate; with `controls`, any control character), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if _LONE_SURROGATE.search(value):
        return "contains a lone UTF-16 surrogate (e.g. \\ud800), which is not text"
    if controls and _CONTROL.search(value):
        return "contains a control character; send printable text"
    return None


def normalised_id(field: str, value: str) -> str:
    """An identifier as stored and compared: NFKC (full-width "Ｅ１００" is "E100"), format characters
    (zero-width space, joiners, bidi marks) removed, surrounding space trimmed; a control character
    or unstorable text is refused. Without this "E100" and "E100\u200b" were two enterprises."""
    problem = text_problem(value, controls=True)
    if problem:
        raise InputError(field, f"{field} {problem}")
    text = unicodedata.normalize("NFKC", value)
    return "".join(char for char in text if unicodedata.category(char) != "Cf").strip()


def refuse_bad_text(fields: Mapping[str, Any], *, status_code: int = 422) -> None:
    """Raise InputError naming the first text field of `fields` that cannot be stored."""
    for name, value in fields.items():
        problem = text_problem(value) if isinstance(value, str) else None
        if problem:
            raise InputError(name, f"{name} {problem}", status_code=status_code)


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests deeper than `limit`, found without parsing (strings are skipped)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', body)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, text) of every key and string in a parsed JSON value, without recursion."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield where, key
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))


def json_body_problem(body: bytes) -> InputError | None:
    """The InputError for a JSON body that nests too deep or holds unstorable text, else None.
    A body that is not JSON passes: the handler answers it as it always has."""
    if json_too_deep(body):
        return InputError("body", f"the JSON nests deeper than {MAX_JSON_DEPTH} levels", status_code=422)
    if not _SUSPECT_ESCAPE.search(body):
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    for where, text in _strings(parsed, ""):
        problem = text_problem(text)
        if problem:
            field = where or "body"
            return InputError(field, f"{field} {problem}")
    return None


def query_problem(query_string: bytes) -> InputError | None:
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        for text in (name, value):
            problem = text_problem(text, controls=True)
            if problem:
                field = name if text_problem(name, controls=True) is None else "query"
                return InputError(field, f"the query parameter {field} {problem}", status_code=400)
    return None


def path_problem(path: str) -> InputError | None:
    problem = text_problem(path, controls=True)
    return None if problem is None else InputError("path", f"the URL path {problem}", status_code=400)


def _reads_json(scope: Scope) -> bool:
    """Bodies a handler may parse as JSON: everything but multipart uploads (they stream unread here).
    A form-encoded body is checked too: the body models read any other type as JSON, so a JSON text
    labelled as a form reached them unchecked (100,000 brackets: a RecursionError and a 500)."""
    if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
        return False
    content_type = (header(scope, b"content-type") or "").lower()
    return not content_type.startswith("multipart/")


class HostileInput:
    """Answers 400 for a NUL or control character in the path or a query parameter, and 422 for a
    JSON body nested too deep or holding a NUL or lone surrogate, naming the field; nothing runs."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = path_problem(scope.get("path", "")) or query_problem(scope.get("query_string", b""))
        if problem is None and _reads_json(scope):
            messages, body = await _buffer(receive)
            problem = json_body_problem(body)
            receive = _replay(messages, receive)
        if problem is not None:
            await respond(send, problem.status_code, json.dumps(problem.to_dict()).encode(), b"application/json")
            return
        await self.app(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[list[Message], bytes]:
    """The request's body messages (already bounded by BodySizeLimit outside) and the joined body."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    return messages, b"".join(message.get("body", b"") for message in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed

"""Plain-text tables for the command line that stay aligned with Chinese text in them: a CJK character
takes two columns of a terminal, so padding counts display columns, not characters."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def aligned(header: list[str], rows: list[list[str]], *, gap: int = 2) -> str:
    """The header and rows in columns as wide as their widest cell (the last column unpadded)."""
    widths = [max(display_width(row[i]) for row in [header, *rows]) + gap for i in range(len(header))]
    lines = [
        "".join(pad(cell, widths[i]) if i < len(header) - 1 else cell for i, cell in enumerate(row))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)

"""Errors in the user's words: a pydantic ValidationError or a YAML error becomes lines naming the file,
the key as the user wrote it, and the line, instead of the library's internal path and documentation links."""

from __future__ import annotations

from pydantic import ValidationError


def validation_message(exc: ValidationError, source: str) -> str:
    """One line per problem: `SOURCE: MESSAGE`, without pydantic's model names and URLs."""
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {message}")
    return "\n".join(lines)

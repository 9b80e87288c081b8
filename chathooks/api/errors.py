"""The error answers every API route can give, declared for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from chathooks.schemas import ErrorOut, ValidationErrorOut

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read (it is not UTF-8)."},
    401: {
        "model": ErrorOut,
        "description": "No bearer token, or one that is unknown (or was replaced by a new one).",
    },
    403: {
        "model": ErrorOut,
        "description": "This token may not do this (it needs the admin token).",
    },
    404: {"model": ErrorOut, "description": "Nothing with this id in your workspace."},
    409: {
        "model": ErrorOut,
        "description": "It exists already, or its state does not allow this right now.",
    },
    422: {
        "model": ValidationErrorOut,
        "description": "A field is wrong: each error's `loc` names it. Nothing was changed.",
    },
}
"""Given to each API router as ``responses=``."""

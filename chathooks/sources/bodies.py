"""A sender's body, parsed as its kind's ``WIRE`` says: JSON, or a form (Twilio).

A form is ``application/x-www-form-urlencoded`` UTF-8, read as ``{name: [values]}`` so
that a repeated name keeps every value (a signature covers them all).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from chathooks.sources.protocol import Wire

NOT_PARSED = object()
MAX_FORM_FIELDS = 10_000
"""Far more than any sender's form holds (Twilio's has a few dozen)."""
WHAT = {"json": "JSON", "form": "a form (application/x-www-form-urlencoded, UTF-8)"}


def parsed(wire: Wire, body: bytes) -> Any:
    """The parsed body, or ``NOT_PARSED``."""
    if wire.body == "form":
        fields = form(body)
        return NOT_PARSED if fields is None else fields
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # also nesting or numbers too big to parse
        return NOT_PARSED


def form(body: bytes) -> dict[str, list[str]] | None:
    """The form's fields, or None when the body is not ``name=value`` pairs in UTF-8."""
    try:
        return parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:  # also UnicodeDecodeError
        return None

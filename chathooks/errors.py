"""What a service refuses, in words the API (a 404, 409 or 422) and the pages both show."""

from __future__ import annotations


class Conflict(Exception):
    """The thing to create exists already."""


class NotFound(Exception):
    """No such thing in the caller's workspace (or anywhere: the caller can't tell)."""


class BadField(ValueError):
    """A field's value is well-formed but not acceptable; ``field`` names it (``key``: the
    entry of an object field, such as one of a source's ``secrets``)."""

    def __init__(self, field: str, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.key = key

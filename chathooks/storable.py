"""Text that every database can store: PostgreSQL refuses NUL, and no database (nor UTF-8)
holds a lone surrogate, which JSON can still carry (``"\\ud800"``).

Input is refused with a message naming the problem; what a receiver answers, which is
kept for the request log rather than refused, is cleaned instead.
"""

from __future__ import annotations


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored, or None if it can."""
    if "\x00" in value:
        return "must not contain a NUL character (\\u0000)"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def storable(text: str) -> str:
    """The text with NUL as U+FFFD and lone surrogates as ``\\udXXX``; never raises."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\ufffd")

"""Calling a sender's own API: building a ``Call`` and reading its answer defensively.

A sender may answer anything (an HTML error page from a proxy, an empty body, JSON of an
unexpected shape); these helpers make that "nothing to read" instead of an exception, so an
odd answer is reported in words, never raised inside the send stage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

from chathooks.sources.fields import obj
from chathooks.sources.protocol import Call, Secret

EXCERPT_CHARS = 200


def json_call(
    method: Literal["GET", "POST"],
    url: str,
    headers: Mapping[str, str],
    payload: Any = None,
) -> Call:
    """A call with a JSON body (none for ``payload=None``)."""
    if payload is None:
        return Call(method, url, {"accept": "application/json", **headers})
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Call(
        method,
        url,
        {"accept": "application/json", "content-type": "application/json", **headers},
        body,
    )


def base(url: str) -> str:
    """A sender's API URL as saved, ready for a path to follow."""
    return url.strip().rstrip("/")


def sending(
    name: str, label: str, *, role: Literal["credential", "address", "name"], hint: str
) -> Secret:
    """A secret only sending needs: the user's own, optional (without it a source only
    receives)."""
    return Secret(name, label, generated=False, required=False, role=role, hint=hint)


def public_api(label: str, default: str) -> Secret:
    """The ``api_url`` of a sender whose API is a public service (Meta's, Twilio's):
    optional, so that a test server or a proxy can stand in for it."""
    hint = f"Leave it empty: chathooks calls {default}. Only a test server or a proxy in "
    return sending("api_url", label, role="address", hint=hint + "front of it goes here.")


def root(secrets: Mapping[str, str], default: str) -> str:
    """The saved ``api_url``, else the sender's public API."""
    return base(secrets.get("api_url", "")) or default


def segment(value: str) -> str:
    """One path segment (an instance or session name, a number id), escaped."""
    return quote(value.strip(), safe="")


def answer(body: str) -> dict[str, Any]:
    """The answer as a JSON object, or ``{}``."""
    try:
        return obj(json.loads(body))
    except ValueError:
        return {}


def excerpt(body: str) -> str:
    """The start of an answer that is not the sender's JSON, on one line."""
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS] + "…"


def not_the_sender(sender: str, setting: str, body: str) -> str:
    """A success that is not the sender's answer: the URL reaches something else."""
    return (
        f"The answer is not {sender}'s ({excerpt(body) or 'an empty body'}): check the {setting}."
    )


def transient(status: int) -> bool:
    """Worth sending again later: too many requests, or the sender's own failure."""
    return status == 429 or status >= 500


def digits(phone: str) -> str:
    """A phone as the senders' APIs take it: digits only."""
    return "".join(c for c in phone if c.isdigit())

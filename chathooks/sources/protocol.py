"""What a kind of sender provides (SPEC §8), and the values it passes around.

A kind is a module of pure functions: how to screen a raw request (``screening``), what
message events and how many ignored events does its body hold, how to answer a GET, and a
correctly signed sample; and its ``WIRE``: the format of its sender's bodies (JSON or a
form) and what a stored request is answered with. ``sources.receive`` runs one request
through them. A kind module imports only this module and the shared helpers (``fields``,
``bodies``, ``screening``); ``sources.kinds`` lists the kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from chathooks.sources.screening import Screen


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A request as it arrived: lower-case header names, the body's exact bytes."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    """The URL the sender called, made from ``CHATHOOKS_PUBLIC_BASE_URL`` and the request's
    path and query (never from the host or scheme a proxy hands on), for senders that
    sign it (Twilio)."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret of a kind: ``generated`` ones chathooks makes for the user to paste into the
    sender; the others the user copies from the sender into chathooks."""

    name: str
    label: str
    generated: bool
    hint: str
    required: bool = True
    """An optional secret (not generated) may be left empty."""


@dataclass(frozen=True, slots=True)
class Wire:
    """How a kind's sender speaks HTTP: the format of its bodies, and the ``(media type,
    text)`` a stored request is answered with (``None``: the counts, as JSON)."""

    body: Literal["json", "form"]
    answer: tuple[str, str] | None = None


JSON = Wire("json")


@dataclass(slots=True)
class Reading:
    """What a body holds: message events (``MessageEvent`` input, validated by the caller),
    events that are not messages (ignored), and messages it could not read (rejected)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Handshake:
    """The answer to a GET: a status and a plain-text body."""

    status: int
    text: str


class Kind(Protocol):
    """What a kind's module provides (modules satisfy protocols in mypy)."""

    @property
    def NAME(self) -> str: ...
    @property
    def LABEL(self) -> str: ...
    @property
    def SECRETS(self) -> tuple[Secret, ...]: ...
    @property
    def SETUP(self) -> tuple[str, ...]: ...
    @property
    def WIRE(self) -> Wire: ...

    def screen(self, headers: Mapping[str, str], secrets: Mapping[str, str], *, url: str) -> Screen:
        """How to tell the request authentic, from its headers (and ``url``, the URL the
        sender called) on; the screen then takes the body's bytes, and the parsed body."""
        ...

    def read(self, body: Any) -> Reading: ...

    def handshake(self, query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake: ...

    def sample(
        self, secrets: Mapping[str, str], message_id: str, now: datetime, url: str
    ) -> RawRequest:
        """A correctly signed sample event, as the sender would post it to ``url``."""
        ...


def posts_only(query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake:
    """The GET answer of a kind whose sender never sends one."""
    return Handshake(405, "this source takes POST requests only")

"""What a kind of sender provides (SPEC §8), and the values it passes around.

A kind is a module of pure functions: is a raw request authentic, what message events and
how many ignored events does its body hold, how to answer a GET, and a correctly signed
sample. ``sources.receive`` runs one request through them. A kind module imports only this
module and ``sources.fields``; ``sources.kinds`` lists the kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A request as it arrived: lower-case header names, the body's exact bytes."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret of a kind: ``generated`` ones chathooks makes for the user to paste into the
    sender; the others the user copies from the sender into chathooks."""

    name: str
    label: str
    generated: bool
    hint: str


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

    def authentic(self, request: RawRequest, body: Any, secrets: Mapping[str, str]) -> bool: ...

    def read(self, body: Any) -> Reading: ...

    def handshake(self, query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake: ...

    def sample(self, secrets: Mapping[str, str], message_id: str, now: datetime) -> RawRequest: ...


def posts_only(query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake:
    """The GET answer of a kind whose sender never sends one."""
    return Handshake(405, "this source takes POST requests only")

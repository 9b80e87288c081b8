"""WhatsApp sources (SPEC §8): one module per kind of sender, behind one small protocol.

A kind is a module of pure functions: how to screen a raw request (``screening``), what
message events and how many ignored events does its body hold, how to answer a GET, and a
correctly signed sample. ``sources.receive`` runs one request through them; a fourth kind is one new
module added to ``KINDS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chathooks.sources.screening import Screen


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

    def screen(self, headers: Mapping[str, str], secrets: Mapping[str, str]) -> Screen: ...

    def read(self, body: Any) -> Reading: ...

    def handshake(self, query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake: ...

    def sample(self, secrets: Mapping[str, str], message_id: str, now: datetime) -> RawRequest: ...


def posts_only(query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake:
    """The GET answer of a kind whose sender never sends one."""
    return Handshake(405, "this source takes POST requests only")


def _kinds() -> dict[str, Kind]:
    from chathooks.sources import evolution, waha, whatsapp_cloud

    kinds: tuple[Kind, ...] = (whatsapp_cloud, waha, evolution)
    return {kind.NAME: kind for kind in kinds}


KINDS: dict[str, Kind] = _kinds()

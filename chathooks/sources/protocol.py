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
    role: Literal["credential", "address", "name"] = "credential"
    """``credential``: a key or token, 8 to 200 characters, masked in request logs and on
    the pages; ``address``: the sender's API URL (checked like a webhook URL, see
    ``CHATHOOKS_SENDER_HOSTS``); ``name``: an instance, session or number id, shown as is."""


@dataclass(frozen=True, slots=True)
class Wire:
    """How a kind's sender speaks HTTP: the format of its bodies, and the ``(media type,
    text)`` a stored request is answered with (``None``: the counts, as JSON)."""

    body: Literal["json", "form"]
    answer: tuple[str, str] | None = None


JSON = Wire("json")


@dataclass(frozen=True, slots=True)
class SendReport:
    """What the sender later reports about a message it sent for us (Cloud API
    ``statuses[]``, a WAHA or Evolution ack): ``failed`` with the sender's reason, or not."""

    message_id: str
    failed: bool
    error: str = ""


@dataclass(slots=True)
class Reading:
    """What a body holds: message events (``MessageEvent`` input, validated by the caller),
    events that are not messages (ignored), messages it could not read (rejected), and
    reports on messages sent through the sender's API (``chathooks.send`` applies them)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    rejected: list[str] = field(default_factory=list)
    reports: list[SendReport] = field(default_factory=list)


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


@dataclass(frozen=True, slots=True)
class Template:
    """A message template approved in Meta's WhatsApp Manager (Cloud API only): what Meta
    accepts outside the 24-hour customer-service window."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to send through the sender: to the chat it knows as ``chat_external_id``
    (a stored chat's ``external_id``; empty when a chat is started by ``phone``)."""

    chat_external_id: str
    phone: str
    is_group: bool
    text: str
    template: Template | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """A request to the sender's own API, built from a source's sending secrets."""

    method: Literal["GET", "POST"]
    url: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class SendAnswer:
    """What the sender's answer to a send ``Call`` means: ``sent`` (with the sender's
    message id, in the form its echo or its ``statuses`` carry), ``retry`` later (429, 5xx),
    or ``failed`` for good, with the sender's reason in plain words."""

    outcome: Literal["sent", "retry", "failed"]
    message_id: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    """The sender's answer to a check ``Call``: can this source send, and if not, why."""

    ok: bool
    words: str


class Sender(Protocol):
    """What a kind provides when chathooks can send through its sender's API (optional:
    ``sources.kinds.SENDERS`` lists the kinds that do). Pure functions: the ``send`` stage
    makes the HTTP request, through the one guarded transport, and records the result.

    ``SEND_SECRETS`` are the names, among the kind's ``SECRETS`` (all optional), that a
    source needs to send; ``PER_SECOND`` the default pace per WhatsApp account."""

    @property
    def NAME(self) -> str: ...
    @property
    def SEND_SECRETS(self) -> tuple[str, ...]: ...
    @property
    def PER_SECOND(self) -> float: ...

    def send_call(self, secrets: Mapping[str, str], reply: Reply) -> Call: ...

    def read_send(self, status: int, body: str) -> SendAnswer:
        """Reads an HTTP answer to ``send_call`` (errors without an answer are the
        caller's: always retried)."""
        ...

    def check_call(self, secrets: Mapping[str, str]) -> Call: ...

    def read_check(self, status: int, body: str) -> CheckAnswer: ...


def posts_only(query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake:
    """The GET answer of a kind whose sender never sends one."""
    return Handshake(405, "this source takes POST requests only")

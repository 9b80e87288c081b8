"""The one HTTP client that sends every webhook request, and every call to a sender's API:
aiohttp, bounded and guarded."""

from __future__ import annotations

import errno
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from chathooks.security import is_public_address
from chathooks.settings import host_port
from chathooks.states import TIMED_OUT
from chathooks.storable import storable

RESPONSE_BODY_LIMIT = 64 * 1024
RETRY_AFTER_STATUSES = (429, 503)
RETRY_AFTER_CAP_SECONDS = 7 * 24 * 3600.0
"""A receiver may ask for any wait; more than this is taken as this (record caps it lower)."""
_DELAY_SECONDS = re.compile("[0-9]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came back: a status with headers and (at most 64 KiB of) body, or an error.

    Every text in it is storable (no NUL, no lone surrogate), and ``retry_after`` is the
    receiver's ``Retry-After`` on 429/503 already parsed, in seconds: what a receiver sends
    is checked here, once, so nothing it sends can make recording the result fail.
    """

    status: int | None
    latency_ms: float
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""
    retry_after: float | None = None

    @property
    def success(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        return self.error if self.status is None else f"HTTP {self.status}"


class Transport(Protocol):
    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome: ...

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> Outcome: ...

    async def close(self) -> None: ...


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then refuses non-public addresses: the connect-time target check
    (``allowed``: the ``host:port`` pairs exempt from it)."""

    def __init__(self, allow_private: bool, allowed: frozenset[str] = frozenset()) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private and host_port(host, port) not in self._allowed:
            for result in results:
                if not is_public_address(result["host"]):
                    raise OSError(
                        errno.EACCES, f"{host} resolves to {result['host']}, a non-public address"
                    )
        return results

    async def close(self) -> None:
        await self._inner.close()


class AiohttpTransport:
    """Connect 5 s, total 15 s, no redirects followed, response body read up to 64 KiB.

    ``allowed_hosts``: ``host:port`` pairs that may be private (``CHATHOOKS_SENDER_HOSTS``,
    for the transport that calls senders' APIs; never the webhooks')."""

    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout: float,
        total_timeout: float,
        connections: int,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self._allow_private = allow_private
        self._allowed = frozenset(allowed_hosts)
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout, sock_connect=connect_timeout, connect=connect_timeout
        )
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections,
                limit_per_host=self._connections,
                resolver=GuardedResolver(self._allow_private, self._allowed),
                ttl_dns_cache=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        return await self.request("POST", url, headers, body)

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        """Any method, with the same guards, limits and reading as ``post``."""
        started = time.perf_counter()
        try:
            if not self._allow_private:
                _refuse_private_literal(url, self._allowed)
            async with self._client().request(
                method,
                url,
                data=body if body or method != "GET" else None,
                headers=headers,
                allow_redirects=False,
            ) as response:
                content = await _read_limited(response.content)
                return received(
                    response.status, _since(started), response.raw_headers, content, time.time()
                )
        except TimeoutError:
            return Outcome(status=None, latency_ms=_since(started), error=TIMED_OUT)
        except Exception as error:
            return failed(error, _since(started))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _refuse_private_literal(url: str, allowed: frozenset[str]) -> None:
    """aiohttp skips the resolver for an IP in the URL, so that IP is checked here."""
    parsed = yarl.URL(url)
    host = parsed.host or ""
    if parsed.port is not None and host_port(host, parsed.port) in allowed:
        return
    try:
        public = is_public_address(host)
    except ValueError:
        return
    if not public:
        raise OSError(errno.EACCES, f"{host} is a non-public address")


def received(
    status: int,
    latency_ms: float,
    raw_headers: Iterable[tuple[bytes, bytes]],
    content: bytes,
    now_epoch: float,
) -> Outcome:
    """An answer as chathooks keeps it, whatever bytes the receiver sent."""
    headers = storable_headers(raw_headers)
    return Outcome(
        status=status,
        latency_ms=latency_ms,
        headers=headers,
        body=decode_body(content, charset_of(_header(headers, "content-type"))),
        retry_after=(
            parse_retry_after(_header(headers, "retry-after"), now_epoch)
            if status in RETRY_AFTER_STATUSES
            else None
        ),
    )


def failed(error: BaseException, latency_ms: float) -> Outcome:
    """No answer: the error's text may quote what the receiver sent, so it is cleaned too."""
    return Outcome(
        status=None, latency_ms=latency_ms, error=storable(f"{type(error).__name__}: {error}")
    )


def storable_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names and values as text (bytes that are not UTF-8 become U+FFFD); a repeated
    header's values joined with ", ", as HTTP allows, instead of keeping one of them."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = _header_text(name), _header_text(value)
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _header_text(raw: bytes) -> str:
    return storable(raw.decode("utf-8", errors="replace"))


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds (ASCII digits only) or an
    HTTP-date, at most ``RETRY_AFTER_CAP_SECONDS``; anything else is None."""
    value = value.strip(" \t")
    if not value:
        return None
    if _DELAY_SECONDS.fullmatch(value):
        return min(float(value), RETRY_AFTER_CAP_SECONDS)
    if not value.isascii():
        return None
    try:
        moment = parsedate_to_datetime(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delay = moment.timestamp() - now_epoch
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(0.0, delay), RETRY_AFTER_CAP_SECONDS)


def charset_of(content_type: str) -> str:
    """The ``charset`` parameter of a Content-Type, or "" (most answers have none: those
    skip the parser)."""
    if "charset" not in content_type.lower():
        return ""
    message = Message()
    try:
        message["content-type"] = content_type
        charset = message.get_content_charset() or ""
    except Exception:
        return ""
    return charset if charset.isascii() else ""


def decode_body(content: bytes, charset: str) -> str:
    """The stored response body: its declared charset if it is a text encoding that
    decodes, else UTF-8; undecodable bytes become U+FFFD; never an exception."""
    if charset:
        try:
            return storable(content.decode(charset, errors="replace"))
        except Exception:  # unknown, not a text encoding ("rot13"), or no "replace" ("idna")
            pass
    return storable(content.decode("utf-8", errors="replace"))


async def _read_limited(stream: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < RESPONSE_BODY_LIMIT:
        chunk = await stream.read(RESPONSE_BODY_LIMIT - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

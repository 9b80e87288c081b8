"""The one HTTP client that sends every webhook request: aiohttp, bounded and guarded."""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from chathooks.security import is_public_address

RESPONSE_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came back: a status with headers and (at most 64 KiB of) body, or an error."""

    status: int | None
    latency_ms: float
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""

    @property
    def success(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def retry_after_seconds(self, now_epoch: float) -> float | None:
        """The receiver's ``Retry-After`` on 429/503, in seconds from now."""
        if self.status not in (429, 503):
            return None
        value = next((v for k, v in self.headers.items() if k.lower() == "retry-after"), "")
        if not value:
            return None
        if value.strip().isdigit():
            return float(value.strip())
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch)
        except (TypeError, ValueError):
            return None

    def describe(self) -> str:
        return self.error if self.status is None else f"HTTP {self.status}"


class Transport(Protocol):
    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome: ...

    async def close(self) -> None: ...


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then refuses non-public addresses: the connect-time target check."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                if not is_public_address(result["host"]):
                    raise OSError(
                        errno.EACCES, f"{host} resolves to {result['host']}, a non-public address"
                    )
        return results

    async def close(self) -> None:
        await self._inner.close()


class AiohttpTransport:
    """Connect 5 s, total 15 s, no redirects followed, response body read up to 64 KiB."""

    def __init__(
        self, *, allow_private: bool, connect_timeout: float, total_timeout: float, connections: int
    ) -> None:
        self._allow_private = allow_private
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
                resolver=GuardedResolver(self._allow_private),
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
        started = time.perf_counter()
        try:
            if not self._allow_private:
                _refuse_private_literal(url)
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                content = await _read_limited(response.content)
                return Outcome(
                    status=response.status,
                    latency_ms=_since(started),
                    headers=dict(response.headers),
                    body=_decode(content, response.charset),
                )
        except TimeoutError:
            return Outcome(status=None, latency_ms=_since(started), error="timed out")
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return Outcome(
                status=None, latency_ms=_since(started), error=f"{type(error).__name__}: {error}"
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _refuse_private_literal(url: str) -> None:
    """aiohttp skips the resolver for an IP in the URL, so that IP is checked here."""
    host = yarl.URL(url).host or ""
    try:
        public = is_public_address(host)
    except ValueError:
        return
    if not public:
        raise OSError(errno.EACCES, f"{host} is a non-public address")


def _decode(content: bytes, charset: str | None) -> str:
    """The stored response body: its declared charset, else UTF-8, never an exception."""
    try:
        return content.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


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

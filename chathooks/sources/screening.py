"""Is a request to a source's URL authentic? Decided on the raw bytes as they stream in,
before anything is parsed or stored, so that a flood of forged requests costs a hash and
no memory or database work; and, when refused, why (for the source's request log; the
sender only ever gets the same generic 401).

A kind's ``screen(headers, secrets)`` picks one of these screens: an HMAC of the raw body
in a header (Meta, WAHA), or a key inside the JSON body (Evolution), which is found in the
bytes first and checked properly once the body is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chathooks.sources.fields import obj, same_secret

REASONS = (
    "too_large",
    "not_json",
    "not_form",
    "signature_missing",
    "algorithm_unexpected",
    "signature_wrong",
    "apikey_missing",
    "apikey_wrong",
)
"""Why a request was refused: the ``reason`` label of the refusals metric."""


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    """One of ``REASONS``."""
    detail: str
    """For the source's request log: what the operator should look at."""


class Screen(Protocol):
    def feed(self, chunk: bytes) -> None:
        """The body's next bytes, as they arrive."""
        ...

    def verdict(self) -> Refusal | None:
        """Once the whole body was fed: why it is refused, or None."""
        ...

    def confirm(self, body: Any) -> Refusal | None:
        """The parsed body of a request the verdict let through: why it is refused after
        all, or None."""
        ...

    @property
    def refused(self) -> bool:
        """Refused already (from the headers alone): the body need not be kept."""
        ...


class HmacScreen:
    """A hex HMAC of the raw body in a header, computed as the body streams in."""

    def __init__(
        self,
        headers: Mapping[str, str],
        *,
        header: str,
        algorithm: str,
        key: str,
        prefix: str = "",
        algorithm_header: str = "",
    ) -> None:
        self.header = header
        given = headers.get(header)
        declared = headers.get(algorithm_header, algorithm).strip().lower()
        self.early: Refusal | None = None
        self.given = ""
        if given is None:
            self.early = Refusal("signature_missing", f"the {header} header is missing")
        elif algorithm_header and declared != algorithm:
            self.early = Refusal(
                "algorithm_unexpected",
                f"{algorithm_header} is {declared[:40]!r}, not {algorithm!r}",
            )
        elif not given.strip().lower().startswith(prefix):
            self.early = Refusal("algorithm_unexpected", f"{header} does not start with {prefix!r}")
        else:
            self.given = given.strip().lower().removeprefix(prefix)
        self.mac = hmac.new(key.encode(), digestmod=getattr(hashlib, algorithm))
        self.keyed = bool(key)

    @property
    def refused(self) -> bool:
        return self.early is not None

    def feed(self, chunk: bytes) -> None:
        if self.early is None:
            self.mac.update(chunk)

    def verdict(self) -> Refusal | None:
        if self.early is not None:
            return self.early
        if not (self.keyed and same_secret(self.given, self.mac.hexdigest())):
            return Refusal(
                "signature_wrong",
                f"the {self.header} signature does not match the body signed with this "
                "source's secret",
            )
        return None

    def confirm(self, body: Any) -> Refusal | None:
        return None


APIKEY = b'"apikey"'


class ApiKeyScreen:
    """Evolution's ``apikey`` in the body. Before parsing, the bytes must hold ``"apikey"``
    and the key as JSON writes it (so a body without them is refused without being
    parsed); after parsing, the body's top-level ``apikey`` must equal the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.needles = {"apikey": APIKEY, "key": json.dumps(key).encode()}
        self.found: set[str] = set()
        self.tail = b""
        self.overlap = max(len(n) for n in self.needles.values()) - 1

    @property
    def refused(self) -> bool:
        return False

    def feed(self, chunk: bytes) -> None:
        window = self.tail + chunk
        for name, needle in self.needles.items():
            if name not in self.found and needle in window:
                self.found.add(name)
        self.tail = window[-self.overlap :]

    def verdict(self) -> Refusal | None:
        if "apikey" not in self.found:
            return Refusal("apikey_missing", "the body has no apikey")
        if not self.key or "key" not in self.found:
            return self._wrong()
        return None

    def confirm(self, body: Any) -> Refusal | None:
        given = obj(body).get("apikey")
        if given is None:
            return Refusal("apikey_missing", "the body has no apikey")
        return None if same_secret(given, self.key) else self._wrong()

    @staticmethod
    def _wrong() -> Refusal:
        return Refusal("apikey_wrong", "the body's apikey is not this source's API key")

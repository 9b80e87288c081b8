"""Tokens, secrets and the safe-target rule for webhook URLs and senders' API URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from chathooks.settings import host_port

DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeTarget(ValueError):
    """A webhook URL that chathooks refuses to send to."""


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are high-entropy, so a plain SHA-256 is the right stored form (and indexable)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (cloud metadata), shared, reserved ranges."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(str(embedded))
    return ip.is_global and not ip.is_multicast


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches (mapped, 6to4, NAT64, compatible), if any:
    judged by that address, ``64:ff9b::a9fe:a9fe`` is the metadata service, not public."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


ALLOW_PRIVATE_HINT = "set CHATHOOKS_ALLOW_PRIVATE_TARGETS=true to allow it"
SENDER_HOSTS_HINT = "the operator can allow this host and port in CHATHOOKS_SENDER_HOSTS"


def check_url(url: str, allow_private: bool) -> str:
    """The URL if chathooks may send to it; raises ``UnsafeTarget`` saying why not.

    A host that does not resolve now is accepted: the same rule runs again at connect time.
    """
    host, port = _host_and_port(url)
    if not allow_private:
        _refuse_private(host, port, ALLOW_PRIVATE_HINT)
    return url


def check_sender_url(url: str, allow_private: bool, sender_hosts: Iterable[str]) -> str:
    """A sender's API URL (WAHA, Evolution): the webhook rule, except for the ``host:port``
    pairs the operator allows (``CHATHOOKS_SENDER_HOSTS``), which may be private."""
    host, port = _host_and_port(url)
    if not allow_private and host_port(host, port) not in set(sender_hosts):
        _refuse_private(host, port, SENDER_HOSTS_HINT)
    return url


def _host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("must be an http:// or https:// URL")
    if not parts.hostname:
        raise UnsafeTarget("has no host")
    try:
        port = parts.port
    except ValueError as error:
        raise UnsafeTarget(f"has a bad port: {error}") from None
    return parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _refuse_private(host: str, port: int, hint: str) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return
    for info in infos:
        address = str(info[4][0])
        if not is_public_address(address):
            raise UnsafeTarget(
                f"resolves to {address}, a loopback, private or link-local address ({hint})"
            )

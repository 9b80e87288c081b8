"""Where chathooks is reached: the address ``serve`` listens on, remembered so commands run
beside it print links that work, and whether a sender on another machine can reach a URL.
(Without ``CHATHOOKS_PUBLIC_BASE_URL``, ``Settings.base_url`` is the listening address.)"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from chathooks.store import tenants

GUIDE = "docs/going-live.md"
"""The guide every reachability warning points to (served at ``GUIDE_PATH`` as well)."""
GUIDE_PATH = "/guide/going-live"
SERVED_URL_KEY = "served_base_url"
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def remember_served(session: Session, url: str) -> None:
    """Noted by ``serve`` and ``api`` once they listen (only without a public base URL)."""
    if tenants.get_meta(session, SERVED_URL_KEY) != url:
        tenants.set_meta(session, SERVED_URL_KEY, url)


def served_url(session: Session) -> str | None:
    return tenants.get_meta(session, SERVED_URL_KEY)


def _host_problem(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return f"{host} is this machine itself"
        if "." not in name or name.endswith(_LOCAL_SUFFIXES):
            return f"{host} is a name only this network knows"
        return None
    if address.is_loopback or address.is_unspecified:
        return f"{host} is this machine itself (loopback)"
    if not address.is_global:
        return f"{host} is a private address"
    return None


def reachability_warning(url: str) -> str | None:
    """Why Meta, WAHA or Evolution API on another machine cannot use ``url``, or None."""
    parts = urlsplit(url)
    problems = []
    if problem := _host_problem(parts.hostname or ""):
        problems.append(
            f"{problem}, so Meta, or WAHA and Evolution API on another machine, cannot reach it"
        )
    if parts.scheme != "https":
        problems.append(
            "it is plain http, which Meta refuses and which carries every message unencrypted"
        )
    if not problems:
        return None
    return (
        f"Senders elsewhere cannot use this URL: {'; '.join(problems)}. Set "
        "CHATHOOKS_PUBLIC_BASE_URL to this server's public https address; "
        f"{GUIDE} shows how, step by step."
    )

"""One typed settings object, read from ``CHATHOOKS_*`` environment variables and ``.env``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_WILDCARDS = {"", "0.0.0.0", "::"}


def listening_url(host: str, port: int) -> str:
    """The URL of a server bound to ``host``: a wildcard address is reached on loopback."""
    shown = "127.0.0.1" if host in _WILDCARDS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def host_port(host: str, port: int) -> str:
    """How ``sender_hosts`` and a URL's host are compared: lower case, IPv6 without
    brackets, the port always written."""
    return f"{host.strip('[]').lower()}:{port}"


Port = Annotated[int, Field(ge=0, le=65535)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
SECRET_SETTINGS = frozenset({"admin_token", "smtp_password", "session_secret", "database_url"})
"""Settings whose value an error message never repeats (a database URL may hold a password)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATHOOKS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./chathooks.db"
    host: str = "127.0.0.1"
    port: Port = 8000
    public_base_url: str = ""
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1", "::1"]
    """Proxies (addresses or networks, comma-separated; ``*`` for any) whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; anyone else's are ignored."""
    admin_token: str = ""
    allow_private_targets: bool = False
    sender_hosts: Annotated[list[str], NoDecode] = []
    """``host:port`` pairs (comma-separated) a source's sending URL (WAHA's or Evolution's
    API) may reach even when they resolve to a private or loopback address: the operator's
    allowance for senders on its own network. Tenants cannot widen it; webhooks never use
    it."""

    smtp_host: str = ""
    smtp_port: Port = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "chathooks@localhost"
    outbox_dir: Path = Path("./outbox")

    retry_base_seconds: Positive = 10.0
    retry_max_seconds: Positive = 3600.0
    retry_after_max_seconds: Positive = 86400.0
    disable_after_failures: Count = 10

    connect_timeout_seconds: Positive = 5.0
    total_timeout_seconds: Positive = 15.0
    delivery_concurrency: Count = 64
    claim_batch_size: Count = 500
    lease_seconds: Positive = 60.0
    poll_interval_seconds: Positive = 0.5
    fallback_poll_seconds: Positive = 5.0
    """How often a worker that PostgreSQL notifies still looks for due work (retries after
    a back-off, periods that ended, a lost notification)."""

    send_per_second: Positive | None = None
    """Messages per second sent through one WhatsApp account; unset: each kind's own pace
    (WAHA and Evolution 1, the Cloud API and Twilio 20), held by every worker together."""
    send_concurrency: Count = 16
    """Sends in flight at once per worker (each chat sends one at a time)."""
    send_give_up_seconds: Positive = 86400.0
    """A send the sender keeps answering with a 5xx or a timeout fails this long after it
    was queued (by then WhatsApp's 24-hour window for a free-form reply has closed)."""

    retention_days: Count = 30
    retention_interval_seconds: Positive = 300.0
    retention_batch_size: Count = 500

    metrics_port: Port = 9108
    """Where ``chathooks worker`` serves /metrics, /healthz and /readyz (on ``host``)."""
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    session_secret: str = ""
    login_attempts_per_account: Count = 10
    login_attempts_per_address: Count = 100

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, url: str) -> str:
        """``postgresql://`` means psycopg 3 here, the driver the project installs."""
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError:
            backend = ""
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("must be sqlite:///FILE or postgresql://USER@HOST/DATABASE")
        return url

    @field_validator("trusted_proxies", "sender_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, proxies: list[str]) -> list[str]:
        """uvicorn would take a typo for a host name and trust nobody, silently."""
        for proxy in proxies:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{proxy!r} is not an IP address or network (e.g. 10.0.0.0/8) or *"
                    ) from None
        return proxies

    @field_validator("sender_hosts")
    @classmethod
    def _host_and_port(cls, pairs: list[str]) -> list[str]:
        """Each entry names one host and one port (``waha.internal:3000``, ``[fd00::5]:8080``):
        an allowance never covers a whole host or network."""
        checked = []
        for pair in pairs:
            host, colon, port = pair.rpartition(":")
            if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{pair!r} is not host:port (e.g. waha.internal:3000)")
            checked.append(host_port(host, int(port)))
        return checked

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level.upper()

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> Settings:
        """A worker starts a request only with this much lease left; a shorter lease would
        hand every delivery back unsent."""
        if self.lease_seconds <= self.total_timeout_seconds:
            raise ValueError(
                f"CHATHOOKS_LEASE_SECONDS ({self.lease_seconds:g}) must be longer than "
                f"CHATHOOKS_TOTAL_TIMEOUT_SECONDS ({self.total_timeout_seconds:g})"
            )
        return self

    @property
    def base_url(self) -> str:
        """Base of every URL chathooks shows (sources, ``chat_url``, permalinks, set-password
        links), without a trailing slash."""
        return (self.public_base_url or listening_url(self.host, self.port)).rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def problems(error: ValidationError) -> list[str]:
    """One line per bad setting, naming its variable and what it accepts (a secret's value
    is never repeated)."""
    lines = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        if not problem["loc"]:  # a rule across settings: its message names them
            lines.append(f"invalid configuration: {message}")
            continue
        name = str(problem["loc"][0])
        given = "" if name in SECRET_SETTINGS else f"={problem['input']}"
        lines.append(
            f"invalid setting CHATHOOKS_{name.upper()}{given}: {message[0].lower()}{message[1:]}"
        )
    return lines

"""One typed settings object, read from ``CHATHOOKS_*`` environment variables and ``.env``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_WILDCARDS = {"", "0.0.0.0", "::"}


def listening_url(host: str, port: int) -> str:
    """The URL of a server bound to ``host``: a wildcard address is reached on loopback."""
    shown = "127.0.0.1" if host in _WILDCARDS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATHOOKS_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./chathooks.db"
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1", "::1"]
    """Proxies (addresses or networks, comma-separated; ``*`` for any) whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; anyone else's are ignored."""
    admin_token: str = ""
    allow_private_targets: bool = False

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "chathooks@localhost"
    outbox_dir: Path = Path("./outbox")

    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 3600.0
    retry_after_max_seconds: float = 86400.0
    disable_after_failures: int = 10

    connect_timeout_seconds: float = 5.0
    total_timeout_seconds: float = 15.0
    delivery_concurrency: int = 64
    claim_batch_size: int = 500
    lease_seconds: float = 60.0
    poll_interval_seconds: float = 0.5
    fallback_poll_seconds: float = 5.0
    """How often a worker that PostgreSQL notifies still looks for due work (retries after
    a back-off, periods that ended, a lost notification)."""

    retention_days: int = Field(default=30, ge=1)
    retention_interval_seconds: float = 300.0
    retention_batch_size: int = 500

    metrics_port: int = 9108
    """Where ``chathooks worker`` serves /metrics, /healthz and /readyz (on ``host``)."""
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    session_secret: str = ""
    login_attempts_per_account: int = Field(default=10, ge=1)
    login_attempts_per_address: int = Field(default=100, ge=1)

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, url: str) -> str:
        """``postgresql://`` means psycopg 3 here, the driver the project installs."""
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("trusted_proxies", mode="before")
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

"""The deploy files: systemd units that systemd itself accepts, and an environment file
that chathooks reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

from chathooks.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV = ROOT / ".venv"


@pytest.mark.parametrize(
    ("unit", "instance"),
    [
        ("chathooks.service", "chathooks.service"),
        ("chathooks-api.service", "chathooks-api.service"),
        ("chathooks-worker@.service", "chathooks-worker@9101.service"),
    ],
)
def test_systemd_units_verify(unit: str, instance: str, tmp_path: Path) -> None:
    """``systemd-analyze verify`` with the virtualenv where this checkout has it (the units
    name /opt/chathooks/.venv); any warning fails the test."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed (Debian: apt-get install systemd)")
    text = (DEPLOY / unit).read_text().replace("/opt/chathooks/.venv", str(VENV))
    (tmp_path / unit).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / instance)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_worker_unit_passes_its_instance_as_the_metrics_port() -> None:
    text = (DEPLOY / "chathooks-worker@.service").read_text()
    assert "Environment=CHATHOOKS_METRICS_PORT=%i" in text
    assert "ExecStart=/opt/chathooks/.venv/bin/chathooks worker" in text


def _example(name: str) -> Settings:
    """Every line names a setting chathooks has, and the values parse."""
    path = DEPLOY / name
    names = {name.removeprefix("CHATHOOKS_").lower() for name in dotenv_values(path)}
    assert names <= set(Settings.model_fields)
    return Settings(_env_file=path)  # type: ignore[call-arg]


def test_example_environment_file_is_valid_configuration() -> None:
    settings = _example("chathooks.env.example")
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.log_format == "json"
    assert settings.retention_days == 30


def test_one_box_environment_file_puts_chathooks_behind_caddy_on_https() -> None:
    """The unit's SQLite file is in its only writable directory; chathooks listens where the
    Caddyfile's default upstream is, and believes Caddy's X-Forwarded-For."""
    settings = _example("one-box.env.example")
    assert "ReadWritePaths=/var/lib/chathooks" in (DEPLOY / "chathooks.service").read_text()
    assert settings.database_url == "sqlite:////var/lib/chathooks/chathooks.db"
    assert settings.base_url == "https://chathooks.example.com"
    assert f"{settings.host}:{settings.port}" == "127.0.0.1:8000"
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "{$CHATHOOKS_DOMAIN:chathooks.example.com}" in caddyfile
    assert "{$CHATHOOKS_UPSTREAM:127.0.0.1:8000}" in caddyfile
    assert "127.0.0.1" in settings.trusted_proxies

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


def test_example_environment_file_is_valid_configuration() -> None:
    """Every line names a setting chathooks has, and the values parse."""
    path = DEPLOY / "chathooks.env.example"
    names = {name.removeprefix("CHATHOOKS_").lower() for name in dotenv_values(path)}
    assert names <= set(Settings.model_fields)
    settings = Settings(_env_file=path)  # type: ignore[call-arg]
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.log_format == "json"
    assert settings.retention_days == 30

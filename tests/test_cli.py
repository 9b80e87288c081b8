"""The ``chathooks`` command as an operator uses it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chathooks.settings import Settings
from chathooks.store.database import make_engine
from chathooks.store.models import Base


def _chathooks(
    database_url: str,
    *args: str,
    input_text: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chathooks", *args],
        check=False,
        env={
            **os.environ,
            "CHATHOOKS_DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        },
        text=True,
        capture_output=True,
        input=input_text,
        timeout=60,
        cwd=cwd,
    )


def _create_workspace(database_url: str, owner_email: str) -> subprocess.CompletedProcess[str]:
    return _chathooks(
        database_url,
        "create-workspace",
        "--name",
        "Acme",
        "--owner-name",
        "Olive",
        "--owner-email",
        owner_email,
    )


def test_schema_from_migrations_matches_the_models(database_url: str) -> None:
    engine = make_engine(Settings(database_url=database_url).database_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_create_workspace_prints_a_working_token(database_url: str, start_service: Any) -> None:
    done = _create_workspace(database_url, "olive@acme.test")
    assert done.returncode == 0, done.stderr
    token = done.stdout.split("API token: ")[1].split()[0]
    assert "/set-password/" in done.stdout
    service = start_service()
    answer = service.http.get(
        "/api/v1/outbound-webhooks", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200


def test_cli_errors_name_the_problem(database_url: str) -> None:
    bad = _create_workspace(database_url, "not-an-address")
    assert bad.returncode != 0
    assert "--owner-email" in bad.stderr and "e-mail" in bad.stderr
    unknown = _chathooks(
        database_url, "set-password", "nobody@acme.test", "--password", "long enough password"
    )
    assert unknown.returncode == 1
    assert "no teammate with e-mail nobody@acme.test" in unknown.stderr
    _create_workspace(database_url, "o@acme.test")
    short = _chathooks(database_url, "set-password", "o@acme.test", "--password", "short")
    assert short.returncode == 1
    assert "at least 8 characters" in short.stderr


def test_serve_says_where_it_listens_and_prints_the_admin_token_once(tmp_path: Path) -> None:
    env = {**os.environ, "CHATHOOKS_DATABASE_URL": "sqlite:///./fresh.db", "PYTHONUNBUFFERED": "1"}
    env.pop("CHATHOOKS_ADMIN_TOKEN", None)

    def start() -> tuple[subprocess.Popen[str], list[str]]:
        """``serve --port 0``, up to the banner's database line."""
        process = subprocess.Popen(
            [sys.executable, "-m", "chathooks", "serve", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        return process, lines

    def stop(process: subprocess.Popen[str]) -> str:
        process.terminate()
        process.wait(20)
        assert process.stdout is not None
        with process.stdout:
            return process.stdout.read()

    process, banner = start()
    url = banner[0].split("is running on ")[1].strip()
    assert banner[1].split() == ["pages:", url + "/"]
    assert banner[3].split()[:2] == ["database:", "sqlite:///./fresh.db"]
    assert str(tmp_path / "fresh.db") in banner[3]
    # The docs page answers at the printed address, its scripts served by chathooks itself.
    docs = httpx.get(url + "/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    rest = stop(process)
    tokens = re.findall(r"^    (chka_\S+)$", rest, flags=re.MULTILINE)
    assert len(tokens) == 1, rest
    assert "shown only now" in rest

    process, banner = start()
    assert "is running on" in banner[0]
    assert "chka_" not in stop(process)


def test_version_and_help_name_the_configuration(tmp_path: Path) -> None:
    version = _chathooks("sqlite:///./x.db", "--version")
    assert version.returncode == 0 and re.fullmatch(r"chathooks \d+\.\d+\.\d+\n", version.stdout)
    url = "sqlite:///./teams.db"
    serve_help = _chathooks(url, "serve", "--help", cwd=tmp_path)
    assert serve_help.returncode == 0
    text = " ".join(serve_help.stdout.split())
    assert "--host" in text and "--port" in text
    assert f"Database in use: {url}" in text
    for name in (
        "CHATHOOKS_DATABASE_URL",
        "CHATHOOKS_ALLOW_PRIVATE_TARGETS",
        "CHATHOOKS_SMTP_HOST",
    ):
        assert name in text
    password_help = _chathooks(url, "set-password", "--help", cwd=tmp_path)
    assert "prompts for the password" in " ".join(password_help.stdout.split())
    hidden = _chathooks("postgresql://chathooks:s3cret@db.internal/chathooks", "--help")
    assert "Database in use: postgresql+psycopg://chathooks:***@db.internal/chathooks" in " ".join(
        hidden.stdout.split()
    )
    assert "s3cret" not in hidden.stdout


def test_serve_refuses_a_bad_port_naming_it(tmp_path: Path) -> None:
    bad = _chathooks(f"sqlite:///{tmp_path / 'x.db'}", "serve", "--port", "-1")
    assert bad.returncode == 2
    assert "--port" in bad.stderr

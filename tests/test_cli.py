"""The ``chathooks`` command as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chathooks.settings import Settings
from chathooks.store.database import make_engine
from chathooks.store.models import Base


def _chathooks(
    database_url: str, *args: str, input_text: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATHOOKS_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chathooks", *args],
        env=env,
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


def test_serve_generates_and_prints_the_admin_token_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {
        **os.environ,
        "CHATHOOKS_DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "CHATHOOKS_PORT": "0",
    }
    env.pop("CHATHOOKS_ADMIN_TOKEN", None)

    def first_line() -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "chathooks", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        process.terminate()
        process.wait(20)
        return line

    printed = first_line()
    assert printed.startswith("Generated the admin token")
    assert "chka_" in printed
    assert first_line().startswith("chathooks listening on")

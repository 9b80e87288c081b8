"""What the ``chathooks`` command says when something is wrong or missing: one line that
names the problem, never a traceback, and nothing created on the way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from chathooks.cli import app
from tests.conftest import PG_ADMIN_URL, _pg_reachable
from tests.test_cli import _chathooks

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
ARGUMENTS = {
    "create-workspace": ["--name", "Acme", "--owner-name", "Olive", "--owner-email", "o@a.test"],
    "set-password": ["o@a.test", "--password", "long enough password"],
    "backup": ["copy.db"],
}
READS_SETTINGS = [c for c in COMMANDS if c != "listen"]


def test_every_command_is_covered() -> None:
    assert set(COMMANDS) >= {"serve", "api", "worker", "status", "backup", "migrate"}


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_value_names_and_plain_flags(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, as the installed command runs it (the subprocess tests below show that
    the process itself behaves alike)."""
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, [*command.split(), "--help"])
    assert done.exit_code == 0, done.output
    options = done.stdout.split("Options:")[1]
    assert re.search(r"^  --help\s+Show this message", options, re.MULTILINE)
    assert not re.search(r"<[a-z ]+>", options), options  # Typer's "<bool>", "<int range>" ...
    assert not (tmp_path / "x.db").exists()


def test_help_names_each_value_the_click_way(tmp_path: Path) -> None:
    serve = _chathooks("sqlite:///./x.db", "serve", "--help", cwd=tmp_path).stdout
    assert "--port INTEGER" in serve and "--host TEXT" in serve
    assert "--log-level [critical|error|warning|info|debug]" in serve
    top = CliRunner().invoke(app, ["--help"]).stdout
    assert re.search(r"^  --version\s+Print the version\.$", top, re.MULTILINE)


BAD_RETENTION = (
    "invalid setting CHATHOOKS_RETENTION_DAYS=0: input should be greater than or equal to 1"
)


@pytest.mark.parametrize("command", READS_SETTINGS)
def test_a_bad_setting_stops_every_command_with_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CHATHOOKS_RETENTION_DAYS": "0", "CHATHOOKS_DATABASE_URL": "sqlite:///./x.db"}
    done = CliRunner().invoke(app, [command, *ARGUMENTS.get(command, [])], env=env)
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [BAD_RETENTION]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["serve", "status"])
def test_a_bad_setting_stops_the_process_without_a_traceback(command: str, tmp_path: Path) -> None:
    done = _chathooks(
        "sqlite:///./x.db", command, cwd=tmp_path, env={"CHATHOOKS_RETENTION_DAYS": "0"}
    )
    assert (done.returncode, done.stderr.splitlines(), done.stdout) == (2, [BAD_RETENTION], "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CHATHOOKS_PORT", "eighty", "CHATHOOKS_PORT=eighty: input should be a valid integer"),
        ("CHATHOOKS_LOG_LEVEL", "loud", "CHATHOOKS_LOG_LEVEL=loud: must be one of CRITICAL"),
        ("CHATHOOKS_DATABASE_URL", "mysql://u:pw@h/db", "CHATHOOKS_DATABASE_URL: must be sqlite"),
        ("CHATHOOKS_LEASE_SECONDS", "5", "CHATHOOKS_LEASE_SECONDS (5) must be longer than"),
    ],
)
def test_a_bad_setting_is_named_with_what_it_accepts(
    name: str, value: str, says: str, tmp_path: Path
) -> None:
    env = {name: value, "CHATHOOKS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = CliRunner().invoke(app, ["migrate"], env={**env, name: value})
    assert done.exit_code == 2
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr
    assert "pw" not in done.stderr, "a database URL's password is never repeated"


@pytest.mark.parametrize("command", ["status", "set-password", "rotate-admin-token"])
def test_commands_on_existing_rows_never_create_a_database(command: str, tmp_path: Path) -> None:
    done = _chathooks("sqlite:///./absent.db", command, *ARGUMENTS.get(command, []), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"no SQLite database at {tmp_path / 'absent.db'} (CHATHOOKS_DATABASE_URL is "
        "sqlite:///./absent.db, relative to the working directory): 'chathooks migrate' or "
        "the first 'chathooks serve' creates it"
    ]
    assert list(tmp_path.iterdir()) == []


def test_status_on_a_database_without_chathooks_tables_creates_none(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    done = _chathooks(f"sqlite:///{tmp_path / 'empty.db'}", "status")
    assert done.returncode == 1
    assert "has no chathooks tables" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "empty.db").stat().st_size == 0


def test_status_names_a_postgresql_database_that_is_not_there() -> None:
    if not _pg_reachable():
        pytest.skip("PostgreSQL is not reachable")
    absent = PG_ADMIN_URL.rsplit("/", 1)[0] + "/chathooks_never_created"
    done = _chathooks(absent, "status")
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert 'database "chathooks_never_created" does not exist' in done.stderr

"""The ``chathooks`` command: run the service, its parts, and a few operator tasks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from chathooks import workspaces
from chathooks.admin import ensure_admin_token, rotate_admin_token
from chathooks.app import create_app, create_worker_app
from chathooks.backup import BackupRefused, backup_sqlite
from chathooks.logconfig import configure_logging, logging_config
from chathooks.logins import password_link, set_password
from chathooks.runtime import Runtime, build_runtime
from chathooks.settings import Settings
from chathooks.status import status_lines
from chathooks.store import tenants
from chathooks.store.database import migrate

log = logging.getLogger("chathooks")

app = typer.Typer(
    help="chathooks: forwards a team's WhatsApp messages to outbound webhooks.",
    no_args_is_help=True,
    add_completion=False,
)


def _prepared() -> Runtime:
    settings = Settings()
    configure_logging(settings)
    migrate(settings.database_url)
    return build_runtime(settings)


def _say(rt: Runtime, text: str) -> None:
    """A start-up line: printed, or logged as JSON when the logs are JSON."""
    if rt.settings.log_format == "json":
        log.info(text)
    else:
        typer.echo(text)


def _announce_admin_token(rt: Runtime) -> None:
    with rt.transaction() as session:
        token = ensure_admin_token(session, rt.settings)
    if token:
        typer.echo(f"Generated the admin token (shown once, keep it): {token}")


def _run_http(rt: Runtime, *, run_worker: bool) -> None:
    _announce_admin_token(rt)
    _say(
        rt,
        f"chathooks listening on http://{rt.settings.host}:{rt.settings.port} "
        f"(public base URL {rt.settings.base_url}, database {_shown(rt)})",
    )
    uvicorn.run(
        create_app(rt, run_worker=run_worker),
        host=rt.settings.host,
        port=rt.settings.port,
        log_config=logging_config(rt.settings),
    )


def _shown(rt: Runtime) -> str:
    """The database URL without its password."""
    return rt.engine.url.render_as_string(hide_password=True)


@app.command()
def serve() -> None:
    """Run everything in one process: API, pages, delivery worker and period scheduler."""
    _run_http(_prepared(), run_worker=True)


@app.command()
def api() -> None:
    """Run only the API and pages (deliveries are left to "chathooks worker" processes)."""
    _run_http(_prepared(), run_worker=False)


@app.command()
def worker() -> None:
    """Run only a delivery worker; start as many as you like on PostgreSQL. It serves
    /healthz, /readyz and /metrics on CHATHOOKS_METRICS_PORT; SIGTERM stops it gracefully."""
    rt = _prepared()
    s = rt.settings
    _say(
        rt,
        f"chathooks worker on {_shown(rt)}; probes and metrics on http://{s.host}:{s.metrics_port}",
    )
    uvicorn.run(
        create_worker_app(rt),
        host=s.host,
        port=s.metrics_port,
        log_config=logging_config(s),
        access_log=False,
    )


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date ("serve", "api" and "worker" do this too)."""
    settings = Settings()
    migrate(settings.database_url)
    typer.echo("database schema is up to date")


@app.command("create-workspace")
def create_workspace(
    name: Annotated[str, typer.Option(help="The team's name.")],
    owner_name: Annotated[str, typer.Option(help="The owner's full name.")],
    owner_email: Annotated[str, typer.Option(help="The owner's e-mail; alerts go there.")],
) -> None:
    """Create a workspace and print its API token and the owner's set-password link."""
    if "@" not in owner_email:
        raise typer.BadParameter("must be an e-mail address", param_hint="--owner-email")
    rt = _prepared()
    with rt.transaction() as session:
        new = workspaces.create_workspace(
            session, name=name, owner_name=owner_name, owner_email=owner_email, now=rt.clock.now()
        )
    link = password_link(rt, new.owner)
    typer.echo(
        f"workspace {new.workspace.id} created\nAPI token: {new.api_token}\n"
        f"owner's set-password link: {link}"
    )


@app.command("set-password")
def set_password_command(
    email: Annotated[str, typer.Argument(help="The teammate's e-mail.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a teammate's password for the web pages."""
    rt = _prepared()
    with rt.transaction() as session:
        found = tenants.teammates_by_email_anywhere(session, email.lower())
        if not found:
            typer.echo(f"no teammate with e-mail {email}", err=True)
            raise typer.Exit(1)
        try:
            for teammate in found:
                set_password(teammate, password)
        except ValueError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
    typer.echo(f"password set for {email}")


@app.command("rotate-admin-token")
def rotate_admin_token_command() -> None:
    """Replace the generated admin token (when CHATHOOKS_ADMIN_TOKEN is not set)."""
    rt = _prepared()
    if rt.settings.admin_token:
        typer.echo("CHATHOOKS_ADMIN_TOKEN is set; change it there", err=True)
        raise typer.Exit(1)
    with rt.transaction() as session:
        token = rotate_admin_token(session)
    typer.echo(f"new admin token: {token}")


@app.command("status")
def status_command() -> None:
    """Show the database's size and schema, the oldest kept message, retention and what waits."""
    rt = _prepared()
    lines = status_lines(rt)
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        typer.echo(f"{name + ':':<{width + 1}} {value}")


@app.command("backup")
def backup_command(
    path: Annotated[Path, typer.Argument(help="The file to write; it must not exist yet.")],
) -> None:
    """Copy the SQLite database to PATH while chathooks runs (SQLite's online backup).
    For PostgreSQL use pg_dump."""
    settings = Settings()
    try:
        pages = backup_sqlite(settings.database_url, path)
    except BackupRefused as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {settings.database_url} to {path} ({pages} pages)")

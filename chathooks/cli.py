"""The ``chathooks`` command: run the service, its parts, and a few operator tasks."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from chathooks import __version__, workspaces
from chathooks.admin import ensure_admin_token, rotate_admin_token
from chathooks.app import create_app, create_worker_app
from chathooks.listen import listen, signing_key
from chathooks.logconfig import configure_logging, logging_config
from chathooks.logins import password_link, set_password
from chathooks.memory import limit_malloc_arenas
from chathooks.public_url import remember_served, served_url
from chathooks.runtime import Runtime, build_runtime
from chathooks.settings import Settings, problems
from chathooks.status import status_lines
from chathooks.store import tenants
from chathooks.store.backup import BackupRefused, backup_sqlite
from chathooks.store.database import NoDatabase, migrate, require_existing


def shown_database(url: str) -> str:
    """The database URL as an operator recognises it: password hidden, SQLite's file whole."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return f"{url} (the file {Path(parsed.database).resolve()})"
    return parsed.render_as_string(hide_password=True)


def _configuration_help() -> str:
    names = ", ".join(f"CHATHOOKS_{name.upper()}" for name in Settings.model_fields)
    try:
        database = shown_database(Settings().database_url)
    except ValidationError as error:
        database = f"none: the configuration is invalid ({error.error_count()} errors)"
    return (
        f"Database in use: {database}.\n\n"
        "Configuration comes from environment variables, or the same lines in a .env file "
        f"in the working directory: {names}. The README's Configuration section says what "
        "each one does."
    )


CONFIGURATION_HELP = _configuration_help()

log = logging.getLogger("chathooks")

app = typer.Typer(
    epilog=CONFIGURATION_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
"""Plain click help: Typer's rich panels label every flag, ``--help`` too, as taking a
``<bool>`` value. Options that take one name it in click's words (``metavar``)."""


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"chathooks {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """chathooks: forwards a team's WhatsApp messages to outbound webhooks."""


def _settings(**overrides: str | int | None) -> Settings:
    """Settings from the environment; options given on the command line win. A bad one
    stops the command with a line per problem, naming the variable, never a traceback."""
    given: dict[str, Any] = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        for line in problems(error):
            typer.echo(line, err=True)
        raise typer.Exit(2) from None


def _prepared(*, existing: bool = False, **overrides: str | int | None) -> Runtime:
    """The runtime, on a schema brought up to date; ``existing``: only on a database that
    is there already (a command that works on its rows never creates an empty one)."""
    limit_malloc_arenas()
    settings = _settings(**overrides)
    configure_logging(settings)
    if existing:
        _require_database(settings)
    migrate(settings.database_url)
    return build_runtime(settings)


def _require_database(settings: Settings) -> None:
    try:
        require_existing(settings.database_url)
    except NoDatabase as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


def _say(settings: Settings, text: str) -> None:
    """A start-up line: printed, or logged as JSON when the logs are JSON."""
    if settings.log_format == "json":
        log.info(text)
    else:
        typer.echo(text)


Host = Annotated[
    str | None,
    typer.Option(
        metavar="TEXT", help="Address to listen on (default: CHATHOOKS_HOST, else 127.0.0.1)."
    ),
]
Port = Annotated[
    int | None,
    typer.Option(
        metavar="INTEGER",
        help="Port to listen on (default: CHATHOOKS_PORT, else 8000).",
        min=0,
        max=65535,
    ),
]
LogLevel = Annotated[
    Literal["critical", "error", "warning", "info", "debug"],
    typer.Option(
        metavar="[critical|error|warning|info|debug]",
        help="uvicorn's log level; info also prints every request it answers.",
    ),
]


class _AnnouncingServer(uvicorn.Server):
    """uvicorn, saying where it listens once it does (the port may have been 0)."""

    def __init__(
        self, config: uvicorn.Config, rt: Runtime, admin_token: str | None, *, first_start: bool
    ) -> None:
        super().__init__(config)
        self.rt = rt
        self.admin_token = admin_token
        self.first_start = first_start

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            self.follow_port(port)
            self.announce(f"http://{self.config.host}:{port}")

    def follow_port(self, port: int) -> None:
        """Without a public base URL, every link names the port really listened on (``--port
        0`` picks one), and commands run beside this server (create-workspace) use it too."""
        settings = self.rt.settings
        if settings.public_base_url:
            return
        if port != settings.port:
            self.rt.settings = settings.model_copy(update={"port": port})
        with self.rt.transaction() as session:
            remember_served(session, self.rt.settings.base_url)

    def announce(self, url: str) -> None:
        settings = self.rt.settings
        _say(
            settings,
            f"chathooks {__version__} is running on {url}\n"
            f"  pages:     {url}/\n"
            f"  API docs:  {url}/docs\n"
            f"  database:  {shown_database(settings.database_url)}",
        )
        if settings.public_base_url:
            _say(settings, f"  links in payloads start with {settings.base_url}")
        if self.first_start:
            setup = f"{settings.base_url if settings.public_base_url else url}/setup"
            _say(
                settings,
                f"\nNo workspace yet. Open {setup} and paste the admin token: it creates "
                "your workspace and your login.",
            )
        self.show_admin_token()

    def show_admin_token(self) -> None:
        if self.admin_token:
            typer.echo(
                "\nThe admin token creates workspaces. It is shown only now; keep it:\n\n"
                f"    {self.admin_token}\n"
            )
            self.admin_token = None


def _run_http(rt: Runtime, *, run_worker: bool, log_level: str) -> None:
    with rt.transaction() as session:
        admin_token = ensure_admin_token(session, rt.settings)
        first_start = not tenants.has_workspace(session)
    config = uvicorn.Config(
        create_app(rt, run_worker=run_worker),
        host=rt.settings.host,
        port=rt.settings.port,
        log_level=log_level,
        log_config=logging_config(rt.settings),
        proxy_headers=True,
        forwarded_allow_ips=rt.settings.trusted_proxies,
    )
    server = _AnnouncingServer(config, rt, admin_token, first_start=first_start)
    try:
        server.run()
    finally:
        server.show_admin_token()


@app.command(epilog=CONFIGURATION_HELP)
def serve(host: Host = None, port: Port = None, log_level: LogLevel = "warning") -> None:
    """Run everything in one process: API, pages, delivery and send workers, periods."""
    _run_http(_prepared(host=host, port=port), run_worker=True, log_level=log_level)


@app.command(epilog=CONFIGURATION_HELP)
def api(host: Host = None, port: Port = None, log_level: LogLevel = "warning") -> None:
    """Run only the API and pages (deliveries and sends are left to "chathooks worker")."""
    _run_http(_prepared(host=host, port=port), run_worker=False, log_level=log_level)


@app.command(epilog=CONFIGURATION_HELP)
def worker() -> None:
    """Run only a delivery and send worker; start as many as you like on PostgreSQL. It serves
    /healthz, /readyz and /metrics on CHATHOOKS_METRICS_PORT; SIGTERM stops it gracefully."""
    rt = _prepared()
    s = rt.settings
    _say(
        s,
        f"chathooks worker on {shown_database(s.database_url)}; probes and metrics on "
        f"http://{s.host}:{s.metrics_port}",
    )
    uvicorn.run(
        create_worker_app(rt),
        host=s.host,
        port=s.metrics_port,
        log_config=logging_config(s),
        access_log=False,
    )


@app.command("migrate", epilog=CONFIGURATION_HELP)
def migrate_command() -> None:
    """Bring the database schema up to date ("serve", "api" and "worker" do this too)."""
    settings = _settings()
    migrate(settings.database_url)
    typer.echo("database schema is up to date")


def _follow_serve(rt: Runtime) -> None:
    """Without CHATHOOKS_PUBLIC_BASE_URL, links name where ``serve`` last listened, not
    this command's own CHATHOOKS_PORT."""
    if rt.settings.public_base_url:
        return
    with rt.transaction() as session:
        served = served_url(session)
    if served:
        rt.settings = rt.settings.model_copy(update={"public_base_url": served})


@app.command("create-workspace", epilog=CONFIGURATION_HELP)
def create_workspace(
    name: Annotated[str, typer.Option(metavar="TEXT", help="The team's name.")],
    owner_name: Annotated[str, typer.Option(metavar="TEXT", help="The owner's full name.")],
    owner_email: Annotated[
        str, typer.Option(metavar="TEXT", help="The owner's e-mail; alerts go there.")
    ],
) -> None:
    """Create a workspace and print its API token and the owner's set-password link."""
    if "@" not in owner_email:
        raise typer.BadParameter("must be an e-mail address", param_hint="--owner-email")
    rt = _prepared()
    _follow_serve(rt)
    with rt.transaction() as session:
        new = workspaces.create_workspace(
            session, name=name, owner_name=owner_name, owner_email=owner_email, now=rt.clock.now()
        )
    link = password_link(rt, new.owner)
    typer.echo(
        f"workspace {new.workspace.id} created\nAPI token: {new.api_token}\n"
        f"owner's set-password link: {link}"
    )


@app.command("set-password", epilog=CONFIGURATION_HELP)
def set_password_command(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The teammate's e-mail.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            metavar="TEXT",
            confirmation_prompt=True,
            help="Asked for twice, hidden, when not given (at least 8 characters).",
        ),
    ],
) -> None:
    """Set a teammate's password for the web pages; this logs them out everywhere. It
    prompts for the password (twice, without showing it); --password gives it on the
    command line instead."""
    rt = _prepared(existing=True)
    with rt.transaction() as session:
        found = tenants.teammates_by_email_anywhere(session, email.lower())
        if not found:
            typer.echo(f"no teammate with e-mail {email}", err=True)
            raise typer.Exit(1)
        try:
            for teammate in found:
                set_password(session, teammate, password)
        except ValueError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
    typer.echo(f"password set for {email}")


@app.command("rotate-admin-token", epilog=CONFIGURATION_HELP)
def rotate_admin_token_command() -> None:
    """Replace the generated admin token (when CHATHOOKS_ADMIN_TOKEN is not set)."""
    rt = _prepared(existing=True)
    if rt.settings.admin_token:
        typer.echo("CHATHOOKS_ADMIN_TOKEN is set; change it there", err=True)
        raise typer.Exit(1)
    with rt.transaction() as session:
        token = rotate_admin_token(session)
    typer.echo(f"new admin token: {token}")


@app.command("listen")
def listen_command(
    port: Annotated[
        int, typer.Option(metavar="INTEGER", help="Port to listen on.", min=0, max=65535)
    ] = 8001,
    host: Annotated[str, typer.Option(metavar="TEXT", help="Address to listen on.")] = "127.0.0.1",
    secret: Annotated[
        str,
        typer.Option(
            metavar="TEXT",
            help="The webhook's signing secret (whsec_…); each request's signature "
            "is then checked and the result printed.",
        ),
    ] = "",
    status: Annotated[
        int,
        typer.Option(
            metavar="INTEGER",
            help="The HTTP status to answer with; 503 lets you watch retries.",
            min=100,
            max=599,
        ),
    ] = 200,
) -> None:
    """Receive webhook requests on this machine and print each one: method, path,
    webhook-id, whether its signature is valid, and the JSON body. Point a webhook at it
    (with CHATHOOKS_ALLOW_PRIVATE_TARGETS=true on the chathooks side)."""
    try:
        key = signing_key(secret) if secret else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--secret") from None

    def out(text: str) -> None:
        typer.echo(text)

    try:
        asyncio.run(listen(host, port, key, status, out))
    except KeyboardInterrupt:
        typer.echo("stopped")
    except OSError as error:
        typer.echo(f"cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(1) from None


@app.command("status", epilog=CONFIGURATION_HELP)
def status_command() -> None:
    """Show the database's size and schema, the oldest kept message, retention and what
    waits. It only reads: the schema is not migrated, and no database is created."""
    settings = _settings()
    configure_logging(settings)
    _require_database(settings)
    rt = build_runtime(settings)
    lines = status_lines(rt)
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        typer.echo(f"{name + ':':<{width + 1}} {value}")


@app.command("backup", epilog=CONFIGURATION_HELP)
def backup_command(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="The file to write; it must not exist yet.")
    ],
) -> None:
    """Copy the SQLite database to PATH while chathooks runs (SQLite's online backup).
    For PostgreSQL use pg_dump."""
    settings = _settings()
    try:
        pages = backup_sqlite(settings.database_url, path)
    except BackupRefused as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {settings.database_url} to {path} ({pages} pages)")

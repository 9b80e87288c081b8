"""Engine, sessions and migrations: the one door to the database."""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger("chathooks.database")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
READ_ONLY = "chathooks_read_only"


def make_engine(url: str) -> Engine:
    """SQLite gets WAL and ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing.
    Errors never quote the statement's parameters (message texts, secrets) into the logs."""
    if not url.startswith("sqlite"):
        return _postgres_engine(url)
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    _sqlite_writer_locks[engine] = threading.Lock()
    return engine


PING_AFTER_IDLE = 10.0
"""Seconds a pooled PostgreSQL connection may rest before its checkout pings the server."""
_RETURNED = "chathooks_returned"


def _postgres_engine(url: str) -> Engine:
    """The pool hands out no connection the server has closed (a restart, a terminated
    backend): it replaces one its checkout raises ``DisconnectionError`` for. A connection
    used within ``PING_AFTER_IDLE`` costs no round trip: the server says it closes one (a
    FATAL message, then the end of the stream), so its socket has something to read, which
    an idle healthy one never has. One that rested longer is pinged, as ``pool_pre_ping``
    pinged every checkout (a round trip, 0.15 ms of each transaction): a connection a
    firewall dropped in silence says nothing until it is used."""
    engine = create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _still_open(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED)
        if returned is None:  # just connected
            return
        if time.monotonic() - returned > PING_AFTER_IDLE:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except psycopg.Error as error:
                raise DisconnectionError("the database did not answer a ping") from error
        elif dbapi_connection.closed or _readable(dbapi_connection.fileno()):
            raise DisconnectionError("the database closed the connection")

    return engine


def _readable(fd: int) -> bool:
    """Whether the socket has something to read now (``poll``: ``select`` refuses a
    descriptor past 1023, which a busy worker's may be)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    sessions = sessionmaker(engine, expire_on_commit=False)
    event.listen(sessions, "after_commit", _run_after_commit)
    event.listen(sessions, "after_soft_rollback", _forget_after_commit)
    return sessions


_AFTER_COMMIT = "chathooks_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction commits, never if it rolls back: for
    what must not happen for writes that are undone, such as a log line saying they were
    made. An action that raises is logged; the commit stands."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def _run_after_commit(session: Session) -> None:
    if outermost_commit(session):
        for action in session.info.pop(_AFTER_COMMIT, ()):
            try:
                action()
            except Exception:
                log.exception("an action after a commit failed")


def _forget_after_commit(session: Session, transaction: SessionTransaction) -> None:
    if not transaction.nested:
        session.info.pop(_AFTER_COMMIT, None)


def outermost_commit(session: Session) -> bool:
    """In an ``after_commit`` listener: the transaction itself committed, not a savepoint
    released inside it (SQLAlchemy calls the listener for both)."""
    return not session.in_nested_transaction()


_sqlite_writer_locks: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
"""SQLite has one writer at a time. Threads of one process queue on this lock and wake the
moment it is free, instead of in SQLite's busy handler, which sleeps up to 100 ms a try."""


@contextmanager
def _sqlite_turn(engine: Any) -> Iterator[None]:
    lock = _sqlite_writer_locks.get(engine)
    if lock is None:
        yield
        return
    if not lock.acquire(timeout=60):
        raise TimeoutError("waited 60 s for the SQLite writer lock (a nested transaction?)")
    try:
        yield
    finally:
        lock.release()


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """The only place that commits: all of a request's or a job's writes, or none."""
    with _sqlite_turn(sessions.kw.get("bind")), sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads: on SQLite a plain ``BEGIN`` without the writer lock
    (in WAL mode readers never wait for the writer), so a lookup costs no writer's turn."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
        yield conn


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest revision; safe to run on every start."""
    command.upgrade(alembic_config(url), "head")


def head_revision() -> str | None:
    """The newest schema revision this code knows (what ``migrate`` brings a database to)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


class NoDatabase(Exception):
    """There is no chathooks database where the configuration points: said as it is."""


def require_existing(url: str) -> None:
    """Raise ``NoDatabase`` unless ``url`` holds a chathooks schema; creates nothing (a
    SQLite file is checked before anything connects, since connecting would create it)."""
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or ":memory:")
        if not path.is_file():
            relative = "" if path.is_absolute() else ", relative to the working directory"
            raise NoDatabase(
                f"no SQLite database at {path.resolve()} (CHATHOOKS_DATABASE_URL is "
                f"{url}{relative}): 'chathooks migrate' or the first 'chathooks serve' creates it"
            )
        shown = str(path.resolve())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            has_schema = inspect(conn).has_table("alembic_version")
    except OperationalError as error:
        first_line = str(error.orig or error).strip().splitlines()[0]
        raise NoDatabase(f"cannot open the database {shown}: {first_line}") from None
    finally:
        engine.dispose()
    if not has_schema:
        raise NoDatabase(
            f"the database {shown} has no chathooks tables: 'chathooks migrate' or the "
            "first 'chathooks serve' creates them"
        )

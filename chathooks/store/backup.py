"""``chathooks backup PATH``: a consistent copy of a live SQLite database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupRefused(Exception):
    """Said to the operator as it is: what is wrong and what to do instead."""


def backup_sqlite(database_url: str, path: Path) -> int:
    """SQLite's online backup API: writers go on meanwhile, and the copy is one moment's
    state. Returns the pages copied."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupRefused(
            "backup copies a SQLite database; for PostgreSQL use pg_dump, e.g. "
            "pg_dump --format=custom --file=chathooks.dump DBNAME"
        )
    source_path = Path(url.database or "")
    if not source_path.is_file():
        raise BackupRefused(f"no SQLite database at {source_path}")
    if path.exists():
        raise BackupRefused(f"{path} exists already; choose a new file")
    if not path.parent.is_dir():
        raise BackupRefused(f"no folder {path.parent}")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(path)
    try:
        with target:
            source.backup(target, pages=1024)
        return int(target.execute("PRAGMA page_count").fetchone()[0])
    finally:
        target.close()
        source.close()

"""On SQLite a moment is stored as text, and queries compare that text (``due_at <= now``):
chathooks must write exactly what SQLAlchemy's ``DATETIME`` writes, or rows stored before
an upgrade would sort against new ones wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, create_engine, insert, select, text

from chathooks.store.models import UtcDateTime

MOMENTS = [
    datetime(2021, 2, 24, 16, 25, 29, tzinfo=UTC),
    datetime(2021, 2, 24, 16, 25, 29, 123, tzinfo=timezone(timedelta(hours=2))),
    datetime(1, 1, 1, 0, 0, 0, 5, tzinfo=UTC),
    datetime(999, 3, 4, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_moment_is_stored_as_sqlalchemys_datetime_text(tmp_path: Path, moment: datetime) -> None:
    metadata = MetaData()
    ours = Table("ours", metadata, Column("at", UtcDateTime()))
    plain = Table("plain", metadata, Column("at", DateTime()))
    engine = create_engine(f"sqlite:///{tmp_path / 'times.db'}")
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(insert(ours), {"at": moment})
        conn.execute(insert(plain), {"at": moment.astimezone(UTC).replace(tzinfo=None)})
        stored = [conn.scalar(text(f"SELECT at FROM {name}")) for name in ("ours", "plain")]
        read_back = conn.scalar(select(ours.c.at))
    engine.dispose()
    assert stored[0] == stored[1]
    assert read_back == moment

"""An upgrade keeps everything: a database filled under the first schema ("0001", the
schema of the first release) is migrated to the newest revision with every row intact.

The rows are written through the tables as "0001" made them (reflected, not today's
models), and compared column by column afterwards, so the test keeps working as later
revisions add tables and columns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, create_engine, select

from chathooks.settings import Settings
from chathooks.store.database import alembic_config, head_revision
from tests.conftest import PG_ADMIN_URL, _pg_reachable

FIRST = "0001"
WHEN = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC).replace(tzinfo=None)
"""Naive UTC, as the first release's schema stored its times."""


def rows_of_a_working_install() -> dict[str, list[dict[str, Any]]]:
    """A workspace with a teammate, an account, two chats, messages (one with an
    attachment), three webhooks (single, bundled, auto-disabled), deliveries in every
    state, a bundle's links, logs and an alert — what a running install holds."""
    secret = "whsec_" + "A" * 32
    return {
        "meta": [{"key": "admin_token_hash", "value": "ab" * 32}],
        "workspaces": [
            {
                "id": 1,
                "name": "Acme",
                "owner_name": "Olive",
                "owner_email": "o@acme.test",
                "api_token_hash": "cd" * 32,
                "created_at": WHEN,
            }
        ],
        "teammates": [
            {
                "id": 1,
                "workspace_id": 1,
                "full_name": "Olive",
                "email": "o@acme.test",
                "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
                "created_at": WHEN,
            }
        ],
        "whatsapp_accounts": [
            {
                "id": 1,
                "workspace_id": 1,
                "phone": "+972500000000",
                "teammate_id": 1,
                "created_at": WHEN,
            }
        ],
        "chats": [
            {
                "id": chat,
                "workspace_id": 1,
                "account_id": 1,
                "external_id": f"97254000000{chat}@c.us",
                "full_name": f"Contact {chat} 🙂",
                "is_group": chat == 2,
                "phone": "" if chat == 2 else f"+97254000000{chat}",
                "responsible_id": 1 if chat == 1 else None,
                "created_at": WHEN,
            }
            for chat in (1, 2)
        ],
        "messages": [
            {
                "id": index,
                "workspace_id": 1,
                "chat_id": 1 + index % 2,
                "external_id": f"wamid.{index}",
                "direction": "received" if index % 2 else "sent",
                "timestamp": WHEN,
                "received_at": WHEN,
                "sender_name": "Contact",
                "sender_phone": "+972540000001",
                "recipient_name": "Olive",
                "recipient_phone": "+972500000000",
                "text": f"message {index} with <html> & emoji 🎉\nsecond line",
                "attachments": [{"type": "image", "url": "https://x.test/a.jpg"}]
                if index == 4
                else [],
                "has_attachments": index == 4,
                "is_first_in_chat": index <= 2,
            }
            for index in range(1, 7)
        ],
        "webhooks": [
            {
                "id": hook,
                "workspace_id": 1,
                "url": f"https://crm.test/hook/{hook}",
                "aggregation": aggregation,
                "status": status,
                "secret": secret,
                "consecutive_failures": 11 if status == "auto_disabled" else 0,
                "retry_at": WHEN if status == "auto_disabled" else None,
                "max_requests_per_second": 30.0 if hook == 1 else None,
                "last_error": "HTTP 500" if status == "auto_disabled" else "",
                "status_changed_at": WHEN,
                "created_at": WHEN,
            }
            for hook, aggregation, status in (
                (1, "none", "enabled"),
                (2, "1h", "enabled"),
                (3, "none", "auto_disabled"),
            )
        ],
        "deliveries": [
            _delivery(1, 1, message_id=1, status="delivered", delivered_at=WHEN, attempts=1),
            _delivery(2, 1, message_id=2, status="pending", lease_until=WHEN, attempts=2),
            _delivery(3, 3, message_id=3, status="pending", attempts=11),
            _delivery(4, 2, status="open", aggregation="1h", period_start=WHEN, count=2),
            _delivery(5, 2, status="delivered", aggregation="1h", period_start=WHEN, count=1),
        ],
        "bundle_messages": [
            {"delivery_id": 4, "message_id": 5},
            {"delivery_id": 4, "message_id": 6},
            {"delivery_id": 5, "message_id": 1},
        ],
        "attempts": [
            {
                "id": 1,
                "webhook_id": 1,
                "delivery_id": 1,
                "at": WHEN,
                "url": "https://crm.test/hook/1",
                "request_headers": {"webhook-id": "msg_1", "content-type": "application/json"},
                "request_body": '{"message": {"text": "message 1"}}',
                "response_status": 200,
                "response_headers": {"content-type": "text/plain"},
                "response_body": "ok",
                "error": "",
                "latency_ms": 12.5,
            }
        ],
        "activity": [
            {
                "id": 1,
                "webhook_id": 1,
                "at": WHEN,
                "action": "delivered",
                "chat_id": 1,
                "message_count": 1,
                "status_code": 200,
                "error": "",
                "latency_ms": 12.5,
            },
            {
                "id": 2,
                "webhook_id": 3,
                "at": WHEN,
                "action": "auto_disabled",
                "chat_id": None,
                "message_count": 0,
                "status_code": None,
                "error": "11 consecutive failed attempts; last: HTTP 500",
                "latency_ms": None,
            },
        ],
        "alerts": [
            {
                "id": 1,
                "workspace_id": 1,
                "recipient": "o@acme.test",
                "subject": "chathooks: webhook 3 was disabled automatically",
                "body": "Hello Olive,\n…",
                "created_at": WHEN,
                "sent_at": None,
                "lease_until": None,
                "tries": 1,
                "last_error": "SMTPConnectError",
            }
        ],
    }


def _delivery(
    delivery_id: int,
    webhook_id: int,
    *,
    status: str,
    message_id: int | None = None,
    aggregation: str = "none",
    period_start: datetime | None = None,
    delivered_at: datetime | None = None,
    lease_until: datetime | None = None,
    attempts: int = 0,
    count: int = 1,
) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "uuid": f"00000000-0000-4000-8000-00000000000{delivery_id}",
        "webhook_id": webhook_id,
        "chat_id": 1,
        "message_id": message_id,
        "status": status,
        "due_at": WHEN,
        "lease_until": lease_until,
        "period_start": period_start,
        "aggregation": aggregation,
        "message_count": count,
        "body_bytes": 900 * count,
        "note_chars": 120 * count,
        "attempts": attempts,
        "created_at": WHEN,
        "delivered_at": delivered_at,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    if not _pg_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}, and CI=true")
        pytest.skip("PostgreSQL is not reachable")
    name = f"chathooks_test_{os.getpid()}_upgrade"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    yield Settings(database_url=PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name).database_url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _tables(engine: Engine) -> MetaData:
    metadata = MetaData()
    metadata.reflect(engine)
    return metadata


def test_upgrading_a_filled_database_loses_nothing(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, FIRST)
    engine = create_engine(empty_database)
    try:
        first = _tables(engine)
        filled = rows_of_a_working_install()
        assert set(filled) == set(first.tables) - {"alembic_version"}
        with engine.begin() as conn:
            for table in first.sorted_tables:
                if table.name in filled:
                    conn.execute(table.insert(), filled[table.name])

        command.upgrade(config, "head")

        head = _tables(engine)
        with engine.connect() as conn:
            assert (
                conn.scalar(select(head.tables["alembic_version"].c.version_num)) == head_revision()
            )
            for name, rows in filled.items():
                table = head.tables[name]
                key = [c.name for c in table.primary_key.columns]
                stored = [
                    row._asdict()
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                assert len(stored) == len(rows), name
                expected = sorted(rows, key=lambda r: [r[k] for k in key])
                for before, after in zip(expected, stored, strict=True):
                    for column, value in before.items():
                        assert _same(after[column], value), (name, column, after[column], value)
            lanes = head.tables["lanes"]
            pending = [d for d in filled["deliveries"] if d["status"] == "pending"]
            assert {
                (lane.webhook_id, lane.chat_id, lane.head_id)
                for lane in conn.execute(select(lanes))
            } == {(d["webhook_id"], d["chat_id"], d["id"]) for d in pending}  # each queue's head
    finally:
        engine.dispose()


def _same(stored: Any, written: Any) -> bool:
    """Equal as stored (SQLite hands back datetimes as naive; JSON and booleans alike)."""
    if isinstance(written, datetime) and isinstance(stored, datetime):
        return stored.replace(tzinfo=None) == written
    return bool(stored == written)

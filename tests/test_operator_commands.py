"""``chathooks status`` and ``chathooks backup`` as an operator runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import event, wait_for
from tests.receiver import Receiver, Reply
from tests.test_cli import _chathooks


def test_status_shows_size_oldest_message_retention_and_backlog(
    database_url: str, start_service: Any, receiver: Receiver
) -> None:
    service = start_service()
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    receiver.default = Reply(503)
    team.post("/messages/batch", {"messages": [event(f"s{i}", chat=f"c{i}") for i in range(3)]})
    wait_for(lambda: receiver.requests, what="a failed attempt")
    done = _chathooks(database_url, "status")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    lines = {name: value.strip() for name, value in lines.items()}
    assert lines["schema"].endswith("(current)")
    assert lines["database size"].endswith(("KiB", "MiB"))
    now = service.clock.now()
    assert lines["oldest kept message"].startswith(f"{now:%Y-%m-%d %H:%M}")
    assert lines["retention"].startswith("30 days: messages received before")
    assert lines["deliveries waiting"] == "3"
    assert lines["webhooks"] == "1 failing"
    assert lines["failing webhooks by last error"] == "5xx: 1 webhook (1 failed attempt)"
    assert "password" not in done.stdout


def test_backup_copies_a_live_sqlite_database(
    start_service: Any, database_url: str, tmp_path: Path
) -> None:
    service = start_service()
    team = service.workspace()
    team.account()
    team.post("/messages", event("kept-in-backup"))
    target = tmp_path / "backup.db"
    done = _chathooks(database_url, "backup", str(target))
    if database_url.startswith("postgresql"):
        assert done.returncode == 1
        assert "pg_dump" in done.stderr
        assert not target.exists()
        return
    assert done.returncode == 0, done.stderr
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT external_id FROM messages").fetchall() == [("kept-in-backup",)]
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()
    again = _chathooks(database_url, "backup", str(target))
    assert again.returncode == 1
    assert "exists already" in again.stderr

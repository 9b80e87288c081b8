"""The baseline of issue 9's first target: the least a FastAPI endpoint does for a message.

``POST /messages`` parses the same JSON body as ``POST /api/v1/messages`` into a small
Pydantic model and inserts one row into a SQLite file (WAL, ``synchronous=NORMAL`` as
chathooks sets it), one commit per request, then answers 202. No authentication, no
queue, no delivery: chathooks' single-message ingest is measured as a share of this.

Run as ``python -m bench.minimal PORT DATABASE_FILE``; uvicorn is started the way
``chathooks serve`` starts it (its default loop and HTTP parser, whatever is installed),
so both get the same server.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime
from typing import Literal

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    account_phone TEXT NOT NULL,
    chat_external_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    text TEXT NOT NULL
)
"""
INSERT = "INSERT INTO messages (message_id, account_phone, chat_external_id, direction, "
INSERT += "timestamp, text) VALUES (?, ?, ?, ?, ?, ?)"


class Chat(BaseModel):
    external_id: str


class Message(BaseModel):
    whatsapp_account_phone: str
    chat: Chat
    message_id: str
    direction: Literal["received", "sent"]
    timestamp: datetime
    text: str = ""


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SCHEMA)
    return conn


def create_app(path: str) -> FastAPI:
    """An ``async def`` handler on one connection: the insert (tens of microseconds in
    WAL) runs on the event loop. A plain ``def`` would add a hop to the thread pool,
    about 0.3 ms of CPU per request here: the baseline is the cheapest honest endpoint."""
    conn = connect(path)
    app = FastAPI()

    @app.post("/messages", status_code=202)
    async def post_message(message: Message) -> dict[str, str]:
        row = (
            message.message_id,
            message.whatsapp_account_phone,
            message.chat.external_id,
            message.direction,
            message.timestamp.isoformat(),
            message.text,
        )
        with conn:
            conn.execute(INSERT, row)
        return {"message_id": message.message_id, "status": "accepted"}

    return app


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create_app(path), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()

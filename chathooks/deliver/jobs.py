"""Claimed deliveries turned into ready-to-send requests: payloads from stored rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from chathooks import payloads
from chathooks.store import messages
from chathooks.store.deliveries import Claimed


@dataclass(frozen=True, slots=True)
class Job:
    claimed: Claimed
    body: str
    message_count: int
    generation: int
    received: tuple[datetime, ...]
    """When chathooks received each message it carries (ingest→receipt latency)."""
    is_test: bool
    """Sent with ``chathooks-test: true`` (``payloads.is_test``)."""


def contexts(session: Session, chat_ids: Sequence[int]) -> dict[int, payloads.ChatContext]:
    return {
        chat_id: payloads.ChatContext(*row)
        for chat_id, row in messages.chat_contexts(session, chat_ids).items()
    }


def load_jobs(
    session: Session, claimed: Sequence[Claimed], base_url: str, generation: int
) -> list[Job]:
    bundles = messages.bundled_messages(session, [c.id for c in claimed if c.aggregation != "none"])
    rows = messages.messages_by_id(
        session, [c.message_id for c in claimed if c.message_id is not None]
    )
    chats = contexts(session, [c.chat_id for c in claimed])
    jobs = []
    for item in claimed:
        ctx = chats[item.chat_id]
        if item.message_id is not None:
            members = [rows[item.message_id]]
            body = payloads.single_body(ctx, members[0], base_url)
        else:
            members = bundles.get(item.id, [])
            body = payloads.bundle_body(ctx, members, base_url, item.uuid)
        jobs.append(
            Job(
                item,
                body,
                len(members),
                generation,
                tuple(m.received_at for m in members),
                payloads.is_test(members),
            )
        )
    return jobs

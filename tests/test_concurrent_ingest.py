"""Batches that create the same chats at the same moment, listed in different orders,
are all stored (no deadlock, no 500)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import event


def test_concurrent_batches_creating_the_same_chats(start_service: Any) -> None:
    service = start_service(run_worker=False)
    team = service.workspace()
    team.account()
    chats = [f"97254{i:07d}@c.us" for i in range(300)]
    for round_ in range(3):
        forward = [event(f"f{round_}-{i}", chat=c) for i, c in enumerate(chats)]
        backward = [event(f"b{round_}-{i}", chat=c) for i, c in enumerate(reversed(chats))]
        chats = [c.replace("@", f"x{round_}@") for c in chats]  # new chats next round
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda batch: team.post("/messages/batch", {"messages": batch}),
                    [forward, backward],
                )
            )
        assert [a.status_code for a in answers] == [202, 202], [a.text[:200] for a in answers]

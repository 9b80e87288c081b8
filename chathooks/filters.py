"""Which messages a webhook wants (SPEC §5 ``filters``): directions, group chats, accounts.

Decided when a message is queued, from facts the queueing already holds (no query per
message); a message a webhook's filters exclude is never queued for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

DIRECTIONS = ("received", "sent")


def default_filters() -> dict[str, Any]:
    """Everything: both directions, groups included, every account (an empty list)."""
    return {"directions": list(DIRECTIONS), "include_groups": True, "account_phones": []}


class ChatFacts(NamedTuple):
    """What a filter needs to know about a message's chat."""

    is_group: bool
    account_phone: str


class Filterable(Protocol):
    @property
    def chat_id(self) -> int: ...
    @property
    def direction(self) -> str: ...


M = TypeVar("M", bound=Filterable)


@dataclass(frozen=True, slots=True)
class Filter:
    directions: frozenset[str]
    include_groups: bool
    account_phones: frozenset[str]

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Filter | None:
        """The stored filters, or None when they let everything through (the common case,
        which then costs nothing per message)."""
        values = {**default_filters(), **stored}
        made = cls(
            frozenset(values["directions"]),
            bool(values["include_groups"]),
            frozenset(values["account_phones"]),
        )
        everything = made.directions >= set(DIRECTIONS) and made.include_groups
        return None if everything and not made.account_phones else made

    def admits(self, direction: str, chat: ChatFacts) -> bool:
        return (
            direction in self.directions
            and (self.include_groups or not chat.is_group)
            and (not self.account_phones or chat.account_phone in self.account_phones)
        )


def wanted(
    stored: Mapping[str, Any], messages: Sequence[M], chats: Mapping[int, ChatFacts]
) -> list[M]:
    """The messages a webhook with these filters wants, in their order."""
    selected = Filter.of(stored)
    if selected is None:
        return list(messages)
    return [m for m in messages if selected.admits(m.direction, chats[m.chat_id])]

"""The malloc arena limit that keeps a busy process' memory flat (measured in bench/)."""

from __future__ import annotations

import pytest

from chathooks.memory import limit_malloc_arenas


def test_the_arena_limit_is_set_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is True


def test_an_operators_malloc_arena_max_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False

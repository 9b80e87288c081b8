"""Each state machine's values are named once (``chathooks.states``): whatever lists them
(the source modules, the periods' lengths, the pages' words) lists every one."""

from __future__ import annotations

from chathooks.schedule import PERIOD_HOURS
from chathooks.sources.kinds import KINDS
from chathooks.states import Aggregation, SourceKind, WebhookState, WebhookStatus
from chathooks.web.forms import AGGREGATIONS
from chathooks.web.showing import STATES


def test_every_source_kind_has_its_module() -> None:
    assert list(KINDS) == list(SourceKind)
    assert all(kind == KINDS[kind].NAME for kind in SourceKind)


def test_every_period_has_its_length_and_every_choice_its_words() -> None:
    assert set(PERIOD_HOURS) == set(Aggregation) - {Aggregation.NONE}
    assert all(PERIOD_HOURS[p] == int(p.removesuffix("h")) for p in PERIOD_HOURS)
    assert list(AGGREGATIONS) == list(Aggregation)


def test_every_state_has_its_words_and_failing_is_only_ever_shown() -> None:
    assert list(STATES) == list(WebhookState)
    assert set(WebhookStatus) < set(WebhookState)
    assert WebhookState.of(WebhookStatus.ENABLED, 1) is WebhookState.FAILING
    assert WebhookState.of(WebhookStatus.ENABLED, 0) is WebhookState.ENABLED
    assert WebhookState.of(WebhookStatus.AUTO_DISABLED, 11) is WebhookState.AUTO_DISABLED
    assert WebhookState.of(WebhookStatus.DISABLED, 2) is WebhookState.DISABLED

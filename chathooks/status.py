"""``chathooks status``: what an operator checks first, in a few lines."""

from __future__ import annotations

from datetime import datetime

from chathooks.retention import horizon
from chathooks.runtime import Runtime
from chathooks.states import FailureClass, WebhookState
from chathooks.store import stats
from chathooks.store.database import head_revision


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    days = (now - moment).total_seconds() / 86400
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({days:.1f} days ago)"


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(count)


def status_lines(rt: Runtime) -> list[tuple[str, str]]:
    now = rt.clock.now()
    with rt.transaction() as session:
        revision = stats.schema_revision(session)
        size = stats.database_bytes(session)
        oldest = stats.oldest_message(session)
        waiting, earliest_due = stats.waiting(session)
        by_state = stats.webhooks_by_state(session)
        failing = stats.failing_by_class(session)
    head = head_revision()
    schema = f"{revision} (current)" if revision == head else f"{revision} (this code: {head})"
    webhooks = ", ".join(f"{by_state[s]} {s}" for s in WebhookState if by_state[s])
    return [
        ("database", rt.engine.url.render_as_string(hide_password=True)),
        ("schema", schema),
        ("database size", _size(size)),
        ("oldest kept message", _when(oldest, now)),
        (
            "retention",
            f"{rt.settings.retention_days} days: messages received before "
            f"{horizon(rt, now):%Y-%m-%d %H:%M} UTC are removed",
        ),
        ("deliveries waiting", str(waiting)),
        ("oldest waiting since", _when(earliest_due if waiting else None, now)),
        ("webhooks", webhooks or "none"),
        ("failing webhooks by last error", _failing(failing)),
    ]


def _failing(found: dict[FailureClass, tuple[int, int]]) -> str:
    """``5xx: 1 webhook (3 failed attempts); timeout: …``, or ``none``."""
    said = []
    for why in FailureClass:
        if why in found:
            webhooks, attempts = found[why]
            said.append(
                f"{why}: {webhooks} webhook{'s' * (webhooks != 1)} "
                f"({attempts} failed attempt{'s' * (attempts != 1)})"
            )
    return "; ".join(said) or "none"

"""Actions the JSON API and the pages both offer, each spanning its own units of work."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from chathooks import outbound
from chathooks.api.deps import transaction
from chathooks.runtime import Runtime
from chathooks.schemas import AttemptOut
from chathooks.store import logs
from chathooks.store.models import Attempt, Webhook


def attempt_out(attempt: Attempt) -> AttemptOut:
    status_code = attempt.response_status
    return AttemptOut.model_validate(
        {
            **{c: getattr(attempt, c) for c in AttemptOut.model_fields if c != "success"},
            "success": status_code is not None and 200 <= status_code < 300,
        }
    )


async def send_test(rt: Runtime, workspace_id: int, webhook_id: int) -> AttemptOut:
    """Read (one transaction), POST (none held open while waiting), record (another)."""

    def prepare() -> tuple[Webhook, str, int | None, str]:
        with transaction(rt) as session:
            webhook = outbound.get(session, workspace_id, webhook_id)
            return webhook, *outbound.test_payload(
                session, webhook, rt.clock.now(), rt.settings.base_url
            )

    webhook, body, chat_id, delivery_uuid = await run_in_threadpool(prepare)
    sent = await outbound.send_test(
        rt.transport, webhook, body, chat_id, delivery_uuid, rt.clock.now()
    )

    def record() -> AttemptOut:
        with transaction(rt) as session:
            return attempt_out(outbound.record_test(session, sent))

    return await run_in_threadpool(record)


def request_log(rt: Runtime, workspace_id: int, webhook_id: int, download: bool) -> JSONResponse:
    """The latest 100 requests, newest first; as an attachment file when ``download``."""
    with transaction(rt) as session:
        outbound.get(session, workspace_id, webhook_id)
        attempts = [
            attempt_out(a).model_dump(mode="json")
            for a in logs.latest_attempts(session, webhook_id)
        ]
    headers = {}
    if download:
        stamp = rt.clock.now().strftime("%Y%m%dT%H%M%SZ")
        name = f"chathooks-webhook-{webhook_id}-requests-{stamp}.json"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return JSONResponse(attempts, headers=headers)

"""Outbound webhooks: settings, activity, request log, retry, flush, test and replay."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from chathooks import outbound, retention
from chathooks.api.deps import RuntimeDep, WorkspaceDep
from chathooks.api.errors import ERRORS
from chathooks.schemas import (
    ActivityOut,
    AttemptOut,
    FlushResult,
    ReplayIn,
    ReplayResult,
    WebhookFilters,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from chathooks.states import WebhookState, WebhookStatus
from chathooks.store import logs
from chathooks.store.models import Webhook

router = APIRouter(prefix="/api/v1/outbound-webhooks", tags=["outbound webhooks"], responses=ERRORS)


def webhook_out(webhook: Webhook, backlog: int) -> WebhookOut:
    overlap_until = webhook.previous_secret_until if webhook.previous_secret else None
    held = webhook.status is WebhookStatus.AUTO_DISABLED
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        name=webhook.name,
        aggregation=webhook.aggregation,
        filters=WebhookFilters.model_validate(webhook.filters),
        enabled=webhook.status is WebhookStatus.ENABLED,
        status=WebhookState.of(webhook.status, webhook.consecutive_failures),
        secret=webhook.secret,
        previous_secret_expires_at=overlap_until,
        consecutive_failures=webhook.consecutive_failures,
        failed_requests=webhook.failed_requests,
        last_error=webhook.last_error,
        retry_at=None if held else webhook.retry_at,
        last_success_at=webhook.last_success_at,
        last_failure_at=webhook.last_failure_at,
        backlog=backlog,
        status_changed_at=webhook.status_changed_at,
        max_requests_per_second=webhook.max_requests_per_second,
        created_at=webhook.created_at,
    )


def _out(session: Session, webhook: Webhook) -> WebhookOut:
    return webhook_out(webhook, outbound.backlogs(session, [webhook])[webhook.id])


@router.get("", summary="List the webhooks", response_model=list[WebhookOut])
def list_webhooks(workspace: WorkspaceDep, rt: RuntimeDep) -> list[WebhookOut]:
    """The workspace's webhooks, oldest first."""
    with rt.transaction() as session:
        listed = outbound.list_for(session, workspace)
        backlogs = outbound.backlogs(session, listed)
        return [webhook_out(w, backlogs[w.id]) for w in listed]


@router.post(
    "", summary="Create a webhook", status_code=status.HTTP_201_CREATED, response_model=WebhookOut
)
def create_webhook(body: WebhookIn, workspace: WorkspaceDep, rt: RuntimeDep) -> WebhookOut:
    """The signing secret (``whsec_…``) is in the answer; verify requests with it."""
    with rt.transaction() as session:
        webhook = outbound.create(session, workspace, body, rt.settings, rt.clock.now())
        return webhook_out(webhook, 0)


@router.get("/{webhook_id}", summary="Get a webhook", response_model=WebhookOut)
def get_webhook(webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> WebhookOut:
    """One webhook: settings, status, failure count, and when it tries again."""
    with rt.transaction() as session:
        return _out(session, outbound.get(session, workspace, webhook_id))


@router.patch(
    "/{webhook_id}", summary="Change, enable or disable a webhook", response_model=WebhookOut
)
def patch_webhook(
    webhook_id: int, body: WebhookPatch, workspace: WorkspaceDep, rt: RuntimeDep
) -> WebhookOut:
    """``{"enabled": true}`` re-enables an auto-disabled webhook: failure count reset, the
    backlog goes out in order. Changing aggregation or disabling first sends what was
    gathered."""
    with rt.transaction() as session:
        webhook = outbound.get(session, workspace, webhook_id)
        outbound.update(session, webhook, body, rt.settings, rt.clock.now())
        return _out(session, webhook)


@router.delete("/{webhook_id}", summary="Delete a webhook", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> Response:
    """Delete the webhook with its queue and logs; nothing more is sent to it."""
    with rt.transaction() as session:
        outbound.delete(session, outbound.get(session, workspace, webhook_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/activity",
    summary="Latest actions of a webhook",
    response_model=list[ActivityOut],
)
def activity(webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> list[ActivityOut]:
    """The latest 10 actions, newest first."""
    with rt.transaction() as session:
        outbound.get(session, workspace, webhook_id)
        return [ActivityOut.model_validate(a) for a in logs.latest_activity(session, webhook_id)]


@router.get(
    "/{webhook_id}/requests", summary="Request log of a webhook", response_model=list[AttemptOut]
)
def requests_log(
    webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep, download: bool = False
) -> Response:
    """The latest 100 requests with full request and response, newest first;
    ``?download=1`` answers it as a JSON file."""
    with rt.transaction() as session:
        attempts = outbound.request_log(session, workspace, webhook_id)
    headers = {}
    if download:
        name = outbound.request_log_filename(webhook_id, rt.clock.now())
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return JSONResponse(attempts, headers=headers)


@router.get(
    "/{webhook_id}/requests/{request_id}",
    summary="One logged request in full",
    response_model=AttemptOut,
)
def one_request(
    webhook_id: int, request_id: int, workspace: WorkspaceDep, rt: RuntimeDep
) -> AttemptOut:
    """One logged request in full: request headers and body, the response's status,
    headers and body (or the error), latency. 404 once it is older than the latest 100."""
    with rt.transaction() as session:
        return AttemptOut.of(outbound.request(session, workspace, webhook_id, request_id))


@router.post(
    "/{webhook_id}/retry",
    summary="Retry now",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookOut,
    responses={
        409: {**ERRORS[409], "description": "The webhook is auto-disabled: re-enable it instead."}
    },
)
def retry(webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> WebhookOut:
    """A webhook that is backing off tries again now: its waiting time is cleared; the
    failure count stays until a success."""
    with rt.transaction() as session:
        webhook = outbound.get(session, workspace, webhook_id)
        outbound.retry(session, webhook, rt.clock.now())
        return _out(session, webhook)


@router.post("/{webhook_id}/flush", summary="Deliver open bundles now", response_model=FlushResult)
def flush(webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> FlushResult:
    """Send every open bundle of this webhook now."""
    with rt.transaction() as session:
        count = outbound.flush(
            session, outbound.get(session, workspace, webhook_id), rt.clock.now()
        )
    return FlushResult(bundles=count)


@router.post("/{webhook_id}/test", summary="Send a test request", response_model=AttemptOut)
async def send_test(webhook_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> AttemptOut:
    """Send the workspace's latest message (a sample if none) in this webhook's format now,
    and answer with the attempt. Logged, but never counted toward auto-disable."""

    return await outbound.send_test(rt, workspace, webhook_id)


@router.post(
    "/{webhook_id}/replay",
    summary="Send a period's messages again",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayResult,
)
def replay(
    webhook_id: int, body: ReplayIn, workspace: WorkspaceDep, rt: RuntimeDep
) -> ReplayResult:
    """Queue again the messages chathooks received in ``[since, until)``, in this webhook's
    current format (attachments still skipped)."""
    with rt.transaction() as session:
        count, queued = outbound.replay(
            session,
            outbound.get(session, workspace, webhook_id),
            since=body.since,
            until=body.until,
            now=rt.clock.now(),
            base_url=rt.settings.base_url,
            kept_since=retention.horizon(rt),
        )
    return ReplayResult(messages=count, deliveries=queued)

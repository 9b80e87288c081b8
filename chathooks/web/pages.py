"""Webhooks > Outbound: the list, the settings form, and each webhook's own page.

Every action calls the same service functions as the API (``chathooks.outbound``), in one
transaction per request, so a page can do nothing the API could not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from chathooks import outbound
from chathooks.runtime import Runtime
from chathooks.store import deliveries, logs, messages
from chathooks.store.models import Activity, Webhook
from chathooks.web.csrf import require_csrf
from chathooks.web.forms import AGGREGATIONS, WebhookForm
from chathooks.web.render import flash, render
from chathooks.web.viewer import Viewer, ViewerDep
from chathooks.workspaces import BadField, NotFound

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]
EXCERPT_CHARS = 600

ACTIONS = {
    "delivered": "Delivered",
    "failed": "Failed",
    "skipped": "Skipped (attachment)",
    "auto_disabled": "Auto-disabled",
    "re_enabled": "Re-enabled",
    "enabled": "Enabled",
    "disabled": "Disabled",
    "flushed": "Sent now",
    "test": "Test",
}


class PageNotFound(Exception):
    """Shown as an HTML 404; also what another workspace's webhook or chat looks like."""


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


def _webhook(session: Session, viewer: Viewer, webhook_id: int) -> Webhook:
    try:
        return outbound.get(session, viewer.workspace_id, webhook_id)
    except NotFound:
        raise PageNotFound() from None


def _page(webhook_id: int) -> str:
    return f"/webhooks/outbound/{webhook_id}"


def _activity(session: Session, webhook_id: int) -> list[dict[str, Any]]:
    """The latest 10 actions, newest first, each with its details as (text, link, class)."""
    rows = logs.latest_activity(session, webhook_id)
    contexts = messages.chat_contexts(session, {r.chat_id for r in rows if r.chat_id})
    return [
        {
            "row": row,
            "label": ACTIONS.get(row.action, row.action.replace("_", " ").capitalize()),
            "details": _details(
                row, contexts[row.chat_id][0].full_name if row.chat_id in contexts else ""
            ),
        }
        for row in rows
    ]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _details(row: Activity, chat_name: str) -> list[tuple[str, str | None, str]]:
    details: list[tuple[str, str | None, str]] = []
    if row.chat_id:
        details.append((chat_name or f"chat {row.chat_id}", f"/chat/{row.chat_id}/messages/", ""))
    if row.action == "flushed":  # the service counts bundles here
        details.append((_plural(row.message_count, "bundle"), None, ""))
    elif row.message_count:
        details.append((_plural(row.message_count, "message"), None, ""))
    if row.status_code is not None:
        details.append((f"HTTP {row.status_code}", None, "code"))
    if row.error:
        details.append((row.error, None, "err"))
    if row.latency_ms is not None:
        details.append((f"{row.latency_ms:.0f} ms", None, ""))
    return details


@router.get("/")
def home() -> Response:
    return _see_other("/webhooks/outbound")


@router.get("/webhooks/outbound")
def webhook_list(request: Request, viewer: ViewerDep) -> HTMLResponse:
    with _rt(request).transaction() as session:
        webhooks = outbound.list_for(session, viewer.workspace_id)
        return render(
            request,
            "webhooks.html",
            viewer,
            webhooks=webhooks,
            form=WebhookForm(),
            aggregations=AGGREGATIONS,
        )


def _webhook_form(
    url: Annotated[str, Form()] = "",
    aggregation: Annotated[str, Form()] = "none",
    enabled: Annotated[str | None, Form()] = None,
) -> WebhookForm:
    """The settings form as posted, checked field by field (errors shown inline)."""
    return WebhookForm.parse(url, aggregation, enabled)


WebhookFormDep = Annotated[WebhookForm, Depends(_webhook_form)]


@router.post("/webhooks/outbound", dependencies=CsrfChecked)
def webhook_create(request: Request, viewer: ViewerDep, form: WebhookFormDep) -> Response:
    rt = _rt(request)
    with rt.transaction() as session:
        if not form.errors:
            try:
                webhook = outbound.create(
                    session,
                    viewer.workspace_id,
                    url=form.url,
                    aggregation=form.aggregation,
                    enabled=form.enabled,
                    max_requests_per_second=None,
                    settings=rt.settings,
                    now=rt.clock.now(),
                )
                session.flush()
                created = webhook.id
            except BadField as error:
                form.errors[error.field] = str(error)
        if form.errors:
            return render(
                request,
                "webhooks.html",
                viewer,
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                webhooks=outbound.list_for(session, viewer.workspace_id),
                form=form,
                aggregations=AGGREGATIONS,
            )
    flash(request, "Webhook created. Copy its signing secret to verify requests.")
    return _see_other(_page(created))


def _detail(
    request: Request,
    session: Session,
    viewer: Viewer,
    webhook: Webhook,
    form: WebhookForm | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    now = _rt(request).clock.now()
    gathered = None
    if webhook.aggregation != "none":
        count, chats, due = deliveries.open_bundle_totals(session, webhook.id)
        gathered = {"messages": count, "chats": chats, "due": due, "minutes": _minutes(due, now)}
    return render(
        request,
        "webhook.html",
        viewer,
        status_code=status_code,
        webhook=webhook,
        form=form or WebhookForm.of(webhook),
        aggregations=AGGREGATIONS,
        backlog=deliveries.pending_count(session, webhook.id),
        gathered=gathered,
        activity=_activity(session, webhook.id),
    )


def _minutes(due: datetime | None, now: datetime) -> int | None:
    return None if due is None else max(0, round((due - now).total_seconds() / 60))


@router.get("/webhooks/outbound/{webhook_id}")
def webhook_page(request: Request, webhook_id: int, viewer: ViewerDep) -> HTMLResponse:
    with _rt(request).transaction() as session:
        return _detail(request, session, viewer, _webhook(session, viewer, webhook_id))


@router.post("/webhooks/outbound/{webhook_id}", dependencies=CsrfChecked)
def webhook_save(
    request: Request, webhook_id: int, viewer: ViewerDep, form: WebhookFormDep
) -> Response:
    """Changing aggregation or disabling first sends what was gathered (service rule)."""
    rt = _rt(request)
    with rt.transaction() as session:
        webhook = _webhook(session, viewer, webhook_id)
        if not form.errors:
            try:
                outbound.update(
                    session, webhook, form.changes_for(webhook), rt.settings, rt.clock.now()
                )
            except BadField as error:
                form.errors[error.field] = str(error)
        if form.errors:
            session.rollback()
            webhook = _webhook(session, viewer, webhook_id)
            return _detail(
                request, session, viewer, webhook, form, status.HTTP_422_UNPROCESSABLE_CONTENT
            )
    rt.wake_workers()
    flash(request, "Settings saved.")
    return _see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/enable", dependencies=CsrfChecked)
def webhook_enable(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """Re-enable: failure count reset, the waiting backlog goes out in order."""
    return _apply(
        request,
        viewer,
        webhook_id,
        {"enabled": True},
        "Webhook enabled. Waiting messages are being sent in order.",
    )


@router.post("/webhooks/outbound/{webhook_id}/rotate-secret", dependencies=CsrfChecked)
def webhook_rotate(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    return _apply(
        request,
        viewer,
        webhook_id,
        {"rotate_secret": True},
        "New signing secret created; the old one no longer signs requests.",
    )


def _apply(
    request: Request, viewer: Viewer, webhook_id: int, changes: dict[str, object], done: str
) -> Response:
    """One settings change through the same service as the API, then back to the page."""
    rt = _rt(request)
    with rt.transaction() as session:
        webhook = _webhook(session, viewer, webhook_id)
        outbound.update(session, webhook, changes, rt.settings, rt.clock.now())
    rt.wake_workers()
    flash(request, done)
    return _see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/flush", dependencies=CsrfChecked)
def webhook_flush(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    rt = _rt(request)
    with rt.transaction() as session:
        count = outbound.flush(session, _webhook(session, viewer, webhook_id), rt.clock.now())
    rt.wake_workers()
    flash(request, f"{count} bundle{'s' if count != 1 else ''} queued to send now.")
    return _see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/delete", dependencies=CsrfChecked)
def webhook_delete(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    with _rt(request).transaction() as session:
        outbound.delete(session, _webhook(session, viewer, webhook_id))
    flash(request, "Webhook deleted.")
    return _see_other("/webhooks/outbound")


@router.post("/webhooks/outbound/{webhook_id}/test", dependencies=CsrfChecked)
async def webhook_test(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """Sends now and answers with the result: a fragment for htmx, else back to the page."""
    try:
        attempt = (
            await outbound.send_test(_rt(request), viewer.workspace_id, webhook_id)
        ).model_dump()
    except NotFound:
        raise PageNotFound() from None
    excerpt = attempt["response_body"][:EXCERPT_CHARS]
    if request.headers.get("hx-request"):
        return render(request, "_test_result.html", viewer, attempt=attempt, excerpt=excerpt)
    result = attempt["response_status"] or attempt["error"]
    flash(
        request,
        f"Test sent: {result}, {attempt['latency_ms']:.0f} ms.",
        "ok" if attempt["success"] else "error",
    )
    return _see_other(_page(webhook_id))


@router.get("/webhooks/outbound/{webhook_id}/activity")
def webhook_activity(request: Request, webhook_id: int, viewer: ViewerDep) -> HTMLResponse:
    """The fragment the page polls every 2 s."""
    with _rt(request).transaction() as session:
        webhook = _webhook(session, viewer, webhook_id)
        activity = _activity(session, webhook.id)
        return render(request, "_activity.html", viewer, webhook=webhook, activity=activity)


@router.get("/webhooks/outbound/{webhook_id}/requests.json")
def webhook_requests(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """The latest 100 requests, newest first, as a file: the same shape as the API's."""
    rt = _rt(request)
    with rt.transaction() as session:
        attempts = outbound.request_log(
            session, viewer.workspace_id, _webhook(session, viewer, webhook_id).id
        )
    name = outbound.request_log_filename(webhook_id, rt.clock.now())
    return JSONResponse(attempts, headers={"Content-Disposition": f'attachment; filename="{name}"'})

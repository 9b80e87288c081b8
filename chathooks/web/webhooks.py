"""Webhooks > Outbound: the list, the settings form, and each webhook's own page.

Every action calls the same service functions as the API (``chathooks.outbound``), in one
transaction per request, so a page can do nothing the API could not.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from chathooks import outbound, retention, workspaces
from chathooks.errors import BadField, Conflict, NotFound
from chathooks.runtime import Runtime
from chathooks.schemas import AttemptOut, WebhookPatch
from chathooks.states import Aggregation
from chathooks.store import deliveries
from chathooks.store.models import Webhook
from chathooks.web import showing
from chathooks.web.csrf import require_csrf
from chathooks.web.errors import PageNotFound
from chathooks.web.forms import AGGREGATIONS, ReplayForm, WebhookForm, sentence
from chathooks.web.render import flash, fragment_digest, render, runtime, see_other
from chathooks.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]


def _webhook(session: Session, viewer: Viewer, webhook_id: int) -> Webhook:
    try:
        return outbound.get(session, viewer.workspace_id, webhook_id)
    except NotFound:
        raise PageNotFound() from None


def _page(webhook_id: int) -> str:
    return f"/webhooks/outbound/{webhook_id}"


@router.get("/")
def home() -> Response:
    return see_other("/webhooks/outbound")


def _list(
    request: Request,
    session: Session,
    viewer: Viewer,
    form: WebhookForm,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    listed = outbound.list_for(session, viewer.workspace_id)
    return render(
        request,
        "webhooks.html",
        viewer,
        status_code=status_code,
        webhooks=[(w, showing.state_of(w)) for w in listed],
        backlogs=outbound.backlogs(session, listed),
        now=runtime(request).clock.now(),
        form=form,
        aggregations=AGGREGATIONS,
        accounts=workspaces.list_accounts(session, viewer.workspace_id),
    )


@router.get("/webhooks/outbound")
def webhook_list(request: Request, viewer: ViewerDep) -> HTMLResponse:
    with runtime(request).transaction() as session:
        return _list(request, session, viewer, WebhookForm())


def _webhook_form(
    *,
    url: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    aggregation: Annotated[str, Form()] = Aggregation.NONE,
    enabled: Annotated[str | None, Form()] = None,
    max_requests_per_second: Annotated[str, Form()] = "",
    directions: Annotated[list[str] | None, Form()] = None,
    include_groups: Annotated[str | None, Form()] = None,
    account_phones: Annotated[list[str] | None, Form()] = None,
) -> WebhookForm:
    """The settings form as posted, checked field by field (errors shown inline)."""
    return WebhookForm.parse(
        url=url,
        name=name,
        aggregation=aggregation,
        enabled=enabled is not None,
        rate=max_requests_per_second,
        directions=directions or [],
        include_groups=include_groups is not None,
        account_phones=account_phones or [],
    )


WebhookFormDep = Annotated[WebhookForm, Depends(_webhook_form)]


@router.post("/webhooks/outbound", dependencies=CsrfChecked)
def webhook_create(request: Request, viewer: ViewerDep, form: WebhookFormDep) -> Response:
    rt = runtime(request)
    with rt.transaction() as session:
        if not form.errors:
            try:
                webhook = outbound.create(
                    session, viewer.workspace_id, form.body, rt.settings, rt.clock.now()
                )
                created = webhook.id
            except BadField as error:
                form.errors[error.field] = str(error)
        if form.errors:
            session.rollback()
            return _list(request, session, viewer, form, status.HTTP_422_UNPROCESSABLE_CONTENT)
    flash(request, "Webhook created. Copy its signing secret to verify requests.")
    return see_other(_page(created))


def _live(rt: Runtime, session: Session, webhook: Webhook) -> dict[str, Any]:
    """What refreshes by itself: the status card, the title's badge, what is gathered,
    and the activity."""
    gathered = None
    if webhook.aggregation is not Aggregation.NONE:
        count, chats, due = deliveries.open_bundle_totals(session, webhook.id)
        gathered = {"messages": count, "chats": chats, "due": due}
    return {
        "webhook": webhook,
        "state": showing.state_of(webhook),
        "backlog": outbound.backlogs(session, [webhook])[webhook.id],
        "gathered": gathered,
        "activity": showing.activity(session, webhook.id),
        "aggregations": AGGREGATIONS,
        "attempts_left": rt.settings.disable_after_failures + 1 - webhook.consecutive_failures,
        "now": rt.clock.now(),
    }


def _detail(
    request: Request,
    session: Session,
    viewer: Viewer,
    webhook: Webhook,
    *,
    form: WebhookForm | None = None,
    replay: ReplayForm | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    rt = runtime(request)
    live = _live(rt, session, webhook)
    return render(
        request,
        "webhook.html",
        viewer,
        status_code=status_code,
        **live,
        seen=fragment_digest(request, "_live.html", viewer, **live, seen=""),
        form=form or WebhookForm.of(webhook),
        replay=replay or ReplayForm.around(live["now"]),
        accounts=workspaces.list_accounts(session, viewer.workspace_id),
    )


@router.get("/webhooks/outbound/{webhook_id}")
def webhook_page(request: Request, webhook_id: int, viewer: ViewerDep) -> HTMLResponse:
    with runtime(request).transaction() as session:
        return _detail(request, session, viewer, _webhook(session, viewer, webhook_id))


@router.post("/webhooks/outbound/{webhook_id}", dependencies=CsrfChecked)
def webhook_save(
    request: Request, webhook_id: int, viewer: ViewerDep, form: WebhookFormDep
) -> Response:
    """Changing aggregation or disabling first sends what was gathered (service rule)."""
    rt = runtime(request)
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
                request,
                session,
                viewer,
                webhook,
                form=form,
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
    flash(request, "Settings saved.")
    return see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/enable", dependencies=CsrfChecked)
def webhook_enable(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """Re-enable: failure count reset, the waiting backlog goes out in order."""
    return _apply(
        request,
        viewer,
        webhook_id,
        WebhookPatch(enabled=True),
        "Webhook enabled. Waiting messages are being sent in order.",
    )


@router.post("/webhooks/outbound/{webhook_id}/rotate-secret", dependencies=CsrfChecked)
def webhook_rotate(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    return _apply(
        request,
        viewer,
        webhook_id,
        WebhookPatch(rotate_secret=True),
        "New signing secret created. For 24 hours every request is signed with both the "
        "new and the previous secret: update your receiver within that time.",
    )


def _apply(
    request: Request, viewer: Viewer, webhook_id: int, changes: WebhookPatch, done: str
) -> Response:
    """One settings change through the same service as the API, then back to the page."""
    rt = runtime(request)
    with rt.transaction() as session:
        webhook = _webhook(session, viewer, webhook_id)
        outbound.update(session, webhook, changes, rt.settings, rt.clock.now())
    flash(request, done)
    return see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/retry", dependencies=CsrfChecked)
def webhook_retry(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """Retry now: the back-off's wait ends; the failure count stays until a success."""
    rt = runtime(request)
    try:
        with rt.transaction() as session:
            outbound.retry(session, _webhook(session, viewer, webhook_id), rt.clock.now())
    except Conflict as error:
        flash(request, f"Not retried: {error}.", "error")
        return see_other(_page(webhook_id))
    flash(request, "Trying again now.")
    return see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/flush", dependencies=CsrfChecked)
def webhook_flush(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    rt = runtime(request)
    with rt.transaction() as session:
        count = outbound.flush(session, _webhook(session, viewer, webhook_id), rt.clock.now())
    flash(request, f"{showing.plural(count, 'bundle')} queued to send now.")
    return see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/replay", dependencies=CsrfChecked)
def webhook_replay(
    request: Request,
    webhook_id: int,
    viewer: ViewerDep,
    since: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
) -> Response:
    """Send again what chathooks received in a time range (UTC), as the API's replay."""
    rt = runtime(request)
    form = ReplayForm(since, until)
    with rt.transaction() as session:
        webhook = _webhook(session, viewer, webhook_id)
        moments = form.moments()
        if moments is not None:
            try:
                found, queued = outbound.replay(
                    session,
                    webhook,
                    since=moments[0],
                    until=moments[1],
                    now=rt.clock.now(),
                    base_url=rt.settings.base_url,
                    kept_since=retention.horizon(rt),
                )
            except BadField as error:
                form.errors[error.field] = sentence(str(error))
        if form.errors:
            session.rollback()
            return _detail(
                request,
                session,
                viewer,
                _webhook(session, viewer, webhook_id),
                replay=form,
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
    flash(
        request,
        f"Queued again: {showing.plural(found, 'message')} ({showing.plural(queued, 'delivery')}).",
    )
    return see_other(_page(webhook_id))


@router.post("/webhooks/outbound/{webhook_id}/delete", dependencies=CsrfChecked)
def webhook_delete(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    with runtime(request).transaction() as session:
        outbound.delete(session, _webhook(session, viewer, webhook_id))
    flash(request, "Webhook deleted.")
    return see_other("/webhooks/outbound")


@router.post("/webhooks/outbound/{webhook_id}/test", dependencies=CsrfChecked)
async def webhook_test(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """Sends now and shows what was sent next to the answer: a fragment for htmx, else a
    notice back on the page."""
    try:
        attempt = await outbound.send_test(runtime(request), viewer.workspace_id, webhook_id)
    except NotFound:
        raise PageNotFound() from None
    if request.headers.get("hx-request"):
        return render(request, "_attempt.html", viewer, shown=showing.exchange(attempt))
    result = attempt.response_status or attempt.error
    flash(
        request,
        f"Test sent: {result}, {attempt.latency_ms:.0f} ms.",
        "ok" if attempt.success else "error",
    )
    return see_other(_page(webhook_id))


@router.get("/webhooks/outbound/{webhook_id}/activity")
def webhook_live(request: Request, webhook_id: int, viewer: ViewerDep, seen: str = "") -> Response:
    """What the page polls every 2 s: the activity, with the status card, the badge and
    what is gathered swapped in beside it; 204 when none of it changed."""
    rt = runtime(request)
    with rt.transaction() as session:
        live = _live(rt, session, _webhook(session, viewer, webhook_id))
        digest = fragment_digest(request, "_live.html", viewer, **live, seen="")
        if digest == seen:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        return render(request, "_live.html", viewer, **live, seen=digest)


@router.get("/webhooks/outbound/{webhook_id}/requests.json")
def webhook_requests(request: Request, webhook_id: int, viewer: ViewerDep) -> Response:
    """The latest 100 requests, newest first, as a file: the same shape as the API's."""
    rt = runtime(request)
    with rt.transaction() as session:
        attempts = outbound.request_log(
            session, viewer.workspace_id, _webhook(session, viewer, webhook_id).id
        )
    name = outbound.request_log_filename(webhook_id, rt.clock.now())
    return JSONResponse(attempts, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/webhooks/outbound/{webhook_id}/requests/{request_id}")
def webhook_request(
    request: Request, webhook_id: int, request_id: int, viewer: ViewerDep
) -> HTMLResponse:
    """One request and its response, read in the page (htmx: into the page's panel)."""
    with runtime(request).transaction() as session:
        webhook = _webhook(session, viewer, webhook_id)
        try:
            found = AttemptOut.of(
                outbound.request(session, viewer.workspace_id, webhook.id, request_id)
            )
        except NotFound:
            raise PageNotFound() from None
    shown = showing.exchange(found)
    if request.headers.get("hx-request"):
        return render(request, "_attempt.html", viewer, shown=shown, closable=True)
    return render(request, "attempt.html", viewer, shown=shown, webhook=webhook)

"""WhatsApp > Sources: the list, a new source, and each source's page.

Every action calls the same service functions as the API (``sources.manage``), one
transaction per request.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from chathooks.errors import BadField, NotFound
from chathooks.public_url import GUIDE_PATH, reachability_warning
from chathooks.sources import check, manage
from chathooks.sources.kinds import KINDS, SENDERS
from chathooks.store.models import Source
from chathooks.web.csrf import require_csrf
from chathooks.web.errors import PageNotFound
from chathooks.web.forms import sentence
from chathooks.web.render import flash, render, runtime
from chathooks.web.source_forms import SourceForm, receiving_secrets, user_secrets
from chathooks.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]
EXCERPT_CHARS = 600
OUTCOMES = {
    "stored": "Stored",
    "duplicate": "Duplicate",
    "ignored": "Ignored",
    "rejected": "Rejected",
    "unauthorized": "Refused: signature",
    "not_json": "Refused: not JSON",
    "not_form": "Refused: not a form",
    "too_large": "Refused: too large",
    "verified": "Verified",
    "refused": "Refused: verify token",
}
_CODE = re.compile(r"`([^`]*)`")
GUIDE_FILE = Path(__file__).parent / "guides" / "going-live.md"
"""docs/going-live.md, packaged (a link to it), so an installed chathooks serves it too."""


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


def _page(source_id: int) -> str:
    return f"/whatsapp/sources/{source_id}"


def _source(session: Session, viewer: Viewer, source_id: int) -> Source:
    try:
        return manage.get(session, viewer.workspace_id, source_id)
    except NotFound:
        raise PageNotFound() from None


def setup_steps(source: Source, url: str) -> list[Markup]:
    """The kind's setup steps with the source's URL and secrets filled in; `…` is code."""
    values = {"url": url, **source.secrets}
    steps = []
    for step in manage.kind_of(source).SETUP:
        parts = _CODE.split(step.format(**values))
        steps.append(
            Markup("").join(
                Markup("<code>{}</code>").format(part) if odd else escape(part)
                for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
            )
        )
    return steps


async def _posted_secrets(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if k.startswith("secret_") and isinstance(v, str)}


PostedSecrets = Annotated[dict[str, str], Depends(_posted_secrets)]


@router.get(GUIDE_PATH)
def going_live_guide() -> PlainTextResponse:
    """The guide the source page links to when its URL is unreachable from elsewhere: as
    plain text, which is how Markdown is meant to read."""
    return PlainTextResponse(GUIDE_FILE.read_text())


@router.get("/whatsapp")
def whatsapp() -> Response:
    return _see_other("/whatsapp/sources")


def _list(
    request: Request, session: Session, viewer: Viewer, form: SourceForm, status_code: int = 200
) -> HTMLResponse:
    rt = runtime(request)
    found = manage.list_for(session, viewer.workspace_id)
    return render(
        request,
        "sources.html",
        viewer,
        status_code=status_code,
        sources=[(s, manage.url(rt.settings.base_url, s)) for s in found],
        kinds=KINDS,
        user_secrets={name: receiving_secrets(name) for name in KINDS},
        form=form,
    )


@router.get("/whatsapp/sources")
def source_list(request: Request, viewer: ViewerDep) -> HTMLResponse:
    with runtime(request).transaction() as session:
        return _list(request, session, viewer, SourceForm())


@router.post("/whatsapp/sources", dependencies=CsrfChecked)
def source_create(
    request: Request,
    viewer: ViewerDep,
    posted: PostedSecrets,
    kind: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    rt = runtime(request)
    form = SourceForm.parse(kind, name, posted, new=True)
    with rt.transaction() as session:
        if not form.errors:
            try:
                source = manage.create(
                    session,
                    viewer.workspace_id,
                    kind=form.kind,
                    name=form.name,
                    secrets=form.secrets,
                    teammate_email=None,
                    now=rt.clock.now(),
                    settings=rt.settings,
                )
                session.flush()
                created = source.id
            except BadField as error:
                form.errors[error.key or error.field] = sentence(str(error))
        if form.errors:
            session.rollback()
            return _list(request, session, viewer, form, status.HTTP_422_UNPROCESSABLE_CONTENT)
    flash(request, "Source created. Paste its URL into the sender, as the steps below say.")
    return _see_other(_page(created))


def _detail(
    request: Request,
    session: Session,
    viewer: Viewer,
    source: Source,
    *,
    form: SourceForm | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    url = manage.url(runtime(request).settings.base_url, source)
    kind = manage.kind_of(source)
    return render(
        request,
        "source.html",
        viewer,
        status_code=status_code,
        source=source,
        kind=kind,
        url=url,
        reachability_warning=reachability_warning(url),
        guide_path=GUIDE_PATH,
        steps=setup_steps(source, url),
        generated=[s for s in kind.SECRETS if s.generated],
        can_send=source.kind in SENDERS,
        user_secrets=user_secrets(source.kind),
        form=form or SourceForm.of(source),
        requests=manage.request_log(session, viewer.workspace_id, source.id),
        outcomes=OUTCOMES,
    )


@router.get("/whatsapp/sources/{source_id}")
def source_page(request: Request, source_id: int, viewer: ViewerDep) -> HTMLResponse:
    with runtime(request).transaction() as session:
        return _detail(request, session, viewer, _source(session, viewer, source_id))


@router.get("/whatsapp/sources/{source_id}/counts")
def source_counts(request: Request, source_id: int, viewer: ViewerDep) -> HTMLResponse:
    """The fragment the page polls: last event and counts."""
    with runtime(request).transaction() as session:
        source = _source(session, viewer, source_id)
        return render(request, "_source_counts.html", viewer, source=source)


@router.get("/whatsapp/sources/{source_id}/requests")
def source_requests(request: Request, source_id: int, viewer: ViewerDep) -> HTMLResponse:
    """The latest 50 requests, refreshed after Send sample or on demand."""
    with runtime(request).transaction() as session:
        source = _source(session, viewer, source_id)
        return render(
            request,
            "_source_requests.html",
            viewer,
            source=source,
            requests=manage.request_log(session, viewer.workspace_id, source.id),
            outcomes=OUTCOMES,
        )


@router.post("/whatsapp/sources/{source_id}", dependencies=CsrfChecked)
def source_save(
    request: Request,
    source_id: int,
    viewer: ViewerDep,
    posted: PostedSecrets,
    name: Annotated[str, Form()] = "",
) -> Response:
    rt = runtime(request)
    with rt.transaction() as session:
        source = _source(session, viewer, source_id)
        form = SourceForm.parse(source.kind, name, posted, new=False)
        if not form.errors:
            try:
                manage.update(
                    session, source, {"name": form.name, "secrets": form.secrets}, rt.settings
                )
            except BadField as error:
                form.errors[error.key or error.field] = sentence(str(error))
        if form.errors:
            session.rollback()
            return _detail(
                request,
                session,
                viewer,
                _source(session, viewer, source_id),
                form=form,
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
    flash(request, "Settings saved.")
    return _see_other(_page(source_id))


@router.post("/whatsapp/sources/{source_id}/regenerate/{secret}", dependencies=CsrfChecked)
def source_regenerate(request: Request, source_id: int, secret: str, viewer: ViewerDep) -> Response:
    """A new value for a secret chathooks generated; the sender needs the new one."""
    rt = runtime(request)
    with rt.transaction() as session:
        source = _source(session, viewer, source_id)
        try:
            manage.update(session, source, {"secrets": {secret: None}}, rt.settings)
        except BadField:
            raise PageNotFound() from None
    flash(request, "New value created: paste it into the sender's configuration.")
    return _see_other(_page(source_id))


@router.post("/whatsapp/sources/{source_id}/sample", dependencies=CsrfChecked)
async def source_sample(request: Request, source_id: int, viewer: ViewerDep) -> Response:
    """Sends the kind's signed sample to the source's URL and shows the answer."""
    try:
        outcome = await manage.send_sample(runtime(request), viewer.workspace_id, source_id)
    except NotFound:
        raise PageNotFound() from None
    if request.headers.get("hx-request"):
        response = render(
            request,
            "_sample_result.html",
            viewer,
            outcome=outcome,
            excerpt=outcome.body[:EXCERPT_CHARS],
        )
        response.headers["HX-Trigger"] = "sampled"
        return response
    result = outcome.status or outcome.error
    flash(request, f"Sample sent: {result}.", "ok" if outcome.success else "error")
    return _see_other(_page(source_id))


@router.post("/whatsapp/sources/{source_id}/check", dependencies=CsrfChecked)
async def source_check(request: Request, source_id: int, viewer: ViewerDep) -> Response:
    """Asks the sender whether this source can send, and shows its answer in words."""
    try:
        found = await check.check(runtime(request), viewer.workspace_id, source_id)
    except NotFound:
        raise PageNotFound() from None
    if request.headers.get("hx-request"):
        return render(request, "_check_result.html", viewer, check=found)
    flash(request, found.words, "ok" if found.ok else "error")
    return _see_other(_page(source_id))


@router.post("/whatsapp/sources/{source_id}/delete", dependencies=CsrfChecked)
def source_delete(request: Request, source_id: int, viewer: ViewerDep) -> Response:
    with runtime(request).transaction() as session:
        manage.delete(session, _source(session, viewer, source_id))
    flash(request, "Source deleted. The messages it brought in stay.")
    return _see_other("/whatsapp/sources")

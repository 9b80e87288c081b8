"""WhatsApp sources (SPEC §8): settings, their inbound request log, and a signed sample."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from chathooks.api.deps import RuntimeDep, WorkspaceDep
from chathooks.api.errors import ERRORS
from chathooks.public_url import reachability_warning
from chathooks.schemas import (
    CheckResult,
    InboundRequestOut,
    SampleResult,
    SourceIn,
    SourceOut,
    SourcePatch,
)
from chathooks.sources import check, manage
from chathooks.store.models import Source

router = APIRouter(prefix="/api/v1/sources", tags=["WhatsApp sources"], responses=ERRORS)


def source_out(session: Session, source: Source, base_url: str) -> SourceOut:
    url = manage.url(base_url, source)
    return SourceOut(
        id=source.id,
        kind=source.kind,
        name=source.name,
        url=url,
        reachability_warning=reachability_warning(url),
        secrets=dict(source.secrets),
        teammate_email=manage.teammate_email(session, source),
        stored=source.stored,
        duplicates=source.duplicates,
        ignored=source.ignored,
        rejected=source.rejected,
        last_event_at=source.last_event_at,
        created_at=source.created_at,
    )


@router.get("", summary="List the sources", response_model=list[SourceOut])
def list_sources(workspace: WorkspaceDep, rt: RuntimeDep) -> list[SourceOut]:
    with rt.transaction() as session:
        return [
            source_out(session, s, rt.settings.base_url)
            for s in manage.list_for(session, workspace)
        ]


@router.post(
    "", summary="Connect a source", status_code=status.HTTP_201_CREATED, response_model=SourceOut
)
def create_source(body: SourceIn, workspace: WorkspaceDep, rt: RuntimeDep) -> SourceOut:
    """Paste the answer's ``url`` (and the generated secrets) into the sender's webhook
    configuration; see the README's "Connect WhatsApp"."""
    with rt.transaction() as session:
        source = manage.create(
            session,
            workspace,
            kind=body.kind,
            name=body.name,
            secrets=body.secrets,
            teammate_email=str(body.teammate_email) if body.teammate_email else None,
            now=rt.clock.now(),
            settings=rt.settings,
        )
        return source_out(session, source, rt.settings.base_url)


@router.get("/{source_id}", summary="Get a source", response_model=SourceOut)
def get_source(source_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> SourceOut:
    with rt.transaction() as session:
        return source_out(session, manage.get(session, workspace, source_id), rt.settings.base_url)


@router.patch("/{source_id}", summary="Change a source", response_model=SourceOut)
def patch_source(
    source_id: int, body: SourcePatch, workspace: WorkspaceDep, rt: RuntimeDep
) -> SourceOut:
    with rt.transaction() as session:
        source = manage.get(session, workspace, source_id)
        manage.update(session, source, body.model_dump(exclude_unset=True), rt.settings)
        return source_out(session, source, rt.settings.base_url)


@router.delete("/{source_id}", summary="Remove a source", status_code=status.HTTP_204_NO_CONTENT)
def delete_source(source_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> Response:
    """The messages and WhatsApp accounts it brought in stay."""
    with rt.transaction() as session:
        manage.delete(session, manage.get(session, workspace, source_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{source_id}/requests",
    summary="Request log of a source",
    response_model=list[InboundRequestOut],
)
def source_requests(
    source_id: int, workspace: WorkspaceDep, rt: RuntimeDep
) -> list[InboundRequestOut]:
    """The latest 50 requests the source received, newest first, secrets masked."""
    with rt.transaction() as session:
        return [
            InboundRequestOut.model_validate(r)
            for r in manage.request_log(session, workspace, source_id)
        ]


@router.post("/{source_id}/sample", summary="Send a sample event", response_model=SampleResult)
async def send_sample(source_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> SampleResult:
    """POST a correctly signed sample event of this kind to the source's own URL; it is
    stored and forwarded like a real message, marked as a test: its ``message_id`` starts
    with ``test_`` and its webhook requests carry ``chathooks-test: true``. Its business
    number's account is named "Sample (from Send sample)"."""
    outcome = await manage.send_sample(rt, workspace, source_id)
    return SampleResult(
        success=outcome.success,
        status=outcome.status,
        body=outcome.body,
        error=outcome.error,
        latency_ms=outcome.latency_ms,
    )


@router.post("/{source_id}/check", summary="Check sending", response_model=CheckResult)
async def check_source(source_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> CheckResult:
    """Makes the sender's cheapest authenticated read with the source's sending secrets
    (WAHA's session status, Evolution's connection state, Meta's phone-number fields) and
    says in plain words whether chathooks can send through it, and if not, why."""
    found = await check.check(rt, workspace, source_id)
    return CheckResult(ok=found.ok, words=found.words)

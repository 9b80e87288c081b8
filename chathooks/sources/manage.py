"""WhatsApp sources: create, change and delete them, their log, and the Send sample action.

Used by the API and the pages alike. The requests senders make are ``sources.receive``'s.
"""

from __future__ import annotations

import asyncio
import secrets as random
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from chathooks import payloads
from chathooks.deliver.transport import Outcome
from chathooks.errors import BadField, NotFound
from chathooks.runtime import Runtime
from chathooks.security import UnsafeTarget, check_sender_url
from chathooks.settings import Settings
from chathooks.sources import bodies
from chathooks.sources.kinds import KINDS
from chathooks.sources.protocol import Kind, RawRequest, Secret
from chathooks.states import SourceKind
from chathooks.store import sources, tenants
from chathooks.store.models import InboundRequest, Source, Teammate

CREDENTIAL_MIN_LENGTH = 8


def url(base_url: str, source: Source) -> str:
    return f"{base_url}/in/{source.key}"


def new_secret() -> str:
    return random.token_urlsafe(24)


def kind_of(source: Source) -> Kind:
    return KINDS[source.kind]


def _teammate(session: Session, workspace_id: int, email: str | None) -> int | None:
    if email is None:
        return None
    teammate = tenants.teammate_by_email(session, workspace_id, email.lower())
    if teammate is None:
        raise BadField("teammate_email", f"no teammate with e-mail {email}")
    return teammate.id


def _secrets(
    kind: Kind, given: Mapping[str, str | None], current: Mapping[str, str], settings: Settings
) -> dict[str, str]:
    """The kind's secrets after applying ``given``: generated ones are made when absent (or
    given as None), the user's own are required unless optional (then kept as ``""``); each
    value given is checked for its role."""
    known = {secret.name: secret for secret in kind.SECRETS}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise BadField(
            "secrets", f"{kind.NAME} has no secret {unknown[0]!r} (it has: {', '.join(known)})"
        )
    values = {}
    for name, secret in known.items():
        value = given[name] if name in given else current.get(name)
        if value is None and secret.generated:
            value = new_secret()
        if not value and secret.required:
            raise BadField("secrets", f"{name} is required for {kind.NAME}: {secret.hint}")
        if value and name in given:
            _check_value(secret, value, settings)
        values[name] = value or ""
    return values


def _check_value(secret: Secret, value: str, settings: Settings) -> None:
    """A credential has 8 characters or more; a sender's API URL follows the webhook rule,
    with the operator's ``CHATHOOKS_SENDER_HOSTS``."""
    if secret.role == "credential" and len(value) < CREDENTIAL_MIN_LENGTH:
        raise BadField(
            "secrets",
            f"{secret.name} must have at least {CREDENTIAL_MIN_LENGTH} characters",
            key=secret.name,
        )
    if secret.role == "address":
        try:
            check_sender_url(value, settings.allow_private_targets, settings.sender_hosts)
        except UnsafeTarget as error:
            raise BadField("secrets", f"{secret.name}: URL {error}", key=secret.name) from None


def create(
    session: Session,
    workspace_id: int,
    *,
    kind: SourceKind,
    name: str,
    secrets: Mapping[str, str | None],
    teammate_email: str | None,
    now: datetime,
    settings: Settings,
) -> Source:
    return sources.add(
        session,
        workspace_id=workspace_id,
        kind=kind,
        name=name,
        key=new_secret(),
        secrets=_secrets(KINDS[kind], secrets, {}, settings),
        teammate_id=_teammate(session, workspace_id, teammate_email),
        created_at=now,
    )


def get(session: Session, workspace_id: int, source_id: int) -> Source:
    source = sources.get(session, workspace_id, source_id)
    if source is None:
        raise NotFound("source")
    return source


def list_for(session: Session, workspace_id: int) -> list[Source]:
    return sources.list_for_workspace(session, workspace_id)


def update(
    session: Session, source: Source, changes: Mapping[str, object], settings: Settings
) -> None:
    """``changes`` as the API's PATCH has them (only the fields that were sent)."""
    if changes.get("name") is not None:
        source.name = str(changes["name"])
    given = changes.get("secrets")
    if isinstance(given, Mapping) and given:
        source.secrets = _secrets(kind_of(source), given, source.secrets, settings)
    if "teammate_email" in changes:
        email = changes["teammate_email"]
        source.teammate_id = _teammate(
            session, source.workspace_id, None if email is None else str(email)
        )


def delete(session: Session, source: Source) -> None:
    """The messages and accounts it brought in stay; its log goes."""
    tenants.forget_source(session, source.id)
    sources.delete_source(session, source)


def teammate_email(session: Session, source: Source) -> str:
    if source.teammate_id is None:
        return ""
    teammate = tenants.teammate_by_id(session, source.teammate_id)
    return teammate.email if teammate else ""


def request_log(session: Session, workspace_id: int, source_id: int) -> list[InboundRequest]:
    return sources.latest_requests(session, get(session, workspace_id, source_id).id)


class Owning(Protocol):
    """A source as far as the accounts it creates go: their owner, and the source itself."""

    @property
    def id(self) -> int: ...
    @property
    def workspace_id(self) -> int: ...
    @property
    def teammate_id(self) -> int | None: ...


def account_owner(session: Session, source: Owning, now: datetime) -> Teammate:
    """Who owns a WhatsApp account that this source's first event creates: its teammate, or
    the workspace owner."""
    if source.teammate_id is not None:
        teammate = tenants.teammate_by_id(session, source.teammate_id)
        if teammate is not None:
            return teammate
    workspace = tenants.get_workspace(session, source.workspace_id)
    assert workspace is not None
    owner = tenants.teammate_by_email(session, workspace.id, workspace.owner_email.lower())
    if owner is None:  # the owner's teammate row is gone: bring it back
        owner = tenants.add_teammate(
            session,
            workspace.id,
            full_name=workspace.owner_name,
            email=workspace.owner_email.lower(),
            now=now,
        )
    return owner


SAMPLE_ACCOUNT_NAME = "Sample (from Send sample)"


def _sample_account(session: Session, source: Source, request: RawRequest, now: datetime) -> None:
    """The sample's business number, read from the sample as a real event would be, gets
    its account before the sample arrives: named a sample, so nothing looks real (and it
    can be removed like any account)."""
    kind = kind_of(source)
    reading = kind.read(bodies.parsed(kind.WIRE, request.body))
    phones = {str(m.get("whatsapp_account_phone", "")) for m in reading.messages}
    known = tenants.accounts_by_phone(session, source.workspace_id, phones)
    add_accounts(session, source, phones - known.keys() - {""}, now, name=SAMPLE_ACCOUNT_NAME)


def add_accounts(
    session: Session, source: Owning, phones: Iterable[str], now: datetime, *, name: str = ""
) -> None:
    """Accounts for business numbers a source's events name first, owned by the source's
    teammate (``account_owner``) and marked as fed by it."""
    missing = sorted(phones)
    if not missing:
        return
    owner = account_owner(session, source, now)
    tenants.insert_accounts(
        session,
        [
            {
                "workspace_id": source.workspace_id,
                "phone": phone,
                "teammate_id": owner.id,
                "source_id": source.id,
                "name": name,
                "created_at": now,
            }
            for phone in missing
        ],
    )


async def send_sample(rt: Runtime, workspace_id: int, source_id: int) -> Outcome:
    """POST a correctly signed sample event of the source's kind to its own public URL, the
    way its sender would: the sample is stored and forwarded like any message, marked as a
    test (its ``message_id`` starts with ``test_``, so its webhook requests carry
    ``chathooks-test: true``), on an account named a sample."""

    def prepare() -> tuple[str, dict[str, str], bytes]:
        with rt.transaction() as session:
            source = get(session, workspace_id, source_id)
            now = rt.clock.now()
            target = url(rt.settings.base_url, source)
            request = kind_of(source).sample(
                source.secrets, payloads.TEST_ID_PREFIX + uuid.uuid4().hex, now, target
            )
            _sample_account(session, source, request, now)
            return target, dict(request.headers), request.body

    target, headers, body = await asyncio.to_thread(prepare)
    return await rt.own_transport.post(target, headers, body)

"""Queueing messages to send through a source's sender, and what the sender reports later.

The API and the chat page call these in their own unit of work (nothing here commits).
A send goes to the account's source: the one whose events made the account, if its kind
can send (``sources.kinds.SENDERS``) and it has its sending credentials.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chathooks.errors import BadField, Conflict, NotFound
from chathooks.sources.kinds import KINDS, SENDERS
from chathooks.sources.protocol import SendReport, Template
from chathooks.states import OutgoingStatus, SourceKind
from chathooks.store import messages, notices, outgoing, sources, tenants
from chathooks.store.models import Outgoing, Source, WhatsappAccount

log = logging.getLogger("chathooks.send")

TEMPLATE_KINDS = (SourceKind.WHATSAPP_CLOUD, SourceKind.TWILIO)
"""The kinds whose sender takes a message template (Meta's, outside the 24-hour window;
Twilio's Content API template as ``name``)."""
REPORTED_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Queued:
    """A send as queued; ``replayed``: an earlier request with the same idempotency key
    queued it, and ``answer`` is what that request was answered."""

    outgoing: Outgoing
    answer: dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class Draft:
    """What to send, by whom, and the request's idempotency key and fingerprint."""

    text: str
    template: Template | None
    teammate_id: int | None
    idempotency_key: str | None
    fingerprint: str


def enqueue_to_chat(
    session: Session,
    workspace_id: int,
    chat_id: int,
    *,
    text: str,
    now: datetime,
    template: Template | None = None,
    teammate_id: int | None = None,
    idempotency_key: str | None = None,
) -> Queued:
    """Queue ``text`` (or a ``template``) to a stored chat, from ``teammate_id`` (the chat
    page) or the workspace (the API). Raises ``NotFound`` (no such chat in the workspace),
    ``Conflict`` (its account cannot send, or the key was used for another request) and
    ``BadField`` (a template for a kind that takes none)."""
    fingerprint = _fingerprint("chat", chat_id, text, template)
    draft = Draft(text, template, teammate_id, idempotency_key, fingerprint)
    if (replay := _replayed(session, workspace_id, draft)) is not None:
        return replay
    chat = messages.get_chat(session, workspace_id, chat_id)
    if chat is None:
        raise NotFound("chat")
    account = tenants.get_account(session, workspace_id, chat.account_id)
    if account is None:
        raise Conflict("this chat's WhatsApp account was removed: nothing can be sent from it")
    lane = {
        "chat_id": chat.id,
        "chat_key": chat.external_id,
        "is_group": chat.is_group,
        "phone": "" if chat.is_group else chat.phone,
    }
    return _enqueue(session, account, lane, draft, now)


def enqueue_to_phone(
    session: Session,
    workspace_id: int,
    *,
    account_phone: str,
    phone: str,
    text: str,
    now: datetime,
    template: Template | None = None,
    teammate_id: int | None = None,
    idempotency_key: str | None = None,
) -> Queued:
    """Queue ``text`` to a phone number from one of the workspace's accounts: the chat is
    the phone's (``<digits>@c.us``), made by the sent message if it is new. Refuses as
    ``enqueue_to_chat`` does (``BadField`` for an unknown account)."""
    fingerprint = _fingerprint("phone", f"{account_phone} {phone}", text, template)
    draft = Draft(text, template, teammate_id, idempotency_key, fingerprint)
    if (replay := _replayed(session, workspace_id, draft)) is not None:
        return replay
    account = tenants.account_by_phone(session, workspace_id, account_phone)
    if account is None:
        raise BadField(
            "whatsapp_account_phone", f"no WhatsApp account with phone {account_phone!r}"
        )
    chat_key = phone.removeprefix("+") + "@c.us"
    found = messages.chats_by_key(session, [(account.id, chat_key)]).get((account.id, chat_key))
    lane = {
        "chat_id": found.id if found is not None else None,
        "chat_key": chat_key,
        "is_group": False,
        "phone": phone,
    }
    return _enqueue(session, account, lane, draft, now)


def get(session: Session, workspace_id: int, outgoing_id: int) -> Outgoing:
    found = outgoing.get(session, workspace_id, outgoing_id)
    if found is None:
        raise NotFound("outgoing message")
    return found


def chat_sends(
    session: Session, workspace_id: int, chat_id: int, limit: int = 50
) -> list[Outgoing]:
    """A chat's latest sends, newest first: what the chat page shows with their states."""
    return outgoing.for_chat(session, workspace_id, chat_id, limit)


def retry(session: Session, workspace_id: int, outgoing_id: int, now: datetime) -> Outgoing:
    """Queue a failed send again (its chat's later sends may have gone out meanwhile)."""
    found = get(session, workspace_id, outgoing_id)
    if not outgoing.requeue(session, workspace_id, outgoing_id, now):
        raise Conflict(f"only a failed send can be retried; this one is {found.status}")
    notices.notify(session)
    session.refresh(found)
    return found


def sending_problem(session: Session, workspace_id: int, account_id: int) -> str:
    """Why an account cannot send, in plain words ("": it can): for the chat page to show
    a reply box only where a reply can go."""
    account = tenants.get_account(session, workspace_id, account_id)
    if account is None:
        return "this WhatsApp account was removed"
    return _source_problem(account, _source_of(session, account))


def apply_reports(session: Session, source_id: int, reports: Sequence[SendReport]) -> int:
    """The sender's later word on our sent messages (Cloud API ``statuses[]``, acks): a
    ``failed`` one fails its send, with the sender's reason; returns the sends failed."""
    failed = 0
    for report in reports:
        if not report.failed or not report.message_id:
            continue
        error = report.error or "the sender reported the message as failed"
        for outgoing_id in outgoing.fail_reported(
            session, source_id, report.message_id, error[:REPORTED_ERROR_CHARS]
        ):
            failed += 1
            log_failed(outgoing_id, source_id, error, reported=True)
    return failed


def log_failed(outgoing_id: int, source_id: int, error: str, *, reported: bool = False) -> None:
    """The one line a failed send writes (its ids and the sender's reason, never the text)."""
    how = "was reported failed by its sender" if reported else "failed"
    log.warning(
        "send %d through source %d %s: %s",
        outgoing_id,
        source_id,
        how,
        error,
        extra={"outgoing_id": outgoing_id, "source_id": source_id},
    )


def answer_of(row: Outgoing) -> dict[str, Any]:
    """A send as the API shows it."""
    return {
        "id": str(row.id),
        "status": str(row.status),
        "chat_id": None if row.chat_id is None else str(row.chat_id),
        "sender_message_id": row.sender_message_id,
        "last_error": row.last_error,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "sent_at": None if row.sent_at is None else row.sent_at.isoformat(),
    }


def _enqueue(
    session: Session,
    account: WhatsappAccount,
    lane: Mapping[str, Any],
    draft: Draft,
    now: datetime,
) -> Queued:
    workspace_id = account.workspace_id
    source = _source_of(session, account)
    problem = _source_problem(account, source)
    if problem:
        raise Conflict(problem)
    assert source is not None
    if draft.template is not None and source.kind not in TEMPLATE_KINDS:
        raise BadField(
            "template",
            f"templates are sent through {_labels(TEMPLATE_KINDS, 'and')} sources only; this "
            f"chat's account sends through {KINDS[source.kind].LABEL}: send text instead",
        )
    row = {
        "workspace_id": workspace_id,
        "account_id": account.id,
        "source_id": source.id,
        **lane,
        "text": draft.text,
        "template": None if draft.template is None else _template_json(draft.template),
        "teammate_id": draft.teammate_id,
        "sender_name": _sender_name(session, workspace_id, draft.teammate_id),
        "status": OutgoingStatus.QUEUED,
        "attempts": 0,
        "next_try_at": now,
        "sender_message_id": "",
        "last_error": "",
        "idempotency_key": draft.idempotency_key,
        "request_hash": draft.fingerprint,
        "created_at": now,
        "queued_at": now,
    }
    added = outgoing.add(session, row)
    if added is None:  # a concurrent request with the same key queued it first
        replay = _replayed(session, workspace_id, draft)
        assert replay is not None
        return replay
    added.answer = answer_of(added)
    notices.notify(session)
    return Queued(added, added.answer, replayed=False)


def _replayed(session: Session, workspace_id: int, draft: Draft) -> Queued | None:
    if draft.idempotency_key is None:
        return None
    found = outgoing.by_key(session, workspace_id, draft.idempotency_key)
    if found is None:
        return None
    if found.request_hash != draft.fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used for a different request: use a new key "
            "for a new message"
        )
    return Queued(found, found.answer or answer_of(found), replayed=True)


def _source_of(session: Session, account: WhatsappAccount) -> Source | None:
    if account.source_id is None:
        return None
    return sources.get(session, account.workspace_id, account.source_id)


def _source_problem(account: WhatsappAccount, source: Source | None) -> str:
    if account.removed_at is not None:
        return f"the WhatsApp account {account.phone} was removed"
    if source is None:
        return (
            f"the WhatsApp account {account.phone} has no source to send through: connect it "
            f"through a {_labels(tuple(SENDERS), 'or')} source (Sources page)"
        )
    sender = SENDERS.get(source.kind)
    label = KINDS[source.kind].LABEL
    if sender is None:
        return f"the account's source {source.name!r} is a {label} source, which cannot send"
    missing = [
        secret.label
        for secret in KINDS[source.kind].SECRETS
        if secret.name in sender.SEND_SECRETS and not source.secrets.get(secret.name)
    ]
    if missing:
        return (
            f"the account's source {source.name!r} has no sending credentials: set its "
            f"{', '.join(missing)} on the source's page to send through {label}"
        )
    return ""


def _labels(kinds: tuple[SourceKind, ...], last: str) -> str:
    """The kinds' labels as a list in words ("A, B or C")."""
    labels = [KINDS[kind].LABEL for kind in kinds]
    return f"{', '.join(labels[:-1])} {last} {labels[-1]}" if len(labels) > 1 else labels[0]


def _sender_name(session: Session, workspace_id: int, teammate_id: int | None) -> str:
    if teammate_id is not None:
        teammate = tenants.get_teammate(session, workspace_id, teammate_id)
        if teammate is not None:
            return teammate.full_name
    workspace = tenants.get_workspace(session, workspace_id)
    return workspace.name if workspace is not None else ""


def _template_json(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "language": template.language,
        "parameters": list(template.parameters),
    }


def template_of(stored: Mapping[str, Any] | None) -> Template | None:
    """A stored template as the kind's ``Reply`` takes it."""
    if stored is None:
        return None
    return Template(stored["name"], stored["language"], tuple(stored.get("parameters", ())))


def _fingerprint(route: str, target: object, text: str, template: Template | None) -> str:
    """What makes two requests with one idempotency key the same request."""
    body = [route, str(target), text, None if template is None else _template_json(template)]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()

"""Workspaces and the people and chats in them; used by the API, the pages and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from chathooks import payloads
from chathooks.errors import BadField, Conflict, NotFound
from chathooks.security import hash_token, new_token
from chathooks.store import messages, page_sessions, sources, tenants
from chathooks.store.models import Source, Teammate, WhatsappAccount, Workspace


@dataclass(frozen=True, slots=True)
class NewWorkspace:
    workspace: Workspace
    api_token: str
    owner: Teammate


def create_workspace(
    session: Session, *, name: str, owner_name: str, owner_email: str, now: datetime
) -> NewWorkspace:
    token = new_token("chk_")
    workspace = tenants.add_workspace(
        session,
        name=name,
        owner_name=owner_name,
        owner_email=owner_email,
        token_hash=hash_token(token),
        now=now,
    )
    owner = tenants.add_teammate(
        session, workspace.id, full_name=owner_name, email=owner_email.lower(), now=now
    )
    return NewWorkspace(workspace, token, owner)


def rotate_api_token(session: Session, workspace_id: int) -> str:
    """A new API token; the previous one stops working when this transaction commits."""
    token = new_token("chk_")
    tenants.set_token_hash(session, workspace_id, hash_token(token))
    return token


def add_teammate(
    session: Session, workspace_id: int, *, full_name: str, email: str, now: datetime
) -> Teammate:
    if tenants.teammate_by_email(session, workspace_id, email.lower()):
        raise Conflict(f"a teammate with e-mail {email} exists already")
    return tenants.add_teammate(
        session, workspace_id, full_name=full_name, email=email.lower(), now=now
    )


def add_account(
    session: Session, workspace_id: int, *, phone: str, full_name: str, email: str, now: datetime
) -> tuple[WhatsappAccount, Teammate]:
    """Connect a WhatsApp number; its owner becomes a teammate if they are not one yet. A
    removed account of this number comes back (its chats with it)."""
    existing = tenants.account_by_phone(session, workspace_id, phone)
    if existing is not None and existing.removed_at is None:
        raise Conflict(f"a WhatsApp account with phone {phone} exists already")
    owner = tenants.teammate_by_email(session, workspace_id, email.lower())
    if owner is None:
        owner = tenants.add_teammate(
            session, workspace_id, full_name=full_name, email=email.lower(), now=now
        )
    if existing is None:
        return tenants.add_account(
            session, workspace_id, phone=phone, teammate_id=owner.id, now=now
        ), owner
    tenants.insert_accounts(
        session,
        [
            {
                "workspace_id": workspace_id,
                "phone": phone,
                "teammate_id": owner.id,
                "created_at": now,
            }
        ],
    )
    session.refresh(existing)
    return existing, owner


def get_account(session: Session, workspace_id: int, account_id: int) -> WhatsappAccount:
    account = tenants.get_account(session, workspace_id, account_id)
    if account is None:
        raise NotFound("WhatsApp account")
    return account


def rename_account(session: Session, account: WhatsappAccount, name: str) -> None:
    tenants.rename_account(session, account, name)


def remove_account(session: Session, account: WhatsappAccount, now: datetime) -> None:
    """Removed from the lists, the API and webhook filters; its chats, messages and what was
    delivered stay. Its number's next event (or ``add_account``) brings it back."""
    tenants.remove_account(session, account, now)


def get_chat(session: Session, workspace_id: int, chat_id: int) -> payloads.ChatContext:
    chat = messages.get_chat(session, workspace_id, chat_id)
    if chat is None:
        raise NotFound("chat")
    return payloads.ChatContext(*messages.chat_contexts(session, [chat.id])[chat.id])


def set_responsible(session: Session, workspace_id: int, chat_id: int, email: str | None) -> None:
    teammate = None
    if email is not None:
        teammate = tenants.teammate_by_email(session, workspace_id, email.lower())
        if teammate is None:
            raise BadField("responsible_email", f"no teammate with e-mail {email}")
    messages.set_responsible(session, chat_id, teammate.id if teammate else None)


def list_teammates(session: Session, workspace_id: int) -> list[Teammate]:
    return tenants.list_teammates(session, workspace_id)


def get_teammate(session: Session, workspace_id: int, teammate_id: int) -> Teammate:
    teammate = tenants.get_teammate(session, workspace_id, teammate_id)
    if teammate is None:
        raise NotFound("teammate")
    return teammate


def owner_of(session: Session, workspace_id: int) -> Teammate | None:
    """The teammate who owns the workspace (alerts go to them)."""
    workspace = tenants.get_workspace(session, workspace_id)
    if workspace is None:
        return None
    return tenants.teammate_by_email(session, workspace_id, workspace.owner_email.lower())


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing a teammate changed, to tell the one who removed them."""

    full_name: str
    accounts_moved: int
    chats_unassigned: int
    new_account_owner: str


def remove_teammate(session: Session, workspace_id: int, teammate_id: int) -> Removal:
    """Remove a teammate: their WhatsApp accounts pass to the workspace owner (the accounts
    keep forwarding; payloads then name the owner), the chats they were responsible for
    have no responsible, sources they owned fall back to the owner, and their login ends at
    once. The owner can't be removed."""
    teammate = get_teammate(session, workspace_id, teammate_id)
    owner = owner_of(session, workspace_id)
    if owner is None or owner.id == teammate.id:
        raise Conflict("the workspace owner can't be removed: alert e-mails go to them")
    moved = tenants.move_accounts(session, teammate.id, owner.id)
    unassigned = messages.unassign(session, teammate.id)
    sources.release_teammate(session, teammate.id)
    page_sessions.delete_for_teammate(session, teammate.id)
    tenants.delete_teammate(session, teammate)
    return Removal(teammate.full_name, moved, unassigned, owner.full_name)


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as the API and the page list it: its owner and the source feeding it."""

    account: WhatsappAccount
    owner: Teammate
    source: Source | None


def list_accounts(session: Session, workspace_id: int) -> list[tuple[WhatsappAccount, Teammate]]:
    return tenants.list_accounts(session, workspace_id)


def account_rows(session: Session, workspace_id: int) -> list[AccountRow]:
    fed_by = {s.id: s for s in sources.list_for_workspace(session, workspace_id)}
    return [
        AccountRow(account, owner, fed_by.get(account.source_id or 0))
        for account, owner in tenants.list_accounts(session, workspace_id)
    ]

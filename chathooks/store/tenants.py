"""Workspaces, teammates, WhatsApp accounts and operator facts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chathooks.store.dialect import changed, count_by
from chathooks.store.models import Meta, Teammate, WhatsappAccount, Workspace


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    session.merge(Meta(key=key, value=value))


def add_workspace(
    session: Session,
    *,
    name: str,
    owner_name: str,
    owner_email: str,
    token_hash: str,
    now: datetime,
) -> Workspace:
    workspace = Workspace(
        name=name,
        owner_name=owner_name,
        owner_email=owner_email,
        api_token_hash=token_hash,
        created_at=now,
    )
    session.add(workspace)
    session.flush()
    return workspace


def workspace_by_token_hash(session: Session, token_hash: str) -> Workspace | None:
    return session.scalars(
        select(Workspace).where(Workspace.api_token_hash == token_hash)
    ).one_or_none()


def get_workspace(session: Session, workspace_id: int) -> Workspace | None:
    return session.get(Workspace, workspace_id)


def teammate_by_email(session: Session, workspace_id: int, email: str) -> Teammate | None:
    return session.scalars(
        select(Teammate).where(Teammate.workspace_id == workspace_id, Teammate.email == email)
    ).one_or_none()


def teammates_by_email_anywhere(session: Session, email: str) -> list[Teammate]:
    return list(session.scalars(select(Teammate).where(Teammate.email == email)))


def teammate_by_id(session: Session, teammate_id: int) -> Teammate | None:
    return session.get(Teammate, teammate_id)


def get_teammate(session: Session, workspace_id: int, teammate_id: int) -> Teammate | None:
    teammate = session.get(Teammate, teammate_id)
    return teammate if teammate and teammate.workspace_id == workspace_id else None


def add_teammate(
    session: Session, workspace_id: int, *, full_name: str, email: str, now: datetime
) -> Teammate:
    teammate = Teammate(workspace_id=workspace_id, full_name=full_name, email=email, created_at=now)
    session.add(teammate)
    session.flush()
    return teammate


def list_teammates(session: Session, workspace_id: int) -> list[Teammate]:
    return list(
        session.scalars(
            select(Teammate).where(Teammate.workspace_id == workspace_id).order_by(Teammate.id)
        )
    )


def delete_teammate(session: Session, teammate: Teammate) -> None:
    session.delete(teammate)
    session.flush()


def add_account(
    session: Session, workspace_id: int, *, phone: str, teammate_id: int, now: datetime
) -> WhatsappAccount:
    account = WhatsappAccount(
        workspace_id=workspace_id, phone=phone, teammate_id=teammate_id, created_at=now
    )
    session.add(account)
    session.flush()
    return account


def account_by_phone(session: Session, workspace_id: int, phone: str) -> WhatsappAccount | None:
    return session.scalars(
        select(WhatsappAccount).where(
            WhatsappAccount.workspace_id == workspace_id, WhatsappAccount.phone == phone
        )
    ).one_or_none()


def accounts_by_phone(
    session: Session, workspace_id: int, phones: Iterable[str]
) -> dict[str, WhatsappAccount]:
    rows = session.scalars(
        select(WhatsappAccount).where(
            WhatsappAccount.workspace_id == workspace_id, WhatsappAccount.phone.in_(set(phones))
        )
    )
    return {row.phone: row for row in rows}


def list_accounts(session: Session, workspace_id: int) -> list[tuple[WhatsappAccount, Teammate]]:
    """The workspace's accounts with their owners, in the order they were connected."""
    rows = session.execute(
        select(WhatsappAccount, Teammate)
        .join(Teammate, Teammate.id == WhatsappAccount.teammate_id)
        .where(WhatsappAccount.workspace_id == workspace_id)
        .order_by(WhatsappAccount.id)
    )
    return [(account, owner) for account, owner in rows]


def account_counts(session: Session, workspace_id: int) -> dict[int, int]:
    """WhatsApp accounts per owning teammate."""
    return count_by(
        session, WhatsappAccount.teammate_id, WhatsappAccount.workspace_id == workspace_id
    )


def move_accounts(session: Session, from_teammate: int, to_teammate: int) -> int:
    """Give every account of one teammate to another; returns how many moved."""
    return changed(
        session,
        update(WhatsappAccount)
        .where(WhatsappAccount.teammate_id == from_teammate)
        .values(teammate_id=to_teammate),
    )

"""Workspaces, teammates, WhatsApp accounts and operator facts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from chathooks.store.dialect import (
    changed,
    count_by,
    insert_for,
    table,
)
from chathooks.store.ids import get_by_id
from chathooks.store.models import Meta, Teammate, WhatsappAccount, Workspace


def get_meta(session: Session, key: str) -> str | None:
    value: str | None = session.scalar(select(Meta.value).where(Meta.key == key))
    return value


def set_meta(session: Session, key: str, value: str) -> None:
    """An upsert: two processes that set the same key at once both succeed, last one wins."""
    statement = insert_for(session, Meta).values(key=key, value=value)
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def has_workspace(session: Session) -> bool:
    return session.scalar(select(Workspace.id).limit(1)) is not None


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


_WORKSPACE_BY_TOKEN = select(Workspace.id).where(Workspace.api_token_hash == bindparam("hash"))


def workspace_id_by_token_hash(connection: Connection, token_hash: str) -> int | None:
    """One lookup on the token's unique index: done on every API request."""
    return connection.scalar(_WORKSPACE_BY_TOKEN, {"hash": token_hash})


def set_token_hash(session: Session, workspace_id: int, token_hash: str) -> None:
    session.execute(
        update(Workspace).where(Workspace.id == workspace_id).values(api_token_hash=token_hash)
    )


def get_workspace(session: Session, workspace_id: int) -> Workspace | None:
    return get_by_id(session, Workspace, workspace_id)


def teammate_by_email(session: Session, workspace_id: int, email: str) -> Teammate | None:
    return session.scalars(
        select(Teammate).where(Teammate.workspace_id == workspace_id, Teammate.email == email)
    ).one_or_none()


def teammates_by_email_anywhere(session: Session, email: str) -> list[Teammate]:
    return list(session.scalars(select(Teammate).where(Teammate.email == email)))


def teammate_by_id(session: Session, teammate_id: int) -> Teammate | None:
    return get_by_id(session, Teammate, teammate_id)


def get_teammate(session: Session, workspace_id: int, teammate_id: int) -> Teammate | None:
    teammate = get_by_id(session, Teammate, teammate_id)
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
    """The account with this phone, a removed one too."""
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
            WhatsappAccount.workspace_id == workspace_id,
            WhatsappAccount.phone.in_(set(phones)),
            WhatsappAccount.removed_at.is_(None),
        )
    )
    return {row.phone: row for row in rows}


def get_account(session: Session, workspace_id: int, account_id: int) -> WhatsappAccount | None:
    """A workspace's account that is not removed."""
    account = get_by_id(session, WhatsappAccount, account_id)
    if account is None or account.workspace_id != workspace_id or account.removed_at:
        return None
    return account


_accounts = table(WhatsappAccount)
_ACCOUNT_IDS = select(_accounts.c.phone, _accounts.c.id).where(
    _accounts.c.workspace_id == bindparam("workspace"),
    _accounts.c.phone.in_(bindparam("phones", expanding=True)),
    _accounts.c.removed_at.is_(None),
)


def account_ids_by_phone(
    session: Session, workspace_id: int, phones: Iterable[str]
) -> dict[str, int]:
    """Of these phones, the workspace's accounts' ids: one Core read, done on every ingest."""
    rows = session.connection().execute(
        _ACCOUNT_IDS, {"workspace": workspace_id, "phones": list(set(phones))}
    )
    return {phone: account_id for phone, account_id in rows}


_teammates = table(Teammate)
_ACCOUNTS_WITH_OWNERS = (
    select(_accounts.c.phone, _accounts.c.id, _teammates.c.full_name)
    .join(_teammates, _teammates.c.id == _accounts.c.teammate_id)
    .where(
        _accounts.c.workspace_id == bindparam("workspace"),
        _accounts.c.phone.in_(bindparam("phones", expanding=True)),
        _accounts.c.removed_at.is_(None),
    )
)


def accounts_with_owners(
    session: Session, workspace_id: int, phones: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """Of these phones, the workspace's accounts: (id, owner's full name). A Core read that a
    source's every group of requests makes, once: ``ingest`` is given the ids."""
    rows = session.connection().execute(
        _ACCOUNTS_WITH_OWNERS, {"workspace": workspace_id, "phones": list(set(phones))}
    )
    return {phone: (account_id, full_name) for phone, account_id, full_name in rows}


def insert_accounts(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert accounts, skipping any a concurrent request created first. A removed account
    of the same phone comes back as new: these rows' owner, source, name and time."""
    if not rows:
        return
    statement = insert_for(session, WhatsappAccount)
    revived = {
        column: statement.excluded[column]
        for column in ("teammate_id", "source_id", "name", "created_at")
    }
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "phone"],
            set_={**revived, "removed_at": None},
            where=_accounts.c.removed_at.is_not(None),
        ),
        [{"name": "", "source_id": None, **row} for row in rows],
    )


def rename_account(session: Session, account: WhatsappAccount, name: str) -> None:
    account.name = name
    session.flush()


def remove_account(session: Session, account: WhatsappAccount, now: datetime) -> None:
    account.removed_at = now
    session.flush()


def forget_source(session: Session, source_id: int) -> None:
    """Accounts a deleted source created count as connected by hand from now on."""
    session.execute(
        update(WhatsappAccount)
        .where(WhatsappAccount.source_id == source_id)
        .values(source_id=None)
        .execution_options(synchronize_session=False)
    )


def list_accounts(session: Session, workspace_id: int) -> list[tuple[WhatsappAccount, Teammate]]:
    """The workspace's accounts with their owners, in the order they were connected."""
    rows = session.execute(
        select(WhatsappAccount, Teammate)
        .join(Teammate, Teammate.id == WhatsappAccount.teammate_id)
        .where(WhatsappAccount.workspace_id == workspace_id, WhatsappAccount.removed_at.is_(None))
        .order_by(WhatsappAccount.id)
    )
    return [(account, owner) for account, owner in rows]


def account_counts(session: Session, workspace_id: int) -> dict[int, int]:
    """WhatsApp accounts per owning teammate."""
    return count_by(
        session,
        WhatsappAccount.teammate_id,
        WhatsappAccount.workspace_id == workspace_id,
        WhatsappAccount.removed_at.is_(None),
    )


def move_accounts(session: Session, from_teammate: int, to_teammate: int) -> int:
    """Give every account of one teammate to another; returns how many moved."""
    return changed(
        session,
        update(WhatsappAccount)
        .where(WhatsappAccount.teammate_id == from_teammate)
        .values(teammate_id=to_teammate),
    )

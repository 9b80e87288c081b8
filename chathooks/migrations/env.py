"""Alembic environment: runs migrations on the URL that chathooks was configured with."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from chathooks.store.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
connectable = create_engine(url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()

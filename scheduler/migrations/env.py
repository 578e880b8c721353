"""Alembic environment: the engine comes from tminus (`scheduler.db.upgrade`)."""

from __future__ import annotations

from alembic import context

import scheduler.models  # the schema: the Core tables the models are mapped onto

config = context.config
target_metadata = scheduler.models.metadata


def run() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from sqlalchemy import create_engine
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///tminus.db",
                               hide_parameters=True)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()

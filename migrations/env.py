"""Alembic environment: the engine comes from engine.db (or the configured URL)."""

from alembic import context
from sqlalchemy import create_engine

from engine.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj: object, name: str | None, kind: str, reflected: bool,
                   compare_to: object) -> bool:
    # PostgreSQL's trigram indexes a migration makes where it can (0023): not in the models
    return not (kind == "index" and (name or "").endswith("_trgm"))


def run_migrations_online() -> None:
    connectable = config.attributes.get("engine")
    if connectable is None:
        connectable = create_engine(config.get_main_option("sqlalchemy.url"))
    with connectable.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch migrations rebuild tables; SQLite must not check foreign keys while the
            # old table is dropped (it is checked again on the next connection).
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()

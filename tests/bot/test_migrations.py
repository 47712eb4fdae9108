"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL —
every table, column, index and constraint — so `make run` and CI never run on a schema the
code does not expect. The only differences allowed are the full-text index's, which the
models cannot describe: SQLite's FTS5 virtual table (and its shadow tables) and
PostgreSQL's GIN index in place of the model's plain one."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from bot.models import Base


def _full_text_index(change: Any) -> bool:
    text = repr(change)
    return "message_fts" in text or "ix_message_search_terms" in text


def test_migrations_build_the_models_schema(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [c for c in diff if not _full_text_index(c)] == []

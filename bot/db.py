"""Database engine and sessions (SQLAlchemy 2).

SQLite is the embedded default and three processes write to it (API, action server, jobs):
WAL, a busy timeout and ``BEGIN IMMEDIATE`` so a writer waits for the lock instead of failing
half-way with "database is locked". PostgreSQL needs nothing special.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 15_000
T = TypeVar("T")
_DIALECT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_or_ignore(
    dialect: str, table: Table, values: dict[str, Any], *, keys: list[str] | None = None
) -> Any:
    """``INSERT … ON CONFLICT [(keys)] DO NOTHING`` on either supported database (build it
    once and run it with bind parameters: the callers are hot paths)."""
    statement: Any = _DIALECT_INSERTS[dialect](table).values(values)
    return statement.on_conflict_do_nothing(index_elements=keys)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the SQLite settings this project relies on."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, **kwargs)

    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit
        # (SQLAlchemy's documented pysqlite recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for the configured database (created on first use)."""
    return make_engine(get_settings().database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def run_with_retry(
    work: Callable[[Session], T],
    *,
    factory: sessionmaker[Session] | None = None,
    attempts: int = 4,
    backoff: float = 0.25,
) -> T:
    """Run ``work`` in a unit of work, retrying when the database is briefly unreachable
    (connection refused, server restarting, SQLite busy past its timeout). ``work`` must be
    safe to repeat: a failed attempt has rolled back."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(factory) as session:
                return work(session)
        except OperationalError:
            if attempt == attempts:
                raise
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


@contextmanager
def session_scope(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error."""
    session = (factory or get_sessionmaker())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
